"""The optimised training step against a straightforward one (issue 11): same losses, same weights.

The trainer computes strided convolutions as stride-1 ones or as im2col + matmul
(wavegan/models/convolutions.py), crops phase shuffle's output with a split, runs G's forward pass
outside D's tape and draws the penalty's randomness from its own generator. The reference here is the
plain thing: the same networks with Keras's own conv ops (`use_reference_ops`), the same initial weights
and random streams, and one GradientTape step written out in full (n_critic D steps, then one G step;
Adam from the same config). After one iteration the losses and every weight must agree to float32
rounding.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import TINY
from wavegan.cli.app import compose
from wavegan.models import PhaseShuffle, build_models, convolutions, sample_latent
from wavegan.models.convolutions import use_reference_ops
from wavegan.training.optimizers import build_optimizers
from wavegan.training.run import build_for_training
from wavegan.training.trainer import GANTrainer

SEED = 3
WAVEGAN = [*TINY, "data.slice_len=1024", "model.upsample=zeros", "trainer.n_critic=3"]
DCGAN = [*TINY, "model=dcgan", "data.slice_len=4096", "trainer.n_critic=3"]


class ReferenceStep:
    """n_critic D steps and one G step, written as plainly as possible, on copies of the trainer's
    networks (Keras's own conv ops) and copies of its random streams."""

    def __init__(self, trainer: GANTrainer, cfg) -> None:
        self.t = trainer
        data_shape = trainer.generator.output_shape[1:]
        self.g, self.d = build_models(cfg.model, data_shape)
        self.g.set_weights(trainer.generator.get_weights())
        self.d.set_weights(trainer.discriminator.get_weights())
        shuffles = [
            [layer for layer in model.layers if isinstance(layer, PhaseShuffle)]
            for model in (trainer.discriminator, self.d)
        ]
        for ours, theirs in zip(*shuffles, strict=True):  # the same shifts: copies of each layer's RNG state
            if ours.seed_generator is not None:
                theirs.seed_generator.state.assign(ours.seed_generator.state)
        use_reference_ops(self.g)
        use_reference_ops(self.d)
        # The same learning-rate schedule as the trainer's (optimizer.lr_decay_start runs over the run).
        t = cfg.trainer
        self.g_opt, self.d_opt = build_optimizers(cfg.optimizer, False, int(t.max_steps), int(t.n_critic))
        self.latents = tf.random.Generator.from_seed(SEED)
        self.penalty_noise = tf.random.Generator.from_seed(SEED + 2)
        self.noise = tf.random.Generator.from_seed(SEED + 1)
        self.g_ema = [w.numpy().copy() for w in trainer.generator.weights] if trainer.g_ema else None
        self.d_steps = 0

    def noisy(self, x: tf.Tensor, step: int) -> tf.Tensor:
        if self.t.instance_noise <= 0:
            return x
        sigma = self.t.instance_noise * max(0.0, 1.0 - step / self.t.instance_noise_steps)
        return x + sigma * self.noise.normal(tf.shape(x))

    def input_grad_sq(self, x: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(self.d(x, training=True))
        grads = tape.gradient(total, x)
        return tf.reduce_sum(tf.square(grads), axis=list(range(1, grads.shape.rank)))

    def penalty(self, real: tf.Tensor, fake: tf.Tensor) -> tf.Tensor:
        name = self.t.penalty.name
        if name == "wgan_gp":
            alpha = self.penalty_noise.uniform([real.shape[0]] + [1] * (real.shape.rank - 1))
            x_hat = real + alpha * (fake - real)
            return tf.reduce_mean(tf.square(tf.sqrt(self.input_grad_sq(x_hat) + 1e-12) - 1.0))
        assert name == "r1"
        return 0.5 * tf.reduce_mean(self.input_grad_sq(real))

    def iteration(self, real_batches: tf.Tensor, step: int) -> dict[str, float]:
        t, penalty = self.t, self.t.penalty
        for i in range(t.n_critic):
            z = sample_latent(t.batch_size, t.latent_dim, self.latents)
            fake = self.noisy(self.g(z, training=True), step)
            real = self.noisy(real_batches[i], step)
            with tf.GradientTape() as tape:
                adversarial = t.loss.discriminator_loss(
                    self.d(real, training=True), self.d(fake, training=True)
                )
                value = tf.constant(0.0)
                if penalty.active and self.d_steps % penalty.every == 0:
                    value = self.penalty(real, fake)
                d_loss = adversarial + penalty.weight * penalty.every * value
            grads = tape.gradient(d_loss, self.d.trainable_variables)
            self.d_opt.apply_gradients(
                [(g, v) for g, v in zip(grads, self.d.trainable_variables, strict=True) if g is not None]
            )
            self.d_steps += 1
        z = sample_latent(t.batch_size, t.latent_dim, self.latents)
        with tf.GradientTape() as tape:
            g_loss = t.loss.generator_loss(self.d(self.noisy(self.g(z, training=True), step), training=True))
        grads = tape.gradient(g_loss, self.g.trainable_variables)
        self.g_opt.apply_gradients(zip(grads, self.g.trainable_variables, strict=True))
        if self.g_ema is not None:
            decay = min(t.ema_decay, (1.0 + step) / (10.0 + step))
            self.g_ema = [
                decay * a + (1 - decay) * w.numpy() for a, w in zip(self.g_ema, self.g.weights, strict=True)
            ]
        return {"d_loss": float(d_loss), "gradient_penalty": float(value), "g_loss": float(g_loss)}


def _trainer(overrides: list[str]) -> tuple[GANTrainer, object]:
    cfg = compose(overrides)
    generator, discriminator, loss, penalty = build_for_training(cfg)
    return GANTrainer(cfg, generator, discriminator, loss, SEED, penalty), cfg


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param([*WAVEGAN, "loss=wgan_gp"], id="wavegan-wgan_gp"),
        pytest.param([*DCGAN, "loss=wgan_gp"], id="dcgan-wgan_gp"),
        pytest.param(
            [
                *WAVEGAN,
                "loss=hinge",
                "penalty=r1",
                "penalty.every=2",
                "model.d_norm=spectral",
                "trainer.g_ema=0.9",
                "trainer.instance_noise=0.1",
            ],
            id="wavegan-hinge-lazy_r1-spectral-ema-noise",
        ),  # fmt: skip
        pytest.param([*DCGAN, "loss=bce", "penalty=r1", "model.d_norm=layer"], id="dcgan-bce-r1-layer_norm"),
    ],
)
def test_optimised_step_matches_a_plain_gradient_tape_step(overrides: list[str]) -> None:
    trainer, cfg = _trainer(overrides)
    reference = ReferenceStep(trainer, cfg)
    real = tf.random.uniform(
        (trainer.n_critic, trainer.batch_size, *trainer.generator.output_shape[1:]), -1, 1, seed=1
    )
    for step in range(2):
        got = {k: float(v) for k, v in trainer.iteration(real).items()}
        want = reference.iteration(real, step)
        for key, value in want.items():
            np.testing.assert_allclose(got[key], value, rtol=2e-4, atol=1e-5, err_msg=key)
    # Adam divides each gradient element by its own running size, so an element whose gradient is ~0 moves
    # by up to lr in a direction that rounding decides: 1 % of lr bounds those few; a wrong gradient moves
    # most elements by ~lr.
    atol = 0.01 * float(cfg.optimizer.lr)
    pairs = [
        *zip(trainer.generator.weights, reference.g.weights, strict=True),
        *zip(trainer.discriminator.weights, reference.d.weights, strict=True),
    ]
    if reference.g_ema is not None:
        pairs += zip(trainer.g_ema.weights, reference.g_ema, strict=True)
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours.numpy(), np.asarray(theirs), rtol=1e-4, atol=atol, err_msg=ours.path)


def test_im2col_matmul_convolutions_match_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The im2col + matmul form that paper-size WaveGAN's short, deep convs take, forced on every conv."""
    monkeypatch.setattr(convolutions, "MATMUL_MAX_LENGTH", 1 << 30)
    monkeypatch.setattr(convolutions, "MATMUL_MIN_DEPTH", 0)
    test_optimised_step_matches_a_plain_gradient_tape_step([*WAVEGAN, "loss=wgan_gp"])


def test_same_seed_gives_the_same_losses() -> None:
    """The determinism guarantee: one seed, one config, one machine -> the same losses, bit for bit."""
    runs = []
    for _ in range(2):
        trainer, _ = _trainer([*WAVEGAN, "loss=wgan_gp"])
        real = tf.random.uniform((trainer.n_critic, trainer.batch_size, 1024, 1), -1, 1, seed=1)
        runs.append([{k: float(v) for k, v in trainer.iteration(real).items()} for _ in range(2)])
    assert runs[0] == runs[1]


def test_reference_ops_switch_reaches_spectrally_normalised_convolutions() -> None:
    _, d = build_models(compose([*WAVEGAN, "model.d_norm=spectral"]).model, (1024, 1))
    use_reference_ops(d)
    convs = [layer for layer in d._flatten_layers() if isinstance(layer, keras.layers.Conv1D)]
    assert convs and all(layer.reference for layer in convs)
