"""Penalties on the discriminator's input gradient (the `penalty` config group); any loss may take one.

    wgan_gp  E (||grad D(x_hat)|| - 1)^2, x_hat = x + alpha (G(z) - x), alpha ~ U[0, 1] per example
             (two-sided, at interpolates between real and fake examples; Gulrajani et al. 2017)
    dragan   E (||grad D(x_hat)|| - 1)^2, x_hat = x + alpha delta, delta = c std(x) U[0, 1] elementwise,
             alpha ~ U[0, 1] per example: around the real data (Kodali et al. 2017; c = penalty.dragan_scale)
    r1       1/2 E ||grad D(x)||^2 on real data (zero-centred; Mescheder et al. 2018)
    r2       1/2 E ||grad D(G(z))||^2 on generated data

D's loss becomes adversarial + `penalty.weight` * penalty (lambda for wgan_gp and dragan, gamma for r1 and
r2, so R1 is gamma/2 E ||grad||^2 as in the paper). With `penalty.every` = k > 1 the penalty is computed
only on every k-th D step and multiplied by k ("lazy regularisation", Karras et al. 2020), which keeps its
average strength. The penalty's value (unweighted) is logged as train/gradient_penalty.

Call a penalty inside the GradientTape that differentiates D's loss: the inner tape here is recorded by
the outer one, which gives the second-order term every input-gradient penalty needs. Each example's
gradient comes from one backward pass over the summed logits, which is exact only when D treats examples
independently: not with batch norm in D, a combination wavegan/config/checks.py refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

Discriminator = Callable[..., tf.Tensor]

# Added to the squared gradient norm under the square root: at a zero gradient d sqrt(u)/du is
# infinite and 0 * inf = NaN would poison D's update; with it the penalty's gradient there is 0.
# 1e-12 is far below float32 resolution of any norm near the target 1, so it does not bias the penalty.
GP_EPSILON = 1e-12


def _per_example(shape_of: tf.Tensor) -> tf.Tensor:
    """The shape [B, 1, ..., 1] of one factor per example."""
    rank = shape_of.shape.rank
    return tf.concat([tf.shape(shape_of)[:1], tf.ones([rank - 1], dtype=tf.int32)], axis=0)


def _uniform(shape: tf.Tensor, dtype: tf.DType, generator: tf.random.Generator | None) -> tf.Tensor:
    """U[0, 1) draws from `generator` (a trainer's own stream) or, without one, TensorFlow's global RNG."""
    if generator is not None:
        return tf.cast(generator.uniform(shape, 0.0, 1.0, dtype=tf.float32), dtype)
    return tf.random.uniform(shape, 0.0, 1.0, dtype=dtype)


def random_interpolates(
    real: tf.Tensor,
    fake: tf.Tensor,
    alpha: tf.Tensor | None = None,
    generator: tf.random.Generator | None = None,
) -> tf.Tensor:
    """real + alpha * (fake - real), with one alpha ~ U[0, 1] per example (shape [B, 1, ..., 1]).

    One factor per example, not per element, so each interpolate lies on the straight line between a
    real and a fake example, where the optimal critic has unit gradient norm (Gulrajani et al. 2017).
    """
    real = tf.convert_to_tensor(real)
    fake = tf.cast(tf.convert_to_tensor(fake), real.dtype)
    if alpha is None:
        alpha = _uniform(_per_example(real), real.dtype, generator)
    return real + tf.cast(alpha, real.dtype) * (fake - real)


def input_gradient_sq_norms(discriminator: Discriminator, x: tf.Tensor, training: bool = True) -> tf.Tensor:
    """||grad_x D(x_b)||^2 for every example b, float32 [B]."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        # Summing over the batch gives each example its own gradient, since D treats examples
        # independently.
        total = tf.reduce_sum(tf.cast(discriminator(x, training=training), tf.float32))
    grads = tf.cast(tape.gradient(total, x), tf.float32)
    return tf.reduce_sum(tf.square(grads), axis=list(range(1, grads.shape.rank)))


def _unit_norm_penalty(discriminator: Discriminator, x_hat: tf.Tensor, training: bool) -> tf.Tensor:
    norms = tf.sqrt(input_gradient_sq_norms(discriminator, x_hat, training) + GP_EPSILON)
    return tf.reduce_mean(tf.square(norms - 1.0))


def gradient_penalty(
    discriminator: Discriminator,
    real: tf.Tensor,
    fake: tf.Tensor,
    training: bool = True,
    *,
    alpha: tf.Tensor | None = None,
    generator: tf.random.Generator | None = None,
) -> tf.Tensor:
    """WGAN-GP: mean_b (||grad_x D(x_b)|| - 1)^2 at random interpolates x_b, a float32 scalar.

    `training` is passed to the discriminator (phase shuffle behaves as in D's own training step);
    `alpha` fixes the interpolation factors, [B, 1, ..., 1], for tests; `generator` draws them.
    """
    interpolates = random_interpolates(real, fake, alpha, generator)
    return _unit_norm_penalty(discriminator, interpolates, training)


def dragan_penalty(
    discriminator: Discriminator,
    real: tf.Tensor,
    scale: float = 0.5,
    training: bool = True,
    *,
    noise: tf.Tensor | None = None,
    alpha: tf.Tensor | None = None,
    generator: tf.random.Generator | None = None,
) -> tf.Tensor:
    """DRAGAN: mean_b (||grad D(x_hat_b)|| - 1)^2 at x_hat = x + alpha (x + delta - x), delta = scale *
    std(x) * U[0, 1] elementwise, as Kodali et al.'s code (`x + 0.5 * x.std() * np.random.random(x.shape)`).
    `noise` (the U[0, 1] draw) and `alpha` fix the random parts for tests; `generator` draws them."""
    real = tf.convert_to_tensor(real)
    if noise is None:
        noise = _uniform(tf.shape(real), real.dtype, generator)
    perturbed = real + scale * tf.math.reduce_std(real) * tf.cast(noise, real.dtype)
    interpolates = random_interpolates(real, perturbed, alpha, generator)
    return _unit_norm_penalty(discriminator, interpolates, training)


def zero_centred_penalty(discriminator: Discriminator, x: tf.Tensor, training: bool = True) -> tf.Tensor:
    """R1 (x real) or R2 (x generated): 1/2 mean_b ||grad_x D(x_b)||^2."""
    return 0.5 * tf.reduce_mean(input_gradient_sq_norms(discriminator, x, training))


class Penalty:
    """The configured penalty: `value(D, real, fake)` (unweighted) and its weight and laziness."""

    NAMES = ("none", "wgan_gp", "dragan", "r1", "r2")

    def __init__(self, name: str = "none", weight: float = 0.0, every: int = 1, dragan_scale: float = 0.5):
        if name not in self.NAMES:
            raise ValueError(f"penalty must be one of {self.NAMES}, got {name!r}")
        self.name, self.weight, self.every, self.dragan_scale = name, float(weight), int(every), dragan_scale

    @classmethod
    def from_config(cls, cfg: Any) -> Penalty:
        return cls(str(cfg.name), float(cfg.weight), int(cfg.every), float(cfg.get("dragan_scale", 0.5)))

    @property
    def active(self) -> bool:
        return self.name != "none" and self.weight > 0

    def value(
        self,
        discriminator: Discriminator,
        real: tf.Tensor,
        fake: tf.Tensor,
        generator: tf.random.Generator | None = None,
    ) -> tf.Tensor:
        """The unweighted penalty; `generator` (optional) draws its random parts."""
        if self.name == "wgan_gp":
            return gradient_penalty(discriminator, real, fake, generator=generator)
        if self.name == "dragan":
            return dragan_penalty(discriminator, real, self.dragan_scale, generator=generator)
        if self.name == "r1":
            return zero_centred_penalty(discriminator, real)
        if self.name == "r2":
            return zero_centred_penalty(discriminator, fake)
        return tf.constant(0.0)

    def __repr__(self) -> str:
        return f"Penalty({self.name!r}, weight={self.weight}, every={self.every})"
