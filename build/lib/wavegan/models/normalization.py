"""Normalisation of G and D, one key per concept for every model: `model.g_norm`, `model.d_norm`.

    g_norm  none | batch                      batch norm after G's projection and every up-conv but the last
    d_norm  none | batch | layer | spectral   batch or layer norm after every conv of D but the first (as
                                              DCGAN and the WaveGAN reference place batch norm); spectral
                                              normalisation of every conv and of the output layer

Layer norm is `keras.layers.GroupNormalization(groups=1)`: each example's feature map is normalised over
all its positions and channels, with a scale and offset per channel, which is what TF's `layer_norm`
(used by compare_gan and by Gulrajani et al. 2017 as the penalty-safe replacement for batch norm in the
critic) computes.

Spectral normalisation (Miyato et al. 2018) divides a layer's kernel by an estimate of its largest
singular value: the kernel reshaped to [-1, out_channels] as in SN-GAN, one power iteration per training
call with a persistent vector u. `keras.layers.SpectralNormalization` does not fit: it overwrites the
kernel variable with W / sigma(W) on every training call, so the gradient never sees the division (SN-GAN
differentiates through W / sigma(W), with u and v held constant) and D's three calls per step would
rescale the weights three times.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

G_NORMS = ("none", "batch")
D_NORMS = ("none", "batch", "layer", "spectral")


def _l2_normalize(x: Any) -> Any:
    return x / (ops.sqrt(ops.sum(ops.square(x))) + 1e-12)


@keras.saving.register_keras_serializable(package="wavegan")
class SpectralNorm(keras.layers.Wrapper):
    """A Conv or Dense layer whose kernel is divided by its spectral norm in the forward pass."""

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        out_channels = self.layer.kernel.shape[-1]
        self.u = self.add_weight(
            shape=(1, out_channels),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
            trainable=False,
            name="sn_u",
        )

    def sigma(self, training: bool = False) -> Any:
        """The power-iteration estimate of the kernel's largest singular value; training advances u."""
        w = ops.reshape(self.layer.kernel, (-1, self.layer.kernel.shape[-1]))
        v = _l2_normalize(ops.matmul(self.u, ops.transpose(w)))
        u = _l2_normalize(ops.matmul(v, w))
        u, v = ops.stop_gradient(u), ops.stop_gradient(v)
        if training:
            self.u.assign(u)
        return ops.sum(ops.matmul(v, w) * u)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        layer = self.layer
        kernel = layer.kernel / self.sigma(bool(training))
        if isinstance(layer, keras.layers.Dense):
            outputs = ops.matmul(inputs, kernel)
        else:
            outputs = layer.convolution_op(inputs, kernel)
        if layer.use_bias:
            outputs = outputs + layer.bias  # channels-last: the bias broadcasts over the last axis
        return outputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.layer.compute_output_shape(input_shape)


def d_layer(layer: keras.layers.Layer, norm: str) -> keras.layers.Layer:
    """A conv or dense layer of D, wrapped for spectral normalisation when `norm` asks for it."""
    return SpectralNorm(layer, name=f"{layer.name}_sn") if norm == "spectral" else layer


def d_feature_norm(x: Any, norm: str, name: str) -> Any:
    """Batch or layer norm on a D feature map (none for `none` and `spectral`)."""
    if norm == "batch":
        return keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    if norm == "layer":
        return keras.layers.GroupNormalization(groups=1, name=f"{name}_ln")(x)
    return x


def g_feature_norm(x: Any, norm: str, name: str) -> Any:
    """Batch norm on a G feature map when g_norm is `batch`."""
    return keras.layers.BatchNormalization(name=f"{name}_bn")(x) if norm == "batch" else x
