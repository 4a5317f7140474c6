"""`python -m wavegan.train [overrides]`: one GAN training run, logged to MLflow.

    python -m wavegan.train                                  # WaveGAN, WGAN-GP, built-in notes
    python -m wavegan.train loss=wgan_gp model=dcgan         # SpecGAN-style DCGAN on spectrograms
    python -m wavegan.train -m loss=bce,wgan_gp model=dcgan,wavegan seed=0,1,2   # a grid, one run each
    python -m wavegan.train trainer.resume=true              # continue this config's last run

Order of work: check the config and build the models (so a bad config fails in seconds), ingest or
reuse the data, then train. Outcomes: `completed`; `diverged` (a result of a stability study: tagged
with the step, exit status 0); `failed` (a crash: MLflow status FAILED, non-zero exit).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
from omegaconf import DictConfig, OmegaConf

from wavegan import tracking
from wavegan.caching import cache_key
from wavegan.config.checks import validate_training_config
from wavegan.errors import ConfigError

log = logging.getLogger(__name__)

# Config keys that do not change what is trained: a resumed run may change them.
NOT_IDENTITY = {
    "trainer": (
        "resume",
        "max_steps",
        "progress",
        "checkpoint_dir",
        "log_every",
        "preview_every",
        "checkpoint_every",
        "num_previews",
    ),
    "data": ("store_dir", "token"),
}


@dataclass
class TrainResult:
    outcome: str  # completed | diverged | pruned
    run_id: str
    steps: int
    diverged_step: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # the last value of every logged metric
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


# Called with (step, {metric name: value}) whenever metrics are logged; raising StopRun ends the run
# early as a result (the sweep's pruner uses this).
MetricsCallback = Callable[[int, dict[str, float]], None]


def run_identity(cfg: DictConfig) -> str:
    """A hash of what is trained (not of how often it logs or how long it runs): the checkpoint folder."""
    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("tracking", None)
    container.pop("hydra", None)
    for group, keys in NOT_IDENTITY.items():
        for key in keys:
            container.get(group, {}).pop(key, None)
    return cache_key(container, 16)


def sweep_tags() -> dict[str, str]:
    """In a Hydra multirun, a sweep id common to all its jobs, so the UI can group them."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode == RunMode.MULTIRUN:
            from wavegan.training.callbacks import sweep_id_for

            return {
                "sweep_id": sweep_id_for(hc.sweep.dir),
                "sweep_dir": str(hc.sweep.dir),
                "hydra_job_num": str(hc.job.num),
            }
    except ValueError:  # not running under @hydra.main (tests, the sweep driver)
        pass
    return {}


def build_for_training(cfg: DictConfig):
    """Check the config and build (generator, discriminator, loss, penalty): everything that can fail
    because of the config, before any data is built or any step trained."""
    from wavegan.models import build_models
    from wavegan.representations import build_representation
    from wavegan.training.losses import build_loss
    from wavegan.training.penalties import Penalty
    from wavegan.training.trainer import configure_tensorflow

    validate_training_config(cfg)
    configure_tensorflow(int(cfg.seed), bool(cfg.trainer.deterministic), bool(cfg.trainer.mixed_precision))
    shape = build_representation(
        cfg.preprocessing, int(cfg.data.slice_len), int(cfg.data.sample_rate)
    ).feature_shape()
    generator, discriminator = build_models(cfg.model, tuple(shape))
    return generator, discriminator, build_loss(cfg.loss), Penalty.from_config(cfg.penalty)


def train(
    cfg: DictConfig,
    on_metrics: MetricsCallback | None = None,
    parent_run_id: str | None = None,
    extra_tags: dict[str, str] | None = None,
) -> TrainResult:
    """One run; raises ConfigError/DataError for user errors, re-raises crashes after tagging them.

    `parent_run_id` nests the run under another MLflow run (a sweep's study run); `extra_tags` are
    added to the run's tags; `on_metrics` sees every logged metric and may stop the run (StopRun).
    """
    from wavegan.data.pipeline import load_features, make_dataset
    from wavegan.data.store import open_store
    from wavegan.training.evaluation import QualityMonitor
    from wavegan.training.previews import Previewer
    from wavegan.training.trainer import Diverged, GANTrainer, StopRun, checkpoint_manager

    generator, discriminator, loss, penalty = build_for_training(cfg)
    store = open_store(cfg.data, progress=bool(cfg.trainer.progress))
    features, representation = load_features(store, cfg.preprocessing)
    seed, max_steps = int(cfg.seed), int(cfg.trainer.max_steps)
    quality = QualityMonitor(cfg, store, generator, representation) if cfg.eval.enabled else None

    trainer = GANTrainer(cfg, generator, discriminator, loss, seed, penalty)
    # The EMA generator (trainer.g_ema > 0) is previewed and evaluated beside G: eval_ema/..., previews_ema/.
    quality_ema = previewer_ema = None
    if trainer.g_ema is not None:
        if quality:
            quality_ema = QualityMonitor(
                cfg, store, trainer.g_ema, representation, "eval_ema/", quality.evaluator
            )
        previewer_ema = Previewer(
            cfg, trainer.g_ema, representation, int(cfg.data.sample_rate), image_key="previews_ema"
        )
    ckpt_dir = Path(str(cfg.trainer.checkpoint_dir)).expanduser().resolve() / run_identity(cfg)
    run_id = _resume_point(cfg, ckpt_dir)
    manager = checkpoint_manager(trainer, ckpt_dir)
    if run_id:
        manager.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        log.info("resuming run %s at step %d", run_id, int(trainer.step.numpy()))
    # A resumed run sees a different (still seeded) data order: the shuffle buffer is not checkpointed.
    start_step = int(trainer.step.numpy())
    dataset = make_dataset(features["train"], int(cfg.trainer.batch_size), seed + start_step)
    batches = iter(dataset.batch(trainer.n_critic, drop_remainder=True))

    active = _start_run(cfg, run_id, parent_run_id)
    run_id = active.info.run_id
    (ckpt_dir / "mlflow_run_id").write_text(run_id)
    previewer = Previewer(cfg, generator, representation, int(cfg.data.sample_rate))
    # On resume: the run's history so far (stability figures and the quality reference need every point
    # since step 0), and the points logged after the checkpoint by the process that died, which the
    # steps re-run now must not log a second time.
    history, logged_after = _logged_history(run_id, start_step) if start_step else ({}, {})

    def record(step: int, metrics: dict[str, float]) -> None:
        fresh = {k: v for k, v in metrics.items() if step not in logged_after.get(k, ())}
        if fresh:
            mlflow.log_metrics(fresh, step=step)
        for key, value in metrics.items():
            history.setdefault(key, []).append((step, value))
        if on_metrics is not None:
            on_metrics(step, metrics)

    def evaluate() -> dict[str, float]:
        return quality.score() | (quality_ema.score() if quality_ema else {})

    def on_step(step: int) -> None:
        if step % int(cfg.trainer.preview_every) == 0:
            previewer.log(f"previews/step_{step:06d}", step, f"step {step}")
            if previewer_ema:
                previewer_ema.log(f"previews_ema/step_{step:06d}", step, f"EMA generator, step {step}")
        if quality and int(cfg.eval.every) and step % int(cfg.eval.every) == 0 and step < max_steps:
            record(step, evaluate())
        if step % int(cfg.trainer.checkpoint_every) == 0:
            manager.save(checkpoint_number=step)

    def finish(outcome: str, step: int, diverged_step: int | None = None) -> TrainResult:
        """Run-level figures under stability/ for every outcome: a diverged run is a data point too."""
        from wavegan.metrics.stability import run_stability

        mlflow.set_tag("outcome", outcome)
        figures = run_stability(history, outcome, diverged_step, max_steps, str(cfg.eval.quality_key))
        mlflow.log_metrics({k: v for k, v in figures.items() if np.isfinite(v)}, step=step)
        history.update({k: [(step, v)] for k, v in figures.items()})
        return TrainResult(outcome, run_id, step, diverged_step, _last(history), history)

    with active:
        mlflow.set_tags(_run_tags(cfg, store, extra_tags))
        if quality and quality.evaluator.labels_available:
            # An unfit classifier (held-out accuracy below eval.classifier.min_accuracy) makes IS, FD,
            # coverage and entropy measure the classifier as much as the generator: say so on the run.
            mlflow.set_tag("classifier_reliable", str(quality.evaluator.classifier_reliable).lower())
        if start_step == 0:
            mlflow.log_params(tracking.flatten(cfg))
            tracking.log_config(cfg)
            data_figures = {
                "data/train_clips": len(features["train"]),
                "data/store_clips": store.summary["num_clips"],
            }
            record(0, data_figures | (quality.reference() if quality else {}))
        log.info(
            "MLflow run %s (%s) in experiment '%s'; checkpoints in %s",
            run_id, active.info.run_name, cfg.tracking.experiment, ckpt_dir,
        )  # fmt: skip
        try:
            fit = trainer.fit(
                batches,
                max_steps,
                int(cfg.trainer.log_every),
                lambda step, m: record(step, _with_oscillation(history, m)),
                on_step,
                progress=bool(cfg.trainer.progress),
            )
            if quality:
                record(fit.steps, evaluate())
        except Diverged as exc:
            mlflow.set_tags({"diverged_step": str(exc.step), "diverged_reason": exc.reason})
            log.warning("DIVERGED: %s. The run is recorded as outcome=diverged (a result, not a crash).", exc)
            return finish("diverged", exc.step, exc.step)
        except StopRun as exc:
            mlflow.set_tag("stopped_step", str(int(trainer.step.numpy())))
            log.info("run stopped early (%s): %s", exc.outcome, exc)
            return finish(exc.outcome, int(trainer.step.numpy()))
        except KeyboardInterrupt:
            manager.save(checkpoint_number=int(trainer.step.numpy()))
            step = int(trainer.step.numpy())
            log.warning("interrupted at step %d; continue with trainer.resume=true", step)
            mlflow.set_tag("outcome", "interrupted")
            mlflow.end_run(status="KILLED")
            raise
        except BaseException:
            mlflow.set_tag("outcome", "failed")
            mlflow.end_run(status="FAILED")
            raise
        manager.save(checkpoint_number=fit.steps)
        previewer.log("samples/final", None, f"final samples, step {fit.steps}")
        if previewer_ema:
            previewer_ema.log("samples/final_ema", None, f"EMA generator, final samples, step {fit.steps}")
        if cfg.tracking.log_model:
            with tempfile.TemporaryDirectory() as tmp:
                generator.save(Path(tmp) / "generator.keras")
                mlflow.log_artifact(str(Path(tmp) / "generator.keras"), "model")
                if trainer.g_ema is not None:
                    trainer.g_ema.save(Path(tmp) / "generator_ema.keras")
                    mlflow.log_artifact(str(Path(tmp) / "generator_ema.keras"), "model")
        return finish("completed", fit.steps)


def _logged_history(
    run_id: str, start_step: int
) -> tuple[dict[str, list[tuple[int, float]]], dict[str, set[int]]]:
    """(every metric's points up to `start_step`, the steps logged after it per metric) of a run."""
    client = mlflow.tracking.MlflowClient()
    history: dict[str, list[tuple[int, float]]] = {}
    after: dict[str, set[int]] = {}
    for key in client.get_run(run_id).data.metrics:
        points = sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
        history[key] = [(step, value) for step, value in points if step <= start_step]
        after[key] = {step for step, _ in points if step > start_step}
    return history, after


def _start_run(cfg: DictConfig, run_id: str | None, parent_run_id: str | None):
    tracking.configure()
    if run_id:
        # MLflow refuses to reopen a run while another experiment is the active one (set_experiment
        # by an earlier job in this process): make the run's own experiment active first.
        mlflow.set_experiment(experiment_id=mlflow.get_run(run_id).info.experiment_id)
        return mlflow.start_run(run_id=run_id)
    return mlflow.start_run(
        experiment_id=tracking.experiment_id(str(cfg.tracking.experiment)),
        run_name=cfg.tracking.run_name or default_run_name(cfg),
        parent_run_id=parent_run_id,
        nested=parent_run_id is not None,
    )


def default_run_name(cfg: DictConfig) -> str:
    """<model>-<loss>[+<penalty>][-<d_norm>]-seed<seed>, e.g. wavegan-wasserstein+wgan_gp-seed0."""
    penalty = "" if cfg.penalty.name == "none" else f"+{cfg.penalty.name}"
    norm = "" if str(cfg.model.d_norm) == "none" else f"-{cfg.model.d_norm}"
    return f"{cfg.model.name}-{cfg.loss.name}{penalty}{norm}-seed{cfg.seed}"


def _run_tags(cfg: DictConfig, store, extra_tags: dict[str, str] | None) -> dict[str, str]:
    tags = {
        "model": cfg.model.name,
        "loss": cfg.loss.name,
        "penalty": str(cfg.penalty.name),
        "d_norm": str(cfg.model.d_norm),
        "g_norm": str(cfg.model.g_norm),
        "seed": str(cfg.seed),
        "outcome": "running",
        "preprocessing": cfg.preprocessing.name,
        "data": cfg.data.source,
        "store": store.root.name,
        **sweep_tags(),
        **(extra_tags or {}),
    }
    if commit := tracking.git_commit():
        tags["git_commit"] = commit
    return tags


OSCILLATION_WINDOW = 5  # logged points; the same window stability/d_loss_osc summarises


def _with_oscillation(history: dict, metrics: dict[str, float]) -> dict[str, float]:
    """train/ metrics plus the rolling standard deviation of the D and G losses (oscillation)."""
    out = {f"train/{k}": v for k, v in metrics.items()}
    for key in ("d_loss", "g_loss"):
        recent = [v for _, v in history.get(f"train/{key}", [])[-(OSCILLATION_WINDOW - 1) :]]
        if recent:
            out[f"train/{key}_rolling_std"] = float(np.std([*recent, metrics[key]]))
    return out


def _last(history: dict[str, list[tuple[int, float]]]) -> dict[str, float]:
    return {key: values[-1][1] for key, values in history.items() if values}


def _resume_point(cfg: DictConfig, ckpt_dir: Path) -> str | None:
    """The MLflow run to continue, or None for a fresh run (whose checkpoints replace older ones)."""
    has_checkpoint = (ckpt_dir / "checkpoint").is_file() and (ckpt_dir / "mlflow_run_id").is_file()
    if cfg.trainer.resume:
        if not has_checkpoint:
            raise ConfigError(
                f"trainer.resume=true but this config has no checkpoint in {ckpt_dir}. Fix: run without "
                "trainer.resume (or with the same config as the run to continue; only trainer.max_steps and "
                "logging intervals may change)."
            )
        return (ckpt_dir / "mlflow_run_id").read_text().strip()
    if ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    return None
