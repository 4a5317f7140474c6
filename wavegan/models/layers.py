"""Building blocks shared by the models: phase shuffle and up-sampling convolutions.

Phase shuffle (WaveGAN, Donahue et al. 2019, section 3.3) shifts each discriminator feature map in
time by a random integer in [-n, n] and fills the vacated edge by reflection, so D cannot key on the
exact phase of the periodic artefacts that transposed convolutions leave in G's output.

As in the reference code (chrisdonahue/wavegan `apply_phaseshuffle`), ONE shift is drawn per call, shared
by the whole batch, and each phase-shuffle layer draws its own. A per-example shift needs a gather whose
gradient made D's step ~20 % slower on the CPU and could not be compiled twice-differentiated by XLA;
in expectation both apply the same augmentation.
"""

from __future__ import annotations

import functools
from typing import Any

import keras
import tensorflow as tf

from wavegan.models import convolutions

# ---------------------------------------------------------------------------------------------------
# Phase shuffle
# ---------------------------------------------------------------------------------------------------


def phase_shuffle(x: tf.Tensor, shift: tf.Tensor | int, radius: int | None = None) -> tf.Tensor:
    """Shift x [B, T, C] along time by `shift` samples (a scalar) with reflect padding, keeping length T.

    The same result as the reference's pad-then-crop: a positive shift moves the signal later (to the
    right) and mirrors the left edge about sample 0 without repeating it. Padding by the fixed `radius`
    (>= |shift|) on both sides, rolling, and cropping keeps every shape static, which XLA needs.
    One shift for the whole batch, as in the reference: a per-example shift needs a gather whose
    gradient (a scatter) made D's step ~20 % slower and its compilation twice as long on the CPU.
    """
    if radius is None:
        radius = abs(int(shift))
    shift = tf.cast(shift, tf.int32)
    padded = tf.pad(x, [[0, 0], [radius, radius], [0, 0]], mode="REFLECT")
    if not convolutions.in_xla_context():
        # One slice at a dynamic offset: its gradient is a pad, whose gradient is a slice again (two
        # copies each way instead of the roll and crop below; ~a third of phase shuffle's time).
        cropped = tf.slice(padded, tf.stack([0, radius - shift, 0]), [-1, x.shape[1], -1])
        return tf.ensure_shape(cropped, x.shape)
    # Under XLA, roll + a static crop rather than a dynamic slice: roll's gradient is a roll, so the gradient
    # penalty's second derivative exists (a dynamic slice's gradient has none there). The crop is a split,
    # not rolled[:, radius:...]: a strided slice's gradient (StridedSliceGrad) took ~15 % of WaveGAN's d=8
    # step on the CPU; a split's gradient is a concat, whose gradient is a slice.
    rolled = tf.roll(padded, shift, axis=1)
    _, cropped, _ = tf.split(rolled, [radius, x.shape[1], radius], axis=1)
    return tf.ensure_shape(cropped, x.shape)


@keras.saving.register_keras_serializable(package="wavegan")
class PhaseShuffle(keras.layers.Layer):
    """Random time shift in [-radius, radius] (one per batch and layer, as the reference) with reflect
    padding; identity at inference.

    Active only when called with training=True (Keras propagates the flag from `model(x, training=...)`),
    so evaluation, sample logging and metrics see the deterministic discriminator.
    """

    def __init__(self, radius: int, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if radius < 0:
            raise ValueError(f"phase shuffle radius must be >= 0, got {radius}")
        self.radius = int(radius)
        self.seed = seed
        # A SeedGenerator (not tf.random.uniform) keeps the draws reproducible under
        # keras.utils.set_random_seed and inside tf.function/XLA, and is not counted as a parameter.
        self.seed_generator = keras.random.SeedGenerator(seed) if self.radius > 0 else None

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if not training or self.radius == 0:
            return inputs
        shift = keras.random.randint(
            (), minval=-self.radius, maxval=self.radius + 1, dtype="int32", seed=self.seed_generator
        )
        return phase_shuffle(inputs, shift, self.radius)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "radius": self.radius, "seed": self.seed}


# ---------------------------------------------------------------------------------------------------
# LeakyReLU for D: the same values and gradients, no dead second-order path
# ---------------------------------------------------------------------------------------------------


def leaky_relu(x: tf.Tensor, slope: float) -> tf.Tensor:
    """tf.nn.leaky_relu(x, slope) (slope >= 0) whose gradient reads the activation through a stop_gradient.

    The same values and gradients, two differences in the graph:

    - LeakyReLU's derivative is piecewise constant, so the gradient of its gradient with respect to x is 0
      (TensorFlow's LeakyReluGrad gradient returns zeros_like(x)). Those zeros are real tensors, though: in
      the gradient penalty's outer backward pass they flowed back through the whole forward pass of D at
      the interpolates (per layer a conv input and weight gradient of zeros) and added nothing. Read
      through stop_gradient, that path is absent instead of zero.
    - The gradient reads the output y, not the input x: y > 0 exactly where x > 0 for any slope >= 0, which
      is all LeakyReluGrad looks at. Reading x (the conv's BiasAdd) tripped a Grappler remapper bug in D's
      step ("Mutation::Apply error: fanout ...LeakyReluGrad exist for missing node ...BiasAdd"), which then
      skipped the remapper for the whole step.
    """

    @tf.custom_gradient
    def forward(x: tf.Tensor) -> Any:
        y = tf.nn.leaky_relu(x, alpha=slope)

        def grad(dy: tf.Tensor) -> tf.Tensor:
            return tf.raw_ops.LeakyReluGrad(gradients=dy, features=tf.stop_gradient(y), alpha=slope)

        return y, grad

    return forward(x)


@keras.saving.register_keras_serializable(package="wavegan")
class LeakyReLU(keras.layers.LeakyReLU):
    """keras.layers.LeakyReLU computed by `leaky_relu` (same values and gradients) on TensorFlow; Keras's
    own op when `reference` is set (convolutions.use_reference_ops, for the step-equivalence test)."""

    reference = False

    def call(self, inputs: Any) -> Any:
        if self.reference or keras.backend.backend() != "tensorflow":
            return super().call(inputs)
        return leaky_relu(inputs, self.negative_slope)


# ---------------------------------------------------------------------------------------------------
# Up-sampling convolutions (the reference's `upsample` option)
# ---------------------------------------------------------------------------------------------------

def upconv_initializer(
    init: str, stride: int, dims: int, gain: float
) -> str | keras.initializers.Initializer:
    """Kernel initialiser of an up-sampling convolution.

    `glorot`: Keras's (and the TF1 reference's) default, glorot_uniform. For a transposed convolution of
    stride s it ignores that each output sample sees only kernel/s taps per input channel, so every
    layer shrinks the signal's variance by ~s^dims/2: WaveGAN's untrained G (five stride-4 layers)
    outputs audio ~40 dB below the data (RMS 0.002 against 0.1-0.3), all of it reading as the same
    near-silence, and Adam at the reference's lr 1e-4 needs hundreds of steps to climb out of it.
    `stride_aware`: He-style variance scaling on the taps that actually meet each output sample,
    Var(w) = gain * s^dims / (kernel^dims * in_channels), so the signal keeps its scale through the
    stack (gain 2 before a ReLU, 1 before the tanh output). Same parameters, same architecture.
    """
    if init == "glorot":
        return "glorot_uniform"
    # A transposed kernel is [k.., out, in]: Keras's "fan_out" of it is k^dims * in, the input side.
    return keras.initializers.VarianceScaling(
        scale=gain * stride**dims, mode="fan_out", distribution="uniform"
    )


def upconv(
    dims: int, x: Any, filters: int, kernel: int, stride: int, upsample: str, name: str,
    init: str = "stride_aware", gain: float = 2.0,
) -> Any:  # fmt: skip
    """`dims`-D up-sampling by `stride` then a 'same' convolution (see upconv1d below)."""
    transposed, upsampling, conv = {
        1: (convolutions.Conv1DTranspose, keras.layers.UpSampling1D, convolutions.Conv1D),
        2: (convolutions.Conv2DTranspose, keras.layers.UpSampling2D, convolutions.Conv2D),
    }[dims]
    if upsample == "zeros":
        initializer = upconv_initializer(init, stride, dims, gain)
        layer = transposed(
            filters, kernel, strides=stride, padding="same", kernel_initializer=initializer, name=name
        )
        return layer(x)
    # After repetition an ordinary convolution sees every tap: stride_aware is plain He scaling there
    # (an ordinary kernel is [k.., in, out], so its input side is Keras's "fan_in").
    initializer = (
        "glorot_uniform"
        if init == "glorot"
        else keras.initializers.VarianceScaling(scale=gain, mode="fan_in", distribution="uniform")
    )
    if upsample == "linear":
        x = linear_upsampling(dims, x, stride, f"{name}_linear")
    else:
        x = upsampling(stride, name=f"{name}_nn")(x)  # nearest neighbour (UpSampling2D's default)
    return conv(filters, kernel, strides=1, padding="same", kernel_initializer=initializer, name=name)(x)


def linear_upsampling(dims: int, x: Any, stride: int, name: str) -> Any:
    """Up-sampling by `stride` with linear interpolation (bilinear in 2-D; Keras's resize, half-pixel centres,
    edges held). Why beside `nn`: repeating each sample is a zero-order hold, whose spectral images of the
    signal fall off only as sinc; interpolation is a triangular filter, whose images fall off as sinc^2, so
    the convolution after it has less high-frequency energy to remove. In WaveGAN's default run nn's clips
    gained a broadband noise floor that linear did not (README "What the default runs show")."""
    if dims == 2:
        return keras.layers.UpSampling2D(stride, interpolation="bilinear", name=name)(x)
    channels = x.shape[-1]
    x = keras.layers.Reshape((-1, 1, channels), name=f"{name}_as_2d")(x)  # time as height, width 1
    x = keras.layers.UpSampling2D((stride, 1), interpolation="bilinear", name=name)(x)
    return keras.layers.Reshape((-1, channels), name=f"{name}_as_1d")(x)


# Time up-sampling by `stride` followed by a 'same' convolution, in 1-D (WaveGAN) or 2-D (SpecGAN's
# `conv2d_transpose`): upconv1d(x, filters, kernel_len, stride, upsample, name, init, gain).
# `zeros`: a transposed convolution (zero-stuffing then convolution), the WaveGAN default. `nn`:
# nearest-neighbour repetition then an ordinary convolution; same parameter count, and it avoids the
# checkerboard artefacts of transposed convolutions (WaveGAN section 3.2, Odena et al.). `linear`: linear
# interpolation then an ordinary convolution (`linear_upsampling`). `init`, `gain`: see `upconv_initializer`.
upconv1d = functools.partial(upconv, 1)
upconv2d = functools.partial(upconv, 2)
