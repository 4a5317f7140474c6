"""Penalties on D's input gradient against their formulas (WGAN-GP, DRAGAN, R1, R2), on critics whose
gradients are known in closed form, and the lazy regularisation's scaling."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from wavegan.training.penalties import (
    Penalty,
    dragan_penalty,
    gradient_penalty,
    random_interpolates,
    zero_centred_penalty,
)

RNG = np.random.default_rng(0)
REAL = tf.constant(RNG.normal(size=(5, 8, 3)).astype(np.float32))
FAKE = tf.constant(RNG.normal(size=(5, 8, 3)).astype(np.float32))


def linear_critic(w: tf.Tensor):
    """D(x) = <w, x>: grad_x D = w for every x."""

    def critic(x: tf.Tensor, training: bool = False) -> tf.Tensor:
        return tf.reduce_sum(w * x, axis=[1, 2])[:, None]

    return critic


def quadratic_critic(x: tf.Tensor, training: bool = False) -> tf.Tensor:
    """D(x) = 1/2 ||x||^2: grad_x D = x, so ||grad D(x)||^2 = ||x||^2, different for every example."""
    return 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2])[:, None]


@pytest.mark.parametrize("scale", [0.3, 1.0, 2.5])
def test_gradient_penalty_linear_critic(scale: float) -> None:
    w = tf.constant(RNG.normal(size=(1, 8, 3)).astype(np.float32) * scale)
    norm = float(tf.norm(w))
    gp = gradient_penalty(linear_critic(w), REAL, FAKE)
    np.testing.assert_allclose(float(gp), (norm - 1.0) ** 2, rtol=1e-5, atol=1e-6)


def test_gradient_penalty_at_given_interpolates_quadratic_critic() -> None:
    alpha = tf.constant(RNG.uniform(size=(5, 1, 1)).astype(np.float32))
    x_hat = REAL.numpy() + alpha.numpy() * (FAKE.numpy() - REAL.numpy())
    norms = np.sqrt((x_hat**2).sum(axis=(1, 2)))
    gp = gradient_penalty(quadratic_critic, REAL, FAKE, alpha=alpha)
    np.testing.assert_allclose(float(gp), np.mean((norms - 1.0) ** 2), rtol=1e-5)


def test_dragan_perturbs_around_real_data_only() -> None:
    noise = tf.constant(RNG.uniform(size=REAL.shape).astype(np.float32))
    alpha = tf.constant(RNG.uniform(size=(5, 1, 1)).astype(np.float32))
    x = REAL.numpy()
    x_hat = x + alpha.numpy() * (0.5 * x.std() * noise.numpy())
    expected = np.mean((np.sqrt((x_hat**2).sum(axis=(1, 2))) - 1.0) ** 2)
    value = dragan_penalty(quadratic_critic, REAL, 0.5, noise=noise, alpha=alpha)
    np.testing.assert_allclose(float(value), expected, rtol=1e-5)
    # Kodali et al.: a linear critic with a unit gradient pays nothing, whatever the perturbation.
    w = tf.ones((1, 8, 3)) / np.sqrt(24.0)
    assert float(dragan_penalty(linear_critic(w), REAL)) == pytest.approx(0.0, abs=1e-6)


def test_r1_and_r2_are_half_the_mean_squared_gradient_norm_on_real_and_fake() -> None:
    np.testing.assert_allclose(
        float(zero_centred_penalty(quadratic_critic, REAL)),
        0.5 * np.mean((REAL.numpy() ** 2).sum(axis=(1, 2))),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        float(Penalty("r2", 10.0).value(quadratic_critic, REAL, FAKE)),
        0.5 * np.mean((FAKE.numpy() ** 2).sum(axis=(1, 2))),
        rtol=1e-5,
    )
    assert float(Penalty("r1", 10.0).value(quadratic_critic, REAL, FAKE)) == pytest.approx(
        float(zero_centred_penalty(quadratic_critic, REAL))
    )
    # zero-centred: a constant critic (zero gradient) pays nothing; WGAN-GP would charge it 1
    constant = lambda x, training=False: tf.zeros((x.shape[0], 1)) + 0.0 * tf.reduce_sum(x)  # noqa: E731
    assert float(zero_centred_penalty(constant, REAL)) == 0.0
    assert float(gradient_penalty(constant, REAL, FAKE)) == pytest.approx(1.0, abs=1e-5)


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


@pytest.mark.parametrize("name", ["wgan_gp", "dragan", "r1", "r2"])
def test_every_penalty_trains_a_real_discriminator(name: str) -> None:
    # Second-order gradients flow through a conv net with phase shuffle (the trainer's use).
    from wavegan.models import build_models

    _, d = build_models({"name": "wavegan", "dim": 2}, (256, 1))
    real, fake = tf.random.uniform((3, 256, 1), -1, 1), tf.random.uniform((3, 256, 1), -1, 1)
    with tf.GradientTape() as tape:
        value = Penalty(name, 10.0).value(d, real, fake)
    kernels = [layer.kernel for layer in d.layers if hasattr(layer, "kernel")]
    grads = tape.gradient(value, kernels)
    assert np.isfinite(float(value)) and all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)
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


def test_lazy_penalty_runs_every_kth_d_step_scaled_by_k() -> None:
    """R1 every 3rd D step: the penalty's value is 0 on the other steps, and D's loss carries 3x weight x
    value on the steps it runs, so its average strength is weight x value (StyleGAN2)."""
    from tests.conftest import TINY
    from wavegan.cli.app import compose
    from wavegan.training.run import build_for_training
    from wavegan.training.trainer import GANTrainer

    cfg = compose([*TINY, "loss=bce", "penalty=r1", "penalty.every=3", "penalty.weight=2"])
    generator, discriminator, loss, penalty = build_for_training(cfg)
    trainer = GANTrainer(cfg, generator, discriminator, loss, seed=0, penalty=penalty)
    real = tf.random.uniform((1, 4, 1024, 1), -1, 1, seed=3)
    values = []
    for _ in range(6):
        m = {k: float(v) for k, v in trainer.iteration(real).items()}
        values.append(m["gradient_penalty"])
        np.testing.assert_allclose(
            m["d_loss"], m["d_adversarial_loss"] + 3 * 2.0 * m["gradient_penalty"], rtol=1e-5
        )
    assert [v > 0 for v in values] == [True, False, False, True, False, False]
