"""Continuing a run (`trainer.resume=true`) on the MLflow side: which run, what it already holds, and what
the process that died left half done. The checkpoint side is wavegan/training/checkpoints.py.

A killed run has logged up to some step past its last checkpoint. The resumed run re-trains from the
checkpoint and must neither log a (metric, step) a second time nor keep a preview that was half written:
`logged_history` gives every step MLflow holds per metric (train.py logs each pair once), and
`discard_artifacts_after` removes the previews after the checkpoint, which the re-run steps log again.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
from omegaconf import DictConfig

from wavegan import failpoints
from wavegan.errors import ConfigError
from wavegan.secret_masking import mask_url

log = logging.getLogger(__name__)

RUN_ID_FILE = "mlflow_run_id"  # in the checkpoint folder: the MLflow run its checkpoints belong to
# A logged image's file name carries its step: images/<key>+step+<step>+timestamp+... (`%` in older MLflow)
_IMAGE_STEP = re.compile(r"[+%]step[+%](\d+)[+%]")
_PREVIEW_STEP = re.compile(r"/step_(\d+)$")
_STEPPED_FOLDERS = (("images", _IMAGE_STEP), ("previews", _PREVIEW_STEP), ("previews_ema", _PREVIEW_STEP))


def resume_point(cfg: DictConfig, ckpt_dir: Path) -> str | None:
    """The MLflow run to continue, or None for a fresh run (whose checkpoints replace older ones).

    The run's id is written (atomically) as soon as the run exists, before any step: a run killed before
    its first checkpoint continues in the same MLflow run from step 0."""
    if cfg.trainer.resume:
        if not (ckpt_dir / RUN_ID_FILE).is_file():
            raise ConfigError(
                f"trainer.resume=true but this config has no checkpoint in {ckpt_dir}. Fix: run without "
                "trainer.resume (or with the same config as the run to continue; only trainer.max_steps and "
                "logging intervals may change)."
            )
        return (ckpt_dir / RUN_ID_FILE).read_text().strip()
    if ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    return None


def experiment_of(run_id: str, uri: str) -> str:
    """The experiment of the run a checkpoint belongs to; a ConfigError when the tracking store lacks it."""
    try:
        return mlflow.get_run(run_id).info.experiment_id
    except mlflow.exceptions.MlflowException:
        raise ConfigError(
            f"trainer.resume=true: the checkpoint belongs to MLflow run {run_id}, which the tracking store "
            f"{mask_url(uri)} does not have. Fix: set MLFLOW_TRACKING_URI to that run's store, or run "
            "without trainer.resume to start over."
        ) from None


def logged_history(
    run_id: str, start_step: int
) -> tuple[dict[str, list[tuple[int, float]]], dict[str, set[int]]]:
    """(every metric's points up to `start_step`, every step logged per metric) of a run."""
    client = mlflow.tracking.MlflowClient()
    history: dict[str, list[tuple[int, float]]] = {}
    logged: dict[str, set[int]] = {}
    for key in client.get_run(run_id).data.metrics:
        points = sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
        history[key] = [(step, value) for step, value in points if step <= start_step]
        logged[key] = {step for step, _ in points}
    return history, logged


def discard_artifacts_after(run_id: str, start_step: int) -> None:
    """Remove the previews the dead process logged after the checkpoint (one may be half written): the
    steps re-run now log them again, so each step keeps one complete set."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(mlflow.get_run(run_id).info.artifact_uri)
    stale = []
    for folder, pattern in _STEPPED_FOLDERS:
        for info in repo.list_artifacts(folder):
            match = pattern.search(info.path)
            if match and int(match.group(1)) > start_step:
                stale.append(info.path)
    for path in stale:
        try:
            repo.delete_artifacts(path)
        except Exception as exc:  # a store that cannot delete keeps a second copy of those previews
            log.warning("could not remove %s, logged after the checkpoint: %s", path, exc)


def steps(batches: Iterator) -> Iterator:
    """The batches, passing the `train.step` failpoint before each step's (wavegan/failpoints.py)."""
    for batch in batches:
        failpoints.reach("train.step")
        yield batch
