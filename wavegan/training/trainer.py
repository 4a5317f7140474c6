"""The GAN training loop: n_critic discriminator steps, then one generator step, in one tf.function.

Read top to bottom: `GANTrainer` owns the two networks, their optimizers, the latent stream, the step
counters and the generator EMA (all checkpointed, so a resumed run continues with the same optimizer
state), and `iteration` is the compiled train step. The stabilisation levers act here: the penalty on D
(penalties.py, lazily every k D steps if asked), instance noise on D's inputs (annealed to 0), and an
exponential moving average of G's weights. The loop (`fit`) only moves batches in and numbers out; a
non-finite or exploding loss or sample stops it at once with `Diverged`, because for a stability study
a diverged run is a result, not a crash.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig
from tqdm import tqdm

from wavegan.models import sample_latent
from wavegan.training.losses import GANLoss
from wavegan.training.optimizers import build_optimizers
from wavegan.training.penalties import Penalty

log = logging.getLogger(__name__)

# Where D's logit separates "real" from "fake" for the accuracy diagnostics; WGAN critics have none.
DECISION_THRESHOLDS = {"bce": 0.0, "hinge": 0.0, "lsgan": 0.5}
# The EMA's decay ramps up as TensorFlow's ExponentialMovingAverage(num_updates) does,
# min(decay, (1 + t) / (10 + t)): early on the average follows G closely instead of being anchored to
# the untrained initial weights, which a 300-step CPU run at decay 0.999 would otherwise still be.
EMA_RAMP = 10.0


class Diverged(Exception):
    def __init__(self, step: int, reason: str) -> None:
        super().__init__(f"training diverged at step {step}: {reason}")
        self.step, self.reason = step, reason


class StopRun(Exception):
    """Raised by a metrics callback to end a run early as a result, e.g. a sweep pruning a trial."""

    def __init__(self, outcome: str = "pruned", message: str = "") -> None:
        super().__init__(message or outcome)
        self.outcome = outcome


@dataclass
class FitResult:
    steps: int
    last_metrics: dict[str, float]
    seconds: float


def _global_norm(grads: list) -> tf.Tensor:
    return tf.linalg.global_norm([tf.cast(g, tf.float32) for g in grads if g is not None])


class GANTrainer:
    def __init__(
        self,
        cfg: DictConfig,
        generator: keras.Model,
        discriminator: keras.Model,
        loss: GANLoss,
        seed: int,
        penalty: Penalty | None = None,
    ) -> None:
        self.generator, self.discriminator, self.loss = generator, discriminator, loss
        self.penalty = penalty or Penalty()
        self.batch_size = int(cfg.trainer.batch_size)
        self.n_critic = int(cfg.trainer.n_critic)
        self.latent_dim = int(cfg.model.latent_dim)
        self.mixed_precision = bool(cfg.trainer.mixed_precision)
        self.loss_bound = float(cfg.trainer.loss_bound)
        self.g_optimizer, self.d_optimizer = build_optimizers(
            cfg.optimizer, self.mixed_precision, int(cfg.trainer.max_steps), self.n_critic
        )
        # Build optimizer slots now so a checkpoint restore fills them rather than deferring.
        self.g_optimizer.build(generator.trainable_variables)
        self.d_optimizer.build(discriminator.trainable_variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.d_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="d_steps")
        self.latents = tf.random.Generator.from_seed(seed)
        # The penalty's random draws (WGAN-GP's interpolation factors, DRAGAN's perturbations) from a
        # generator of the trainer's own: checkpointed, and the same stream however the step is compiled.
        self.penalty_noise = tf.random.Generator.from_seed(seed + 2)
        # Instance noise on D's inputs, sigma_0 annealed linearly to 0 over its steps (Sonderby et al. 2016).
        self.instance_noise = float(cfg.trainer.get("instance_noise") or 0.0)
        noise_steps = cfg.trainer.get("instance_noise_steps") or cfg.trainer.max_steps
        self.instance_noise_steps = float(noise_steps)
        self.noise = tf.random.Generator.from_seed(seed + 1) if self.instance_noise > 0 else None
        # Generator EMA: a copy of G whose weights follow G's (Karras et al. 2018; Yazici et al. 2019).
        self.ema_decay = float(cfg.trainer.get("g_ema") or 0.0)
        self.g_ema: keras.Model | None = None
        if self.ema_decay > 0:
            self.g_ema = keras.models.clone_model(generator)
            self.g_ema.set_weights(generator.get_weights())
        self.threshold = DECISION_THRESHOLDS.get(loss.name)
        # Two compiled steps called from a short Python loop, not one graph with n_critic unrolled D
        # steps: the same speed, and a fifth of the tracing time (tens of seconds on a CPU at n_critic 5).
        self.d_step = tf.function(self._d_step, jit_compile=bool(cfg.trainer.xla))
        self.g_step = tf.function(self._g_step, jit_compile=bool(cfg.trainer.xla))

    def checkpoint(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(
            generator=self.generator,
            discriminator=self.discriminator,
            g_optimizer=self.g_optimizer,
            d_optimizer=self.d_optimizer,
            step=self.step,
            d_steps=self.d_steps,
            latents=self.latents,
            penalty_noise=self.penalty_noise,
            **({"g_ema": self.g_ema} if self.g_ema is not None else {}),
            **({"noise": self.noise} if self.noise is not None else {}),
        )

    # --- the compiled step ------------------------------------------------------------------------

    def _scaled(self, optimizer, loss: tf.Tensor) -> tf.Tensor:
        return optimizer.scale_loss(loss) if self.mixed_precision else loss

    @staticmethod
    def _apply(optimizer, grads: list, variables: list) -> None:
        # A variable the loss cannot reach (e.g. D's output bias under a pure gradient penalty) has
        # no gradient; the optimizers refuse None.
        pairs = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
        optimizer.apply_gradients(pairs)

    def _noisy(self, x: tf.Tensor) -> tf.Tensor:
        """x plus instance noise of the current standard deviation (x itself when the lever is off)."""
        if self.noise is None:
            return x
        progress = tf.cast(self.step, tf.float32) / self.instance_noise_steps
        sigma = self.instance_noise * tf.maximum(0.0, 1.0 - progress)
        return x + tf.cast(sigma * self.noise.normal(tf.shape(x)), x.dtype)

    def _penalty(self, real: tf.Tensor, fake: tf.Tensor) -> tf.Tensor:
        """The penalty's value on this D step: every `penalty.every`-th step only (lazy), else 0."""
        if not self.penalty.active:
            return tf.constant(0.0)
        def value() -> tf.Tensor:
            return self.penalty.value(self.discriminator, real, fake, self.penalty_noise)

        if self.penalty.every == 1:
            return value()
        return tf.cond(
            self.d_steps % self.penalty.every == 0,
            value,
            lambda: tf.constant(0.0),
        )

    def _d_step(self, real: tf.Tensor) -> dict[str, tf.Tensor]:
        z = sample_latent(self.batch_size, self.latent_dim, self.latents)
        # G's forward pass outside the tape: D's update needs no gradient through it.
        fake = self._noisy(self.generator(z, training=True))
        real = self._noisy(real)
        with tf.GradientTape() as tape:
            real_logits = tf.cast(self.discriminator(real, training=True), tf.float32)
            fake_logits = tf.cast(self.discriminator(fake, training=True), tf.float32)
            adversarial = self.loss.discriminator_loss(real_logits, fake_logits)
            penalty = self._penalty(real, fake)
            # Lazy regularisation scales the penalty by k so that its average strength stays weight x value.
            d_loss = adversarial + self.penalty.weight * self.penalty.every * penalty
            scaled = self._scaled(self.d_optimizer, d_loss)  # inside the tape, or it has no gradient
        variables = self.discriminator.trainable_variables
        grads = tape.gradient(scaled, variables)
        self._apply(self.d_optimizer, grads, variables)
        self.d_steps.assign_add(1)
        metrics = {
            "d_loss": d_loss,
            "d_adversarial_loss": adversarial,
            "gradient_penalty": penalty,
            "d_grad_norm": _global_norm(grads),
            "wasserstein": tf.reduce_mean(real_logits) - tf.reduce_mean(fake_logits),
            "d_real_logit": tf.reduce_mean(real_logits),
            "d_fake_logit": tf.reduce_mean(fake_logits),
        }
        if self.threshold is not None:
            metrics["d_acc_real"] = tf.reduce_mean(tf.cast(real_logits > self.threshold, tf.float32))
            metrics["d_acc_fake"] = tf.reduce_mean(tf.cast(fake_logits <= self.threshold, tf.float32))
        return metrics

    def _update_ema(self) -> None:
        t = tf.cast(self.step, tf.float32)
        decay = tf.minimum(self.ema_decay, (1.0 + t) / (EMA_RAMP + t))
        for average, weight in zip(self.g_ema.weights, self.generator.weights, strict=True):
            average.assign(decay * average + (1.0 - decay) * tf.cast(weight, average.dtype))

    def _g_step(self) -> dict[str, tf.Tensor]:
        z = sample_latent(self.batch_size, self.latent_dim, self.latents)
        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            fake_logits = tf.cast(self.discriminator(self._noisy(fake), training=True), tf.float32)
            g_loss = self.loss.generator_loss(fake_logits)
            scaled = self._scaled(self.g_optimizer, g_loss)
        variables = self.generator.trainable_variables
        grads = tape.gradient(scaled, variables)
        self._apply(self.g_optimizer, grads, variables)
        if self.g_ema is not None:
            self._update_ema()
        return {
            "g_loss": g_loss,
            "g_grad_norm": _global_norm(grads),
            "samples_finite": tf.cast(
                tf.reduce_all(tf.math.is_finite(tf.cast(fake, tf.float32))), tf.float32
            ),
        }

    def iteration(self, real_batches: tf.Tensor) -> dict[str, tf.Tensor]:
        """One training iteration: real_batches [n_critic, batch, ...] gives a fresh real batch to each
        D step (as the reference), then one G step. Returns the last D step's and the G step's metrics."""
        for i in range(self.n_critic):
            d_metrics = self.d_step(real_batches[i])
        g_metrics = self.g_step()
        self.step.assign_add(1)
        return {**d_metrics, **g_metrics}

    # --- the loop -----------------------------------------------------------------------------------

    def check(self, step: int, values: dict[str, float]) -> None:
        # Non-finite anything is divergence, whatever the loss: the next update would poison the weights.
        for key in ("d_loss", "g_loss", "wasserstein", "gradient_penalty", "d_grad_norm", "g_grad_norm"):
            if key in values and not np.isfinite(values[key]):
                raise Diverged(step, f"{key} is {values[key]}")
        # The bound applies to what is meaningful for this loss (GANLoss.bounded): not D's total loss (the
        # penalty's weight scales it at the first steps), and not a WGAN critic's drifting offset.
        for key in self.loss.bounded:
            if abs(values[key]) > self.loss_bound:
                raise Diverged(
                    step, f"|{key}| = {abs(values[key]):.3g} exceeds trainer.loss_bound={self.loss_bound:g}"
                )
        if values["samples_finite"] < 1.0:
            raise Diverged(step, "the generator produced non-finite samples")

    def fit(
        self,
        batches: Iterator,
        max_steps: int,
        log_every: int,
        on_log: Callable[[int, dict[str, float]], None],
        on_step: Callable[[int], None],
        progress: bool = True,
    ) -> FitResult:
        """Train until `max_steps` generator updates; `on_log` gets averaged metrics every `log_every`."""
        start = int(self.step.numpy())
        window: dict[str, list[float]] = {}
        started = last_log = time.perf_counter()
        values: dict[str, float] = {}
        bar = tqdm(
            total=max_steps,
            initial=start,
            desc="train",
            unit="step",
            disable=not progress,
            dynamic_ncols=True,
        )
        try:
            for step in range(start + 1, max_steps + 1):
                values = {k: float(v) for k, v in self.iteration(next(batches)).items()}
                self.check(step, values)
                for key, value in values.items():
                    window.setdefault(key, []).append(value)
                bar.update(1)
                if step % log_every == 0 or step == max_steps:
                    now = time.perf_counter()
                    averaged = {k: float(np.mean(v)) for k, v in window.items() if k != "samples_finite"}
                    n = len(window["d_loss"])
                    averaged["samples_per_s"] = (
                        n * self.n_critic * self.batch_size / max(now - last_log, 1e-9)
                    )
                    bar.set_postfix(
                        d_loss=f"{averaged['d_loss']:.3f}",
                        g_loss=f"{averaged['g_loss']:.3f}",
                        samples_s=f"{averaged['samples_per_s']:.0f}",
                    )
                    on_log(step, averaged)
                    window.clear()
                    last_log = now
                on_step(step)
        finally:
            bar.close()
        return FitResult(
            steps=int(self.step.numpy()), last_metrics=values, seconds=time.perf_counter() - started
        )


def checkpoint_manager(trainer: GANTrainer, directory: Path) -> tf.train.CheckpointManager:
    return tf.train.CheckpointManager(trainer.checkpoint(), str(directory), max_to_keep=2)


def configure_tensorflow(
    seed: int,
    deterministic: bool,
    mixed_precision: bool,
    intra_op_threads: int,
    inter_op_threads: int,
) -> None:
    """Fresh Keras state and seeds for one job (Hydra multiruns run many jobs in one process)."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed_precision else "float32")
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    set_op_threads(intra_op_threads, inter_op_threads)


def set_op_threads(intra_op: int, inter_op: int) -> None:
    """How many threads one op may split its work over, and how many ops may run at once (0: TensorFlow's
    choice, all cores). TensorFlow takes them once per process, before its first op.

    Op determinism fixes each op's algorithm, yet with two ops running at once a run's values now and then
    differ from one step on, with the same seed, config and batches, with oneDNN's kernels or Eigen's
    (measured under bursts of load, benchmarks/step_determinism.py --bursts: README "Reproducible resume,
    precisely"). One op at a time removes that; each op still splits its work over the intra-op threads,
    the same way in every run on the machine (a different count would sum in another order)."""
    for name, threads, current, apply in (
        ("intra_op_threads", intra_op, tf.config.threading.get_intra_op_parallelism_threads,
         tf.config.threading.set_intra_op_parallelism_threads),
        ("inter_op_threads", inter_op, tf.config.threading.get_inter_op_parallelism_threads,
         tf.config.threading.set_inter_op_parallelism_threads),
    ):  # fmt: skip
        if current() == threads:  # 0 when unset: TensorFlow's choice is what it runs with
            continue
        try:
            apply(threads)
        except RuntimeError:  # TensorFlow already ran an op in this process with another setting
            log.warning(
                "trainer.%s=%d cannot apply: TensorFlow already runs in this process with %d (0: all "
                "cores), set by an earlier run or op in it. It applies in a new process.",
                name, threads, current(),
            )  # fmt: skip
