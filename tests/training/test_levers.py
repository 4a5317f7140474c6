"""The stabilisation levers, one at a time, with every model and every loss: each valid combination builds
and takes a training step, each invalid one is refused at config time with one message; the generator
EMA against its closed form; instance noise's and the learning-rate decay's schedules."""

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import TINY
from wavegan.cli.app import compose
from wavegan.config.checks import validate_training_config
from wavegan.errors import ConfigError
from wavegan.models import build_models
from wavegan.training.losses import build_loss
from wavegan.training.optimizers import LinearDecay
from wavegan.training.penalties import Penalty
from wavegan.training.trainer import GANTrainer

SHAPES = {"wavegan": (256, 1), "dcgan": (16, 16, 1), "audiosynth": (128, 128, 1)}
LOSSES = ["bce", "wgan_gp", "hinge", "lsgan"]
LEVERS = [
    "penalty=wgan_gp",
    "penalty=dragan",
    "penalty=r1",
    "penalty=r2",
    "penalty=r1 penalty.every=2",
    "model.d_norm=batch",
    "model.d_norm=layer",
    "model.d_norm=spectral",
    "model.g_norm=batch",
    "trainer.g_ema=0.9",
    "trainer.instance_noise=0.1",
    "optimizer.g_lr=1e-4 optimizer.d_lr=4e-4",
    "loss.label_smoothing=0.1",
    "optimizer.lr_decay_start=0.5",
]


def trainer_for(overrides: list[str], model: str) -> GANTrainer:
    cfg = compose([*TINY, f"model={model}", "model.dim=2", *overrides])
    validate_training_config(cfg)
    generator, discriminator = build_models(cfg.model, SHAPES[model])
    return GANTrainer(
        cfg, generator, discriminator, build_loss(cfg.loss), 0, Penalty.from_config(cfg.penalty)
    )


def refusal(overrides: list[str]) -> str | None:
    """Why a combination is invalid (the ConfigError's key), or None."""
    text = " ".join(overrides)
    if "d_norm=batch" in text and ("penalty=" in text.replace("penalty=none", "") or "loss=wgan_gp" in text):
        return "model.d_norm=batch"
    if "label_smoothing" in text and "loss=bce" not in text:
        return "loss.label_smoothing"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("model", list(SHAPES))
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("lever", LEVERS)
def test_each_lever_with_every_model_and_loss_steps_or_is_refused(lever: str, loss: str, model: str) -> None:
    overrides = [f"loss={loss}", *lever.split()]
    reason = refusal(overrides)
    if reason:
        with pytest.raises(ConfigError, match=reason.replace(".", r"\.")):
            trainer_for(overrides, model)
        return
    trainer = trainer_for(overrides, model)
    trainer.d_step, trainer.g_step = trainer._d_step, trainer._g_step  # eager: one step, no tracing cost
    real = tf.random.uniform((1, 4, *SHAPES[model]), -1, 1, seed=1)
    metrics = {k: float(v) for k, v in trainer.iteration(real).items()}
    assert np.isfinite(metrics["d_loss"]) and np.isfinite(metrics["g_loss"])
    if "penalty=" in lever or loss == "wgan_gp":
        assert metrics["gradient_penalty"] > 0


@pytest.mark.parametrize(
    "overrides",
    [
        ["loss=bce", "penalty=r1"],
        ["loss=bce", "model.d_norm=spectral"],
        ["loss=bce", "penalty=r1", "model.d_norm=spectral"],
    ],
)
def test_the_regularisation_study_pairs_train_compiled(overrides: list[str]) -> None:
    trainer = trainer_for(overrides, "wavegan")
    real = tf.random.uniform((1, 4, 256, 1), -1, 1, seed=1)
    for _ in range(2):
        metrics = {k: float(v) for k, v in trainer.iteration(real).items()}
    assert np.isfinite(metrics["d_loss"]) and int(trainer.step.numpy()) == 2


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["loss=wgan_gp", "model.d_norm=batch"], r"model\.d_norm=batch"),
        (["loss=bce", "penalty=dragan", "model.d_norm=batch"], r"model\.d_norm=batch"),
        (["loss=bce", "penalty=wgan_gp", "penalty.every=4"], r"penalty\.every"),
        (["loss=hinge", "loss.label_smoothing=0.1"], r"loss\.label_smoothing"),
        (["trainer.g_ema=1.0"], r"trainer\.g_ema"),
        (["trainer.instance_noise=-0.1"], r"trainer\.instance_noise"),
        (["penalty.weight=-1"], r"penalty\.weight"),
        (["model.d_norm=group"], r"model\.d_norm"),
        (["trainer.batch_size=1000000000"], r"trainer\.batch_size"),
        (["trainer.max_steps=1000000000000"], r"trainer\.max_steps"),
        (["optimizer.lr=nan"], r"optimizer\.lr"),
        (["optimizer.lr_decay_start=1.5"], r"optimizer\.lr_decay_start"),
    ],
)
def test_invalid_combinations_are_refused_naming_the_key(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        validate_training_config(compose([*TINY, *overrides]))


def test_bce_with_batch_norm_in_d_and_no_penalty_is_valid() -> None:
    validate_training_config(compose([*TINY, "loss=bce", "model.d_norm=batch"]))


def test_ema_weights_follow_the_closed_form() -> None:
    """After each G step the average moves to decay_t * average + (1 - decay_t) * weights, with
    decay_t = min(decay, (1 + t) / (10 + t)) at generator step t (TensorFlow's num_updates ramp)."""
    trainer = trainer_for(["loss=bce", "trainer.g_ema=0.9"], "wavegan")
    real = tf.random.uniform((1, 4, 256, 1), -1, 1, seed=1)
    expected = [w.numpy().copy() for w in trainer.generator.weights]
    np.testing.assert_array_equal(expected[0], trainer.g_ema.weights[0].numpy())  # starts as a copy of G
    for t in range(4):
        trainer.iteration(real)
        decay = min(0.9, (1.0 + t) / (10.0 + t))
        expected = [
            decay * e + (1 - decay) * w.numpy()
            for e, w in zip(expected, trainer.generator.weights, strict=True)
        ]
    for e, a in zip(expected, trainer.g_ema.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), e, rtol=1e-5, atol=1e-6)
    assert not np.allclose(trainer.g_ema.weights[0].numpy(), trainer.generator.weights[0].numpy())


def test_instance_noise_is_annealed_linearly_to_zero() -> None:
    trainer = trainer_for(
        ["loss=bce", "trainer.instance_noise=0.5", "trainer.instance_noise_steps=4"], "wavegan"
    )
    x = tf.zeros((64, 256, 1))
    stds = []
    for step in range(6):
        trainer.step.assign(step)
        stds.append(float(tf.math.reduce_std(trainer._noisy(x))))
    np.testing.assert_allclose(stds[:4], [0.5, 0.375, 0.25, 0.125], rtol=0.05)
    assert stds[4] == 0.0 and stds[5] == 0.0
    off = trainer_for(["loss=bce"], "wavegan")
    assert off._noisy(x) is x


def test_learning_rates_decay_linearly_to_zero_over_each_networks_updates() -> None:
    """optimizer.lr_decay_start=0.5 with max_steps 4 and n_critic 2: G's rate is constant for 2 of its 4
    updates and D's for 4 of its 8, then both fall on a straight line to 0; they follow a real run's steps."""
    trainer = trainer_for(
        ["loss=bce", "optimizer.lr=1e-3", "optimizer.lr_decay_start=0.5", "trainer.n_critic=2"], "wavegan"
    )
    g_schedule, d_schedule = trainer.g_optimizer._learning_rate, trainer.d_optimizer._learning_rate
    g_rates = [float(g_schedule(i)) for i in range(5)]
    np.testing.assert_allclose(g_rates, [1e-3, 1e-3, 1e-3, 5e-4, 0.0], rtol=1e-6)
    d_rates = [float(d_schedule(i)) for i in (0, 4, 6, 8)]
    np.testing.assert_allclose(d_rates, [1e-3, 1e-3, 5e-4, 0.0], rtol=1e-6)
    assert float(trainer.g_optimizer.learning_rate) == pytest.approx(1e-3)
    real = tf.random.uniform((2, 4, 256, 1), -1, 1, seed=1)
    for _ in range(3):
        trainer.iteration(real)
    assert float(trainer.g_optimizer.learning_rate) == pytest.approx(5e-4, rel=1e-5)  # after 3 G updates
    assert float(trainer.d_optimizer.learning_rate) == pytest.approx(5e-4, rel=1e-5)  # after 6 D updates
    constant = trainer_for(["loss=bce", "optimizer.lr=1e-3", "optimizer.lr_decay_start=null"], "wavegan")
    assert not isinstance(constant.g_optimizer._learning_rate, LinearDecay)
