"""GAN losses against closed forms, and the gradient penalty."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from wavegan.errors import ConfigError
from wavegan.training.losses import (
    BCELoss,
    HingeLoss,
    LSGANLoss,
    WGANGPLoss,
    build_loss,
    gradient_penalty,
    random_interpolates,
)

CONF = Path(__file__).resolve().parents[1] / "conf" / "loss"
REAL = np.array([[2.0], [-1.0], [0.5]], dtype=np.float32)
FAKE = np.array([[0.5], [-3.0], [1.5]], dtype=np.float32)


def softplus(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(x))


def load(name: str, **overrides: object):
    return build_loss(OmegaConf.merge(OmegaConf.load(CONF / f"{name}.yaml"), overrides))


def close(value: tf.Tensor, expected: float) -> None:
    assert value.shape == ()
    np.testing.assert_allclose(float(value), expected, rtol=1e-6, atol=1e-6)


def test_configs_build_the_right_losses() -> None:
    assert isinstance(load("bce"), BCELoss) and not load("bce").uses_gradient_penalty
    wgan = load("wgan_gp")
    assert isinstance(wgan, WGANGPLoss) and wgan.gp_weight == 10.0 and wgan.uses_gradient_penalty
    assert isinstance(load("hinge"), HingeLoss) and isinstance(load("lsgan"), LSGANLoss)
    assert load("hinge", gp_weight=5).uses_gradient_penalty  # any loss can take the penalty
    assert build_loss({"name": "wgan_gp"}).gp_weight == 10.0  # default without the yaml


def test_bad_loss_configs() -> None:
    with pytest.raises(ConfigError, match=r"loss\.name"):
        build_loss({"name": "wgan"})
    with pytest.raises(ConfigError, match=r"loss\.gp_weight"):
        build_loss({"name": "wgan_gp", "gp_weight": -1})
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
    loss = load("wgan_gp")
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
    for name in ("bce", "wgan_gp", "hinge", "lsgan"):
        loss = load(name)
        close(loss.discriminator_loss(REAL[:, 0], FAKE[:, 0]), float(loss.discriminator_loss(REAL, FAKE)))


# ------------------------------------------------------------------------------------ gradient penalty


@pytest.mark.parametrize("scale", [0.3, 1.0, 2.5])
def test_gradient_penalty_linear_critic(scale: float) -> None:
    rng = np.random.default_rng(0)
    w = tf.constant(rng.normal(size=(1, 8, 3)).astype(np.float32) * scale)
    norm = float(tf.norm(w))

    def critic(x: tf.Tensor, training: bool = False) -> tf.Tensor:
        return tf.reduce_sum(w * x, axis=[1, 2])[:, None]

    real = tf.constant(rng.normal(size=(5, 8, 3)).astype(np.float32))
    fake = tf.constant(rng.normal(size=(5, 8, 3)).astype(np.float32))
    gp = gradient_penalty(critic, real, fake)
    np.testing.assert_allclose(float(gp), (norm - 1.0) ** 2, rtol=1e-5, atol=1e-6)


def test_gradient_penalty_finite_at_zero_gradient() -> None:
    # A Keras critic whose input gradient is exactly zero (zero kernel), with real == fake.
    critic = keras.Sequential(
        [keras.Input((16, 1)), keras.layers.Flatten(), keras.layers.Dense(1, kernel_initializer="zeros")]
    )
    x = tf.random.normal((4, 16, 1))
    with tf.GradientTape() as tape:
        gp = gradient_penalty(critic, x, x)
    kernel = critic.layers[-1].kernel
    grad = tape.gradient(gp, kernel)  # the bias does not reach the input gradient: no gradient there
    np.testing.assert_allclose(float(gp), 1.0, atol=1e-5)  # (0 - 1)^2
    assert grad is not None and np.all(np.isfinite(grad.numpy()))


def test_gradient_penalty_trains_a_real_discriminator() -> None:
    # Second-order gradients flow through a conv net with phase shuffle (the trainer's use).
    from wavegan.models import build_models

    _, d = build_models({"name": "wavegan", "dim": 2}, (256, 1))
    real, fake = tf.random.uniform((3, 256, 1), -1, 1), tf.random.uniform((3, 256, 1), -1, 1)
    with tf.GradientTape() as tape:
        gp = gradient_penalty(d, real, fake, training=True)
    kernels = [layer.kernel for layer in d.layers if hasattr(layer, "kernel")]
    grads = tape.gradient(gp, kernels)
    assert np.isfinite(float(gp)) and all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_interpolation_factor_is_per_example() -> None:
    real = tf.zeros((64, 10, 2))
    fake = tf.ones((64, 10, 2))
    inter = random_interpolates(real, fake).numpy()
    per_example = inter.reshape(64, -1)
    # Constant within an example (one alpha per example) ...
    np.testing.assert_allclose(per_example, per_example[:, :1] * np.ones_like(per_example))
    alphas = per_example[:, 0]
    # ... different across examples, inside [0, 1].
    assert alphas.min() >= 0 and alphas.max() <= 1 and len(np.unique(alphas)) > 32
    fixed = random_interpolates(real, fake, alpha=tf.fill((64, 1, 1), 0.25)).numpy()
    np.testing.assert_allclose(fixed, 0.25)


def test_interpolation_on_spectrogram_rank() -> None:
    inter = random_interpolates(tf.zeros((8, 4, 4, 1)), tf.ones((8, 4, 4, 1))).numpy()
    assert inter.shape == (8, 4, 4, 1)
    np.testing.assert_allclose(inter.reshape(8, -1).std(axis=1), 0.0, atol=1e-7)


def test_loss_bound_ignores_a_drifting_critic_offset_but_not_a_wasserstein_blow_up() -> None:
    """A WGAN critic whose outputs all drift by +1e4 has a huge G loss (-E D(G(z))) and a calm Wasserstein
    estimate: not divergence. The same G loss under BCE means logits of -1e4 on every fake: divergence."""
    from types import SimpleNamespace

    from wavegan.training.losses import BCELoss, WGANGPLoss
    from wavegan.training.trainer import Diverged, GANTrainer

    drift = {"d_loss": 3.0, "d_adversarial_loss": -2.0, "g_loss": -1.0e4, "samples_finite": 1.0}
    GANTrainer.check(SimpleNamespace(loss=WGANGPLoss(), loss_bound=100.0), 7, drift)
    with pytest.raises(Diverged, match="g_loss"):
        GANTrainer.check(SimpleNamespace(loss=BCELoss(), loss_bound=100.0), 7, {**drift, "g_loss": 1.0e4})
    blow_up = {**drift, "d_adversarial_loss": -1.0e3}
    with pytest.raises(Diverged, match="d_adversarial_loss"):
        GANTrainer.check(SimpleNamespace(loss=WGANGPLoss(), loss_bound=100.0), 7, blow_up)
