"""GAN losses against closed forms, and which losses and penalties the loss configs bring."""

import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from wavegan.cli.app import compose
from wavegan.errors import ConfigError
from wavegan.training.losses import BCELoss, HingeLoss, LSGANLoss, WassersteinLoss, build_loss

REAL = np.array([[2.0], [-1.0], [0.5]], dtype=np.float32)
FAKE = np.array([[0.5], [-3.0], [1.5]], dtype=np.float32)


def softplus(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(x))


def load(name: str, **overrides: object):
    return build_loss(OmegaConf.merge(compose([f"loss={name}"]).loss, overrides))


def close(value: tf.Tensor, expected: float) -> None:
    assert value.shape == ()
    np.testing.assert_allclose(float(value), expected, rtol=1e-6, atol=1e-6)


def test_configs_build_the_right_losses_and_penalties() -> None:
    assert isinstance(load("bce"), BCELoss) and isinstance(load("wasserstein"), WassersteinLoss)
    assert isinstance(load("hinge"), HingeLoss) and isinstance(load("lsgan"), LSGANLoss)
    # loss=wgan_gp is the shorthand for the Wasserstein loss with the WGAN-GP penalty (lambda 10) ...
    wgan_gp = compose(["loss=wgan_gp"])
    assert wgan_gp.loss.name == "wasserstein" and wgan_gp.penalty.name == "wgan_gp"
    assert wgan_gp.penalty.weight == 10.0
    # ... whose penalty a command line can still change; other losses bring none, and take any.
    assert compose(["loss=wgan_gp", "penalty=r1"]).penalty.name == "r1"
    assert compose(["loss=wgan_gp", "penalty=none"]).penalty.name == "none"
    assert compose(["loss=bce"]).penalty.name == "none"
    both = compose(["loss=hinge", "penalty=dragan", "penalty.weight=5"])
    assert both.loss.name == "hinge" and both.penalty.name == "dragan" and both.penalty.weight == 5.0


def test_bad_loss_configs() -> None:
    with pytest.raises(ConfigError, match=r"loss\.name"):
        build_loss({"name": "wgan"})
    with pytest.raises(ConfigError, match=r"loss\.label_smoothing"):
        build_loss({"name": "bce", "label_smoothing": 1.0})
    with pytest.raises(ConfigError, match=r"loss\.label_smoothing"):
        build_loss({"name": "hinge", "label_smoothing": 0.1})


def test_bce_closed_form() -> None:
    loss = load("bce")
    # BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x); D sums the two means.
    close(loss.discriminator_loss(REAL, FAKE), softplus(-REAL).mean() + softplus(FAKE).mean())
    close(loss.generator_loss(FAKE), softplus(-FAKE).mean())


def test_bce_label_smoothing_is_one_sided() -> None:
    loss = load("bce", label_smoothing=0.1)
    # BCE(x, y) = softplus(x) - y x, real labels 0.9, fake labels still 0.
    expected = (softplus(REAL) - 0.9 * REAL).mean() + softplus(FAKE).mean()
    close(loss.discriminator_loss(REAL, FAKE), expected)
    close(loss.generator_loss(FAKE), softplus(-FAKE).mean())  # G's target stays 1


def test_bce_stable_at_extreme_logits() -> None:
    loss = load("bce")
    big = np.array([[100.0], [-100.0]], dtype=np.float32)
    # real logits [100, -100] and fake [-100, 100]: one example each way, so each mean is (100 + 0) / 2.
    d = loss.discriminator_loss(big, -big)
    g = loss.generator_loss(-big)
    close(d, 100.0)
    close(g, 50.0)
    np.testing.assert_allclose(float(loss.discriminator_loss([[-100.0]], [[100.0]])), 200.0, rtol=1e-6)
    np.testing.assert_allclose(float(loss.discriminator_loss([[100.0]], [[-100.0]])), 0.0, atol=1e-6)
    logits = tf.constant([[100.0], [-100.0]])
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = loss.discriminator_loss(logits, logits) + loss.generator_loss(logits)
    assert np.all(np.isfinite(tape.gradient(value, logits).numpy()))


def test_wgan_closed_form() -> None:
    loss = load("wasserstein")
    close(loss.discriminator_loss(REAL, FAKE), FAKE.mean() - REAL.mean())  # no penalty inside
    close(loss.generator_loss(FAKE), -FAKE.mean())


def test_hinge_closed_form() -> None:
    loss = load("hinge")
    expected = np.maximum(0, 1 - REAL).mean() + np.maximum(0, 1 + FAKE).mean()
    close(loss.discriminator_loss(REAL, FAKE), expected)
    close(loss.generator_loss(FAKE), -FAKE.mean())


def test_lsgan_closed_form() -> None:
    loss = load("lsgan")
    close(loss.discriminator_loss(REAL, FAKE), 0.5 * ((REAL - 1) ** 2).mean() + 0.5 * (FAKE**2).mean())
    close(loss.generator_loss(FAKE), 0.5 * ((FAKE - 1) ** 2).mean())


def test_losses_accept_flat_logits() -> None:
    for name in ("bce", "wasserstein", "hinge", "lsgan"):
        loss = load(name)
        close(loss.discriminator_loss(REAL[:, 0], FAKE[:, 0]), float(loss.discriminator_loss(REAL, FAKE)))


def test_loss_bound_ignores_a_drifting_critic_offset_but_not_a_wasserstein_blow_up() -> None:
    """A WGAN critic whose outputs all drift by +1e4 has a huge G loss (-E D(G(z))) and a calm Wasserstein
    estimate: not divergence. The same G loss under BCE means logits of -1e4 on every fake: divergence."""
    from types import SimpleNamespace

    from wavegan.training.losses import BCELoss, WassersteinLoss
    from wavegan.training.trainer import Diverged, GANTrainer

    drift = {"d_loss": 3.0, "d_adversarial_loss": -2.0, "g_loss": -1.0e4, "samples_finite": 1.0}
    GANTrainer.check(SimpleNamespace(loss=WassersteinLoss(), loss_bound=100.0), 7, drift)
    with pytest.raises(Diverged, match="g_loss"):
        GANTrainer.check(SimpleNamespace(loss=BCELoss(), loss_bound=100.0), 7, {**drift, "g_loss": 1.0e4})
    blow_up = {**drift, "d_adversarial_loss": -1.0e3}
    with pytest.raises(Diverged, match="d_adversarial_loss"):
        GANTrainer.check(SimpleNamespace(loss=WassersteinLoss(), loss_bound=100.0), 7, blow_up)
