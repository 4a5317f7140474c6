"""GAN losses, chosen by the `loss` config group (`loss.name`).

Every loss takes the discriminator's raw logits (shape [B, 1] or [B]) and returns a float32 scalar:

    bce          D: mean BCE(D(x), 1 - s) + mean BCE(D(G(z)), 0)   (the seed's loss: the two means SUMMED;
                 the reference's `dcgan` loss halves this sum, which only rescales D's gradients)
                 G: mean BCE(D(G(z)), 1)                            (non-saturating)
                 s = `loss.label_smoothing` (default 0): one-sided, real labels only (Salimans et al. 2016).
    wasserstein  D: mean D(G(z)) - mean D(x)     G: -mean D(G(z))   (Arjovsky et al. 2017)
    hinge        D: mean relu(1 - D(x)) + mean relu(1 + D(G(z)))   G: -mean D(G(z))   (Miyato et al. 2018)
    lsgan        D: 0.5 mean (D(x) - 1)^2 + 0.5 mean D(G(z))^2     G: 0.5 mean (D(G(z)) - 1)^2  (Mao et al. 2017)

A penalty on D (WGAN-GP, DRAGAN, R1, R2) is a separate choice, the `penalty` group
(wavegan/training/penalties.py), that composes with any loss; `loss=wgan_gp` is the config shorthand for
the Wasserstein loss with the WGAN-GP penalty.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from wavegan.errors import ConfigError


class GANLoss:
    """Base class: a pair of scalar losses computed from discriminator logits."""

    name: str = ""
    # Diagnostics that trainer.loss_bound applies to: values whose size means something. A loss whose
    # G term is a raw critic mean (-E D(G(z)): WGAN, hinge) leaves it out, because a critic's output
    # offset drifts freely without anything diverging; D's adversarial loss is offset-free for every
    # loss (for WGAN it is minus the Wasserstein estimate).
    bounded: tuple[str, ...] = ("d_adversarial_loss", "g_loss")

    def discriminator_loss(self, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
        """Scalar D loss, without any penalty (see the module docstring)."""
        raise NotImplementedError

    def generator_loss(self, fake_logits: tf.Tensor) -> tf.Tensor:
        """Scalar G loss."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _f32(logits: tf.Tensor) -> tf.Tensor:
    # Losses are reduced in float32 even if the models run in mixed precision: a float16 mean of
    # squared logits overflows long before training is recognisably diverged.
    return tf.cast(logits, tf.float32)


class BCELoss(GANLoss):
    """Binary cross-entropy on logits (the seed's loss) with the non-saturating generator loss."""

    name = "bce"

    def __init__(self, label_smoothing: float = 0.0) -> None:
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
        return f"BCELoss(label_smoothing={self.label_smoothing})"


class WassersteinLoss(GANLoss):
    """Wasserstein critic loss. The Lipschitz constraint is a separate choice: penalty=wgan_gp (as
    loss=wgan_gp brings), another penalty, or spectral normalisation of D.

    `discriminator_loss` is mean D(fake) - mean D(real); its negative is the running Wasserstein estimate
    that stability diagnostics log.
    """

    name = "wasserstein"
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


LOSSES: dict[str, type[GANLoss]] = {
    cls.name: cls for cls in (BCELoss, WassersteinLoss, HingeLoss, LSGANLoss)
}


def build_loss(loss_cfg: Any) -> GANLoss:
    """The GANLoss for a `loss` config (DictConfig or dict): `name`, `label_smoothing` (bce only)."""
    name = str(loss_cfg.get("name"))
    if name not in LOSSES:
        raise ConfigError(f"loss.name must be one of {', '.join(LOSSES)}; got {name!r}")
    smoothing = float(loss_cfg.get("label_smoothing") or 0.0)
    if not 0.0 <= smoothing < 1.0:
        raise ConfigError(f"loss.label_smoothing={smoothing} must be in [0, 1). Fix: e.g. loss.label_smoothing=0.1.")
    if name == BCELoss.name:
        return BCELoss(label_smoothing=smoothing)
    if smoothing != 0.0:
        # Refuse rather than ignore: a sweep over label_smoothing with loss=hinge would otherwise
        # report a flat, meaningless response.
        raise ConfigError(
            f"loss.label_smoothing only applies to loss=bce; it is {smoothing} with loss={name}. "
            "Fix: drop loss.label_smoothing or use loss=bce."
        )
    return LOSSES[name]()
