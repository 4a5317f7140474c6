"""Strided 'same' convolutions and transposed convolutions as stride-1 convolutions (space-to-depth).

Same layers, same variables, same results as Keras's Conv1D/Conv2D/Conv1DTranspose/Conv2DTranspose (to
float rounding: the sums run in another order); only the way TensorFlow computes them changes, because on
the CPU oneDNN's strided kernels are slow, above all the weight gradient and the gradient penalty's
second-order pass through them (benchmarks/results/speed_notes.md):

    strided conv      x [B, T, C] zero-padded as 'same' pads it, reshaped to [B, T/s + kf - 1, s*C] (each
                      frame of s samples becomes one position with s*C channels, a free reshape in 1-D),
                      then a VALID stride-1 conv with kf = ceil(k/s) taps: the kernel [k, C, F] padded to
                      kf*s taps with zeros and reshaped to [kf, s*C, F]. Tap j*s + p of the original
                      kernel meets sample s*t + j*s + p - pad_left, as before.
    transposed conv   the sub-pixel form: output sample s*u + p is a stride-1 correlation of x around u with
                      the taps of phase p, so one VALID conv from C to s*F channels (the phases side by side)
                      followed by a free reshape [B, T, s, F] -> [B, s*T, F].

In 2-D both spatial axes are treated so (the reshape then needs a transpose). The zero taps cost FLOPs
(28/25 in WaveGAN's 1-D layers, 36/25 in SpecGAN's 5x5 stride-2 ones), which the stride-1 form repays in
every WaveGAN layer but in 2-D only next to the single-channel spectrogram (see NARROW_2D). Any other
case (valid padding, dilation, an axis not divisible by its stride, unknown shapes) falls back to Keras's
own op, and so does a layer set to `reference` (by `use_reference_ops`, for the equivalence test and for
counting a step's FLOPs as the plain ops do).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf


def _same_pads(kernel: int, stride: int) -> tuple[int, int]:
    """(left, right) zero padding of a 'same' convolution whose input length is a multiple of `stride`."""
    total = max(kernel - stride, 0)
    return total // 2, total - total // 2


def _space_to_depth(x: tf.Tensor, stride: tuple[int, ...]) -> tf.Tensor:
    """[B, *spatial, C], spatial[i] a multiple of stride[i] -> [B, *(spatial / stride), prod(stride) * C]."""
    spatial = x.shape[1:-1]
    channels = x.shape[-1]
    if len(spatial) == 1:
        return tf.reshape(x, [-1, spatial[0] // stride[0], stride[0] * channels])
    h, w = spatial
    (sh, sw) = stride
    x = tf.reshape(x, [-1, h // sh, sh, w // sw, sw, channels])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    return tf.reshape(x, [-1, h // sh, w // sw, sh * sw * channels])


def _depth_to_space(x: tf.Tensor, stride: tuple[int, ...], channels: int) -> tf.Tensor:
    """The inverse of `_space_to_depth`: [B, *spatial, prod(stride) * F] -> [B, *(spatial * stride), F]."""
    spatial = x.shape[1:-1]
    if len(spatial) == 1:
        return tf.reshape(x, [-1, spatial[0] * stride[0], channels])
    h, w = spatial
    (sh, sw) = stride
    x = tf.reshape(x, [-1, h, w, sh, sw, channels])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    return tf.reshape(x, [-1, h * sh, w * sw, channels])


def _valid_conv(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    # The data format spelled out: in eager mode a gradient of a gradient reads it back from the recorded
    # op, and a conv recorded without it fails there (Conv2DBackpropInput's gradient calls .decode()).
    data_format = "NWC" if x.shape.rank == 3 else "NHWC"
    return tf.nn.convolution(x, kernel, padding="VALID", data_format=data_format)


def _fits(x: tf.Tensor, stride: tuple[int, ...], transposed: bool) -> bool:
    """Static spatial shape, a stride above 1, and (a forward conv) every axis a multiple of its stride."""
    spatial = x.shape[1:-1]
    return (
        len(spatial) in (1, 2)
        and all(n is not None for n in spatial)
        and any(s > 1 for s in stride)
        and (transposed or all(n % s == 0 for n, s in zip(spatial, stride, strict=True)))
    )


def strided_conv(x: tf.Tensor, kernel: tf.Tensor, stride: tuple[int, ...]) -> tf.Tensor:
    """'same' convolution of x [B, *spatial, C] with kernel [*k, C, F] at `stride`, as a stride-1 conv."""
    ksize = tuple(kernel.shape[:-2])
    frames = tuple(math.ceil(k / s) for k, s in zip(ksize, stride, strict=True))
    pads = [[0, 0]]
    kernel_pads = []
    for n, k, s, f in zip(x.shape[1:-1], ksize, stride, frames, strict=True):
        left, _ = _same_pads(k, s)
        padded = n + s * (f - 1)  # the frames the output positions reach, kf - 1 beyond the last
        pads.append([left, padded - n - left])
        kernel_pads.append([0, f * s - k])
    x = _space_to_depth(tf.pad(x, [*pads, [0, 0]]), stride)
    c_in, c_out = kernel.shape[-2], kernel.shape[-1]
    if len(stride) == 1 and _as_matmul(x.shape[1] - frames[0] + 1, c_in * ksize[0]):
        # Exactly the k taps: the last frame contributes only its first k - (kf - 1) * s samples.
        widths = [stride[0] * c_in] * (frames[0] - 1) + [(ksize[0] - (frames[0] - 1) * stride[0]) * c_in]
        return _windows_matmul(x, tf.reshape(kernel, [-1, c_out]), widths)
    kernel = tf.pad(kernel, [*kernel_pads, [0, 0], [0, 0]])
    if len(stride) == 1:
        kernel = tf.reshape(kernel, [frames[0], stride[0] * c_in, c_out])
    else:
        kernel = tf.reshape(kernel, [frames[0], stride[0], frames[1], stride[1], c_in, c_out])
        kernel = tf.transpose(kernel, [0, 2, 1, 3, 4, 5])
        kernel = tf.reshape(kernel, [frames[0], frames[1], stride[0] * stride[1] * c_in, c_out])
    return _valid_conv(x, kernel)


# A 1-D conv whose output is short and whose windows are deep is one big GEMM, which oneDNN's direct conv
# runs far below the GEMM rate: WaveGAN's D at d=64, batch 64 spent 3x as long in its last conv (16 outputs,
# windows of 12800 values) as in its second at equal FLOPs. Such convs go through an explicit im2col and
# one matmul. Single-thread conv + gradients, seconds, stride-1 conv -> matmul (benchmarks notes):
# d=64 conv 4 2.10 -> 0.80, conv 3 1.16 -> 0.79, conv 2 0.90 -> 0.90 (1024 outputs: left as a conv);
# d=16 conv 4 18.0 -> 15.2 ms, conv 3 15.4 -> 16.7 ms (windows of 1600: left as a conv).
MATMUL_MAX_LENGTH = 256
MATMUL_MIN_DEPTH = 1792


def _as_matmul(length: int, depth: int) -> bool:
    """Whether a VALID stride-1 1-D conv to `length` outputs, windows of `depth` values, runs as a matmul."""
    return length <= MATMUL_MAX_LENGTH and depth >= MATMUL_MIN_DEPTH


def in_xla_context() -> bool:
    """Whether ops are being traced for XLA (a `jit_compile` function), where some gradients differ."""
    try:
        from tensorflow.python.ops.control_flow_util import GraphOrParentsInXlaContext
    except ImportError:  # a TensorFlow without it: the strided slice works everywhere, only slower
        return True
    return bool(GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))


def _window(x: tf.Tensor, start: int, length: int, width: int) -> tf.Tensor:
    """x[:, start:start + length, :width]. A slice on the CPU (its gradient is a pad; a strided slice's
    is TensorFlow's slow generic StridedSliceGrad), a strided slice under XLA, where a slice's gradient
    has no gradient of its own and the penalty's second-order pass needs one."""
    if in_xla_context():
        return x[:, start : start + length, :width]
    return tf.slice(x, [0, start, 0], [-1, length, width])


def _windows_matmul(x: tf.Tensor, kernel: tf.Tensor, widths: list[int]) -> tf.Tensor:
    """VALID stride-1 1-D conv of x [B, T, C] as im2col + matmul: window j takes the first widths[j]
    channels of x[:, t + j], all windows side by side match the rows of kernel [sum(widths), F]."""
    length = x.shape[1] - len(widths) + 1
    columns = tf.concat([_window(x, j, length, width) for j, width in enumerate(widths)], axis=-1)
    y = tf.matmul(tf.reshape(columns, [-1, kernel.shape[0]]), kernel)
    return tf.reshape(y, [-1, length, kernel.shape[1]])


def _phase_window(kernel: int, stride: int) -> tuple[int, int]:
    """(m_lo, m_hi): output sample s*u + p of a 'same' transposed conv sums x[u - m] * w[s*m + p + left]
    over the m in [m_lo, m_hi] whose tap lies in the kernel."""
    left, _ = _same_pads(kernel, stride)
    m_lo = min(-((p + left) // stride) for p in range(stride))  # ceil(-(p + left) / s)
    m_hi = max((kernel - 1 - p - left) // stride for p in range(stride))
    return m_lo, m_hi


def strided_conv_transpose(x: tf.Tensor, kernel: tf.Tensor, stride: tuple[int, ...]) -> tf.Tensor:
    """'same' transposed convolution of x [B, *spatial, C] with a Keras kernel [*k, F, C] at `stride`
    (output [B, *(spatial * stride), F]), as one stride-1 conv to prod(stride) * F channels."""
    ksize = tuple(kernel.shape[:-2])
    c_out, c_in = kernel.shape[-2], kernel.shape[-1]
    pads, kernel_pads, windows = [[0, 0]], [], []
    for k, s in zip(ksize, stride, strict=True):
        m_lo, m_hi = _phase_window(k, s)
        left, _ = _same_pads(k, s)
        # The taps s*m + p + left for m in [m_lo, m_hi], p in [0, s): one contiguous run once padded.
        first, last = s * m_lo + left, s * m_hi + s - 1 + left
        kernel_pads.append([-first, last - (k - 1)])
        pads.append([m_hi, -m_lo])  # window position w reads x[u + w - m_hi], i.e. m = m_hi - w
        windows.append(m_hi - m_lo + 1)
    x = tf.pad(x, [*pads, [0, 0]])
    kernel = tf.pad(kernel, [*kernel_pads, [0, 0], [0, 0]])
    if len(stride) == 1:
        (s,), (n,) = stride, windows
        kernel = tf.reverse(tf.reshape(kernel, [n, s, c_out, c_in]), axis=[0])  # rows m_hi ... m_lo
        kernel = tf.reshape(tf.transpose(kernel, [0, 3, 1, 2]), [n, c_in, s * c_out])
        if _as_matmul(x.shape[1] - n + 1, c_in * n):
            y = _windows_matmul(x, tf.reshape(kernel, [n * c_in, s * c_out]), [c_in] * n)
            return _depth_to_space(y, stride, c_out)
    else:
        (sh, sw), (nh, nw) = stride, windows
        kernel = tf.reshape(kernel, [nh, sh, nw, sw, c_out, c_in])
        kernel = tf.reverse(kernel, axis=[0, 2])
        kernel = tf.reshape(tf.transpose(kernel, [0, 2, 5, 1, 3, 4]), [nh, nw, c_in, sh * sw * c_out])
    y = _valid_conv(x, kernel)
    return _depth_to_space(y, stride, c_out)


# In 2-D the zero taps cost 44 % more FLOPs (6x6 for 5x5), which only pays where the narrow side of the
# conv has few channels (SpecGAN's D input, G output: single-thread conv + gradients 7.9 -> 5.0 ms and
# 7.8 -> 6.2 ms at d=8, batch 16; from 8 channels on the plain op is faster, 6.2 vs 7.2 ms).
NARROW_2D = 8


def _narrow(layer: Any, inputs: Any, transposed: bool) -> bool:
    """The channels on the full-resolution side: the input of a conv, the output of a transposed one."""
    return (layer.filters if transposed else inputs.shape[-1]) < NARROW_2D


def _fast(layer: Any, inputs: Any, transposed: bool = False) -> bool:
    return (
        not getattr(layer, "reference", False)
        and (layer.rank == 1 or _narrow(layer, inputs, transposed))
        and keras.backend.backend() == "tensorflow"
        and layer.padding == "same"
        and layer.data_format == "channels_last"
        and all(d == 1 for d in layer.dilation_rate)
        and _fits(inputs, tuple(layer.strides), transposed)
    )


def _bias_activation(layer: Any, outputs: Any) -> Any:
    if layer.use_bias:
        outputs = outputs + tf.cast(layer.bias, outputs.dtype)  # channels-last: broadcasts over the last axis
    return layer.activation(outputs) if layer.activation is not None else outputs


class _ConvMixin:
    # Both entry points: Keras's Conv1D.call does not go through convolution_op (which SpectralNorm calls).
    def convolution_op(self, inputs: Any, kernel: Any) -> Any:
        if _fast(self, inputs):
            return strided_conv(inputs, kernel, tuple(self.strides))
        return super().convolution_op(inputs, kernel)

    def call(self, inputs: Any) -> Any:
        if _fast(self, inputs):
            return _bias_activation(self, strided_conv(inputs, self.kernel, tuple(self.strides)))
        return super().call(inputs)


@keras.saving.register_keras_serializable(package="wavegan")
class Conv1D(_ConvMixin, keras.layers.Conv1D):
    """keras.layers.Conv1D computed by `strided_conv` when strided and 'same' (same weights, same result)."""


@keras.saving.register_keras_serializable(package="wavegan")
class Conv2D(_ConvMixin, keras.layers.Conv2D):
    """keras.layers.Conv2D computed by `strided_conv` when strided and 'same' (same weights, same result)."""


class _TransposeMixin:
    def call(self, inputs: Any) -> Any:
        if self.output_padding is None and _fast(self, inputs, transposed=True):
            return _bias_activation(self, strided_conv_transpose(inputs, self.kernel, tuple(self.strides)))
        return super().call(inputs)


@keras.saving.register_keras_serializable(package="wavegan")
class Conv1DTranspose(_TransposeMixin, keras.layers.Conv1DTranspose):
    """keras.layers.Conv1DTranspose computed by `strided_conv_transpose` when 'same' (same weights)."""


@keras.saving.register_keras_serializable(package="wavegan")
class Conv2DTranspose(_TransposeMixin, keras.layers.Conv2DTranspose):
    """keras.layers.Conv2DTranspose computed by `strided_conv_transpose` when 'same' (same weights)."""


def use_reference_ops(model: keras.Model, reference: bool = True) -> None:
    """Make every convolution of `model` (spectrally normalised ones included) compute with Keras's own
    ops (`reference=True`) or the stride-1 forms above, and likewise every other layer with a `reference`
    switch (D's LeakyReLU, models/layers.py); takes effect in functions traced afterwards."""
    for layer in model._flatten_layers(include_self=False):
        convolution = isinstance(layer, (Conv1D, Conv2D, Conv1DTranspose, Conv2DTranspose))
        if convolution or hasattr(layer, "reference"):
            layer.reference = reference
