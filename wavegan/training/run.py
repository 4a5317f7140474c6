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

import contextlib
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
from omegaconf import DictConfig, OmegaConf

from wavegan import failpoints, tracking
from wavegan.caching import cache_key
from wavegan.config.checks import validate_training_config
from wavegan.training import resume

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
    configure_tensorflow(
        int(cfg.seed),
        bool(cfg.trainer.deterministic),
        bool(cfg.trainer.mixed_precision),
        int(cfg.trainer.intra_op_threads),
        int(cfg.trainer.inter_op_threads),
    )
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
    from wavegan.training import checkpoints
    from wavegan.training.evaluation import QualityMonitor
    from wavegan.training.previews import Previewer
    from wavegan.training.trainer import Diverged, GANTrainer, StopRun

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
    run_id = resume.resume_point(cfg, ckpt_dir)
    resumed = run_id is not None
    monitors = {"quality_memory": quality, "quality_ema_memory": quality_ema}
    checkpoint = checkpoints.training_checkpoint(
        trainer, {name: monitor.memory() for name, monitor in monitors.items() if monitor}
    )
    if resumed:
        restored = checkpoints.restore_latest_complete(checkpoint, ckpt_dir)
        if restored is None:
            log.info("run %s ended before its first checkpoint: training it again from step 0", run_id)
        else:
            log.info("resuming run %s at step %d (checkpoint ckpt-%d)", run_id, restored, restored)
    manager = checkpoints.manager(checkpoint, ckpt_dir)  # after the restore, which repairs its state file
    start_step = int(trainer.step.numpy())
    # The data order is a function of the seed and the position, so a resumed run takes the batches an
    # uninterrupted one would: n_critic batches per step (wavegan/data/pipeline.py).
    dataset = make_dataset(
        features["train"], int(cfg.trainer.batch_size), seed, start_batch=start_step * trainer.n_critic
    )
    batches = resume.steps(iter(dataset.batch(trainer.n_critic, drop_remainder=True)))

    active = _start_run(cfg, run_id, parent_run_id)
    run_id = active.info.run_id
    checkpoints.write_text_atomically(ckpt_dir / resume.RUN_ID_FILE, run_id)
    failpoints.reach("train.start")
    previewer = Previewer(cfg, generator, representation, int(cfg.data.sample_rate))
    # On resume: the run's history so far (stability figures and the quality reference need every point
    # since step 0), and every (metric, step) MLflow already holds: the process that died may have logged
    # past its last checkpoint, and the steps re-run now must not log those a second time.
    history, logged = resume.logged_history(run_id, start_step) if resumed else ({}, {})
    if resumed:
        resume.discard_artifacts_after(run_id, start_step)

    def log_once(step: int, metrics: dict[str, float]) -> None:
        """Each (metric, step) reaches MLflow once and the history once, however often the run resumed."""
        fresh = {k: v for k, v in metrics.items() if step not in logged.setdefault(k, set())}
        if fresh:
            failpoints.reach("mlflow.log")
            mlflow.log_metrics(fresh, step=step)
            for key in fresh:
                logged[key].add(step)
        for key, value in metrics.items():
            points = history.setdefault(key, [])
            if not points or points[-1][0] < step:
                points.append((step, value))

    def record(step: int, metrics: dict[str, float]) -> None:
        log_once(step, metrics)
        if on_metrics is not None:
            on_metrics(step, metrics)

    def evaluate() -> dict[str, float]:
        failpoints.reach("eval")
        return quality.score() | (quality_ema.score() if quality_ema else {})

    def on_step(step: int) -> None:
        if step % int(cfg.trainer.preview_every) == 0:
            failpoints.reach("preview.log")
            with tracking.disk_full_reported(f"the step-{step} previews"):
                previewer.log(f"previews/step_{step:06d}", step, f"step {step}")
                if previewer_ema:
                    previewer_ema.log(f"previews_ema/step_{step:06d}", step, f"EMA generator, step {step}")
        if quality and int(cfg.eval.every) and step % int(cfg.eval.every) == 0 and step < max_steps:
            record(step, evaluate())
        if step % int(cfg.trainer.checkpoint_every) == 0:
            checkpoints.save(manager, step)

    def finish(outcome: str, step: int, diverged_step: int | None = None) -> TrainResult:
        """Run-level figures under stability/ for every outcome: a diverged run is a data point too."""
        from wavegan.metrics.stability import run_stability

        mlflow.set_tag("outcome", outcome)
        figures = run_stability(history, outcome, diverged_step, max_steps, str(cfg.eval.quality_key))
        log_once(step, {k: v for k, v in figures.items() if np.isfinite(v)})
        history.update({k: [(step, v)] for k, v in figures.items()})
        # End the run here, inside the lost-server handler below, not when `with active` is left: ending
        # it is a call to the server too (MLflow reads the run back to print its address), and a server
        # lost at that moment must end in the same one message, not a traceback.
        mlflow.end_run()
        return TrainResult(outcome, run_id, step, diverged_step, _last(history), history)

    with active:
        try:
            mlflow.set_tags(_run_tags(cfg, store, extra_tags))
            if quality and quality.evaluator.labels_available:
                # An unfit classifier (held-out accuracy below eval.classifier.min_accuracy) makes IS, FD,
                # coverage and entropy measure the classifier as much as the generator: say so on the run.
                mlflow.set_tag("classifier_reliable", str(quality.evaluator.classifier_reliable).lower())
            params = tracking.flatten(cfg)
            if resumed:  # a run killed before it had logged them all; the values already there stay
                params = {k: v for k, v in params.items() if k not in mlflow.get_run(run_id).data.params}
            if params:  # config.yaml first: a run that dies writing it has no params yet, so writes it again
                with tracking.disk_full_reported("the run's config.yaml"):
                    tracking.log_config(cfg)
                mlflow.log_params(params)
            if "data/train_clips" not in logged:
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
                log.warning(
                    "DIVERGED: %s. The run is recorded as outcome=diverged (a result, not a crash).", exc
                )
                return finish("diverged", exc.step, exc.step)
            except StopRun as exc:
                mlflow.set_tag("stopped_step", str(int(trainer.step.numpy())))
                log.info("run stopped early (%s): %s", exc.outcome, exc)
                return finish(exc.outcome, int(trainer.step.numpy()))
            except KeyboardInterrupt:
                checkpoints.save(manager, int(trainer.step.numpy()))
                step = int(trainer.step.numpy())
                log.warning("interrupted at step %d; continue with trainer.resume=true", step)
                mlflow.set_tag("outcome", "interrupted")
                mlflow.end_run(status="KILLED")
                raise
            except BaseException:
                if tracking.server_unreachable():  # said below; tagging it now would wait minutes
                    raise
                mlflow.set_tag("outcome", "failed")
                mlflow.end_run(status="FAILED")
                raise
            # (a step at a multiple of checkpoint_every was saved by on_step)
            if fit.steps != start_step and fit.steps % int(cfg.trainer.checkpoint_every):
                checkpoints.save(manager, fit.steps)
            with tracking.disk_full_reported("the final samples"):
                previewer.log("samples/final", None, f"final samples, step {fit.steps}")
                if previewer_ema:
                    title = f"EMA generator, final samples, step {fit.steps}"
                    previewer_ema.log("samples/final_ema", None, title)
            if cfg.tracking.log_model:
                with tempfile.TemporaryDirectory() as tmp, tracking.disk_full_reported("the generator model"):
                    generator.save(Path(tmp) / "generator.keras")
                    mlflow.log_artifact(str(Path(tmp) / "generator.keras"), "model")
                    if trainer.g_ema is not None:
                        trainer.g_ema.save(Path(tmp) / "generator_ema.keras")
                        mlflow.log_artifact(str(Path(tmp) / "generator_ema.keras"), "model")
            return finish("completed", fit.steps)
        except Exception:
            if not tracking.server_unreachable():
                raise
            # The server stopped answering for longer than MLflow retries: end the run here without waiting
            # for it again (its status is set if it is back; the `with` then has no run to end), keep the
            # checkpoints, say how to continue.
            active_now = mlflow.active_run()
            if active_now is not None and active_now.info.run_id == run_id:  # not a sweep's parent run
                with tracking.without_retries(), contextlib.suppress(Exception):
                    mlflow.end_run(status="FAILED")
            kept = manager.latest_checkpoint
            where = (
                f"The checkpoint {Path(kept).name} is kept in {ckpt_dir}." if kept else "No checkpoint yet."
            )
            step = int(trainer.step.numpy())
            raise tracking.lost_server_error(mlflow.get_tracking_uri(), step, where) from None


def _start_run(cfg: DictConfig, run_id: str | None, parent_run_id: str | None):
    uri = tracking.configure()
    if run_id:
        tracking.check_server(uri)  # else MLflow retries for minutes, then says the run is missing
        experiment = resume.experiment_of(run_id, uri)
        # MLflow refuses to reopen a run while another experiment is the active one (set_experiment
        # by an earlier job in this process): make the run's own experiment active first.
        mlflow.set_experiment(experiment_id=experiment)
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
