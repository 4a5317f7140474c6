"""GAN losses, chosen by the `loss` config group (`loss.name`).

Every loss takes the discriminator's raw logits (shape [B, 1] or [B]) and returns a float32 scalar:

    bce      D: mean BCE(D(x), 1 - s) + mean BCE(D(G(z)), 0)   (the seed's loss: the two means SUMMED;
             the reference's `dcgan` loss halves this sum, which only rescales D's gradients)
             G: mean BCE(D(G(z)), 1)                            (non-saturating)
             s = `loss.label_smoothing` (default 0): one-sided, real labels only (Salimans et al. 2016).
    wgan_gp  D: mean D(G(z)) - mean D(x)         G: -mean D(G(z))          (Gulrajani et al. 2017)
    hinge    D: mean relu(1 - D(x)) + mean relu(1 + D(G(z)))   G: -mean D(G(z))   (Miyato et al. 2018)
    lsgan    D: 0.5 mean (D(x) - 1)^2 + 0.5 mean D(G(z))^2     G: 0.5 mean (D(G(z)) - 1)^2  (Mao et al. 2017)

The gradient penalty is NOT inside `discriminator_loss`, for any loss, wgan_gp included: it needs the
discriminator itself and fresh interpolates, so the trainer computes it inside its D tape with
`gradient_penalty(D, real, fake)` and adds `loss.gp_weight * gp`:

    d_loss = loss.discriminator_loss(D(real), D(fake))
    if loss.uses_gradient_penalty:
        d_loss += loss.gp_weight * gradient_penalty(D, real, fake)

`loss.gp_weight` (lambda) defaults to 10 for wgan_gp and to 0 (off) for the others, so any loss can be
combined with the penalty from the config; `uses_gradient_penalty` is simply gp_weight > 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from wavegan.errors import ConfigError

# Added to the squared gradient norm under the square root: at a zero gradient d sqrt(u)/du is
# infinite and 0 * inf = NaN would poison D's update; with it the penalty's gradient there is 0.
# 1e-12 is far below float32 resolution of any norm near the target 1, so it does not bias the penalty.
GP_EPSILON = 1e-12


class GANLoss:
    """Base class: a pair of scalar losses computed from discriminator logits."""

    name: str = ""
    default_gp_weight: float = 0.0
    # Diagnostics that trainer.loss_bound applies to: values whose size means something. A loss whose
    # G term is a raw critic mean (-E D(G(z)): WGAN, hinge) leaves it out, because a critic's output
    # offset drifts freely without anything diverging; D's adversarial loss is offset-free for every
    # loss (for WGAN it is minus the Wasserstein estimate).
    bounded: tuple[str, ...] = ("d_adversarial_loss", "g_loss")

    def __init__(self, gp_weight: float | None = None) -> None:
        self.gp_weight = float(self.default_gp_weight if gp_weight is None else gp_weight)
        if self.gp_weight < 0:
            raise ValueError(f"gp_weight must be >= 0, got {self.gp_weight}")

    @property
    def uses_gradient_penalty(self) -> bool:
        """Whether the trainer must add gp_weight * gradient_penalty(...) to the D loss."""
        return self.gp_weight > 0

    def discriminator_loss(self, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
        """Scalar D loss, without the gradient penalty (see the module docstring)."""
        raise NotImplementedError

    def generator_loss(self, fake_logits: tf.Tensor) -> tf.Tensor:
        """Scalar G loss."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(gp_weight={self.gp_weight})"


def _f32(logits: tf.Tensor) -> tf.Tensor:
    # Losses are reduced in float32 even if the models run in mixed precision: a float16 mean of
    # squared logits overflows long before training is recognisably diverged.
    return tf.cast(logits, tf.float32)


class BCELoss(GANLoss):
    """Binary cross-entropy on logits (the seed's loss) with the non-saturating generator loss."""

    name = "bce"

    def __init__(self, gp_weight: float | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__(gp_weight)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def discriminator_loss(self, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
        real_logits, fake_logits = _f32(real_logits), _f32(fake_logits)
        # sigmoid_cross_entropy_with_logits is max(x, 0) - x*y + log(1 + exp(-|x|)): finite for any
        # logit, unlike log(sigmoid(x)), which turns into log(0) once |x| passes ~100.
        real_labels = tf.fill(tf.shape(real_logits), 1.0 - self.label_smoothing)
        real_term = tf.nn.sigmoid_cross_entropy_with_logits(labels=real_labels, logits=real_logits)
        fake_labels = tf.zeros_like(fake_logits)
        fake_term = tf.nn.sigmoid_cross_entropy_with_logits(labels=fake_labels, logits=fake_logits)
        return tf.reduce_mean(real_term) + tf.reduce_mean(fake_term)

    def generator_loss(self, fake_logits: tf.Tensor) -> tf.Tensor:
        fake_logits = _f32(fake_logits)
        # Non-saturating: G maximises log D(G(z)) rather than minimising log(1 - D(G(z))), whose gradient
        # vanishes exactly when D confidently rejects the fakes (Goodfellow et al. 2014).
        return tf.reduce_mean(
            tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(fake_logits), logits=fake_logits)
        )

    def __repr__(self) -> str:
        return f"BCELoss(gp_weight={self.gp_weight}, label_smoothing={self.label_smoothing})"


class WGANGPLoss(GANLoss):
    """Wasserstein critic loss; the gradient penalty (lambda = gp_weight, default 10) is added by the trainer.

    `discriminator_loss` returns only the Wasserstein part mean D(fake) - mean D(real); its negative
    is the running Wasserstein estimate that stability diagnostics log.
    """

    name = "wgan_gp"
    default_gp_weight = 10.0
    bounded = ("d_adversarial_loss",)

    def discriminator_loss(self, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(_f32(fake_logits)) - tf.reduce_mean(_f32(real_logits))

    def generator_loss(self, fake_logits: tf.Tensor) -> tf.Tensor:
        return -tf.reduce_mean(_f32(fake_logits))


class HingeLoss(GANLoss):
    """Hinge loss (geometric GAN / SN-GAN): D is only pushed until real > 1 and fake < -1."""

    name = "hinge"
    bounded = ("d_adversarial_loss",)

    def discriminator_loss(self, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(tf.nn.relu(1.0 - _f32(real_logits))) + tf.reduce_mean(
            tf.nn.relu(1.0 + _f32(fake_logits))
        )

    def generator_loss(self, fake_logits: tf.Tensor) -> tf.Tensor:
        return -tf.reduce_mean(_f32(fake_logits))


class LSGANLoss(GANLoss):
    """Least-squares GAN with targets real = 1, fake = 0 (the a-b-c = 0-1-1 coding, as the reference)."""

    name = "lsgan"

    def discriminator_loss(self, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
        return 0.5 * tf.reduce_mean(tf.square(_f32(real_logits) - 1.0)) + 0.5 * tf.reduce_mean(
            tf.square(_f32(fake_logits))
        )

    def generator_loss(self, fake_logits: tf.Tensor) -> tf.Tensor:
        return 0.5 * tf.reduce_mean(tf.square(_f32(fake_logits) - 1.0))


LOSSES: dict[str, type[GANLoss]] = {cls.name: cls for cls in (BCELoss, WGANGPLoss, HingeLoss, LSGANLoss)}


def random_interpolates(real: tf.Tensor, fake: tf.Tensor, alpha: tf.Tensor | None = None) -> tf.Tensor:
    """real + alpha * (fake - real), with one alpha ~ U[0, 1] per example (shape [B, 1, ..., 1]).

    One factor per example, not per element, so each interpolate lies on the straight line between a
    real and a fake example, where the optimal critic has unit gradient norm (Gulrajani et al. 2017).
    """
    real = tf.convert_to_tensor(real)
    fake = tf.cast(tf.convert_to_tensor(fake), real.dtype)
    if alpha is None:
        rank = real.shape.rank
        shape = tf.concat([tf.shape(real)[:1], tf.ones([rank - 1], dtype=tf.int32)], axis=0)
        alpha = tf.random.uniform(shape, 0.0, 1.0, dtype=real.dtype)
    return real + tf.cast(alpha, real.dtype) * (fake - real)


def gradient_penalty(
    discriminator: Callable[..., tf.Tensor],
    real: tf.Tensor,
    fake: tf.Tensor,
    training: bool = True,
    *,
    alpha: tf.Tensor | None = None,
) -> tf.Tensor:
    """WGAN-GP penalty mean_b (||grad_x D(x_b)|| - 1)^2 at random interpolates x_b, a float32 scalar.

    The norm is over all non-batch axes of each example's gradient, computed as sqrt(sum g^2 + eps) so
    the penalty has a finite gradient even where D's input gradient is exactly zero. Call it inside the
    GradientTape that differentiates D's loss: the inner tape here is recorded by the outer one, which
    gives the second-order term the penalty needs. `training` is passed to the discriminator (phase
    shuffle and batch norm behave as in D's own training step); `alpha` fixes the interpolation
    factors, [B, 1, ..., 1], for tests.
    """
    interpolates = random_interpolates(real, fake, alpha)
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        logits = discriminator(interpolates, training=training)
        # Summing over the batch gives each example its own gradient, since D treats examples
        # independently (not true with batch norm in D: the reason it is off by default).
        total = tf.reduce_sum(_f32(logits))
    grads = tf.cast(tape.gradient(total, interpolates), tf.float32)
    axes = list(range(1, grads.shape.rank))
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=axes) + GP_EPSILON)
    return tf.reduce_mean(tf.square(norms - 1.0))


def _number(loss_cfg: Any, key: str, default: float) -> float:
    value = loss_cfg.get(key, default) if loss_cfg is not None else default
    value = default if value is None else value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"loss.{key} must be a number, got {value!r}")
    return float(value)


def build_loss(loss_cfg: Any) -> GANLoss:
    """The GANLoss for a `loss` config (DictConfig or dict): `name`, `gp_weight`, `label_smoothing`."""
    name = loss_cfg.get("name") if loss_cfg is not None else None
    if name not in LOSSES:
        raise ConfigError(f"loss.name must be one of {', '.join(LOSSES)}; got {name!r}")
    cls = LOSSES[name]
    gp_weight = _number(loss_cfg, "gp_weight", cls.default_gp_weight)
    if gp_weight < 0:
        raise ConfigError(f"loss.gp_weight must be >= 0, got {gp_weight}")
    smoothing = _number(loss_cfg, "label_smoothing", 0.0)
    if cls is BCELoss:
        if not 0.0 <= smoothing < 1.0:
            raise ConfigError(f"loss.label_smoothing must be in [0, 1), got {smoothing}")
        return BCELoss(gp_weight=gp_weight, label_smoothing=smoothing)
    if smoothing != 0.0:
        # Refuse rather than ignore: a sweep over label_smoothing with loss=hinge would otherwise
        # report a flat, meaningless response.
        raise ConfigError(
            f"loss.label_smoothing only applies to loss=bce; it is {smoothing} with loss={name}"
        )
    return cls(gp_weight=gp_weight)
