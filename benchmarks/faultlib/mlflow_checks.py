"""What a recovered run must hold, against the uninterrupted reference run of the same config.

A run's record: its metric histories (every (step, value) of every metric), the steps of its logged
images, and the bytes of its preview WAV files per step. Compared with the reference's:
* each (metric, step) exactly once (a duplicate is a wrong result),
* every (metric, step) of the reference present (a missing one is lost data), no extra ones,
* equal values, exactly, for every metric but the timing ones (the config promises reproducibility),
* each preview image step once and readable, each preview WAV byte-identical to the reference's.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .harness import Trial

# Metrics that measure the machine, not the training: they differ between any two runs.
TIMING = ("train/samples_per_s",)
_IMAGE = re.compile(r"^(?P<key>.+?)[+%]step[+%](?P<step>\d+)[+%].*(?<!compressed)\.png$")


@dataclass
class RunRecord:
    run_ids: list[str]
    status: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    images: Counter = field(default_factory=Counter)  # (key, step) -> how many image files
    broken_images: list[str] = field(default_factory=list)
    wavs: dict[str, bytes] = field(default_factory=dict)  # artifact path -> bytes


def read_run(db: Path, experiment: str) -> RunRecord:
    """Everything the comparison needs from the one run of `experiment` in the SQLite store `db`.

    Read with sqlite3, not MlflowClient: MLflow keeps one engine per tracking URI for the life of the
    process, and a workspace rebuilt at the same path would be read from the old, deleted file. The raw
    metrics table is also the truth about duplicates: every logged (step, value) is a row."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        rows = runs_of(connection, experiment)
        record = RunRecord([r[0] for r in rows])
        if len(rows) != 1:
            return record
        run_id, record.status, artifact_uri = rows[0]
        record.tags = dict(connection.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,)))
        points = connection.execute(
            "SELECT key, step, value, is_nan FROM metrics WHERE run_uuid = ? ORDER BY key, step, timestamp",
            (run_id,),
        )
        for key, step, value, is_nan in points:
            record.metrics.setdefault(key, []).append((int(step), float("nan") if is_nan else float(value)))
    read_artifacts(record, Path(artifact_uri.removeprefix("file://")))
    return record


def runs_of(connection, experiment: str) -> list[tuple[str, str, str]]:
    """(run id, status, artifact URI) of every active run of `experiment`, from an open SQLite store."""
    return connection.execute(
        "SELECT r.run_uuid, r.status, r.artifact_uri FROM runs r JOIN experiments e "
        "ON r.experiment_id = e.experiment_id WHERE e.name = ? AND r.lifecycle_stage = 'active'",
        (experiment,),
    ).fetchall()


def read_server_run(uri: str, experiment: str, artifacts: Path) -> RunRecord:
    """The same record from a tracking server at `uri` whose artifact destination is the folder
    `artifacts` (`mlflow server --artifacts-destination`). Every logged point, duplicates included: the
    metric history returns each row."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id]) if found else []
    record = RunRecord([r.info.run_id for r in runs])
    if len(runs) != 1:
        return record
    run = runs[0]
    record.status, record.tags = run.info.status, dict(run.data.tags)
    for key in run.data.metrics:
        points = sorted(
            (m.step, m.timestamp, m.value) for m in client.get_metric_history(run.info.run_id, key)
        )
        record.metrics[key] = [(int(step), float(value)) for step, _, value in points]
    # mlflow-artifacts:/<experiment id>/<run id>/artifacts lies under the server's destination folder
    read_artifacts(record, artifacts / run.info.artifact_uri.split(":", 1)[1].lstrip("/"))
    return record


def read_artifacts(record: RunRecord, root: Path) -> None:
    """The preview images (per key and step, and whether each reads back) and WAV bytes under `root`."""
    for path in (root / "images").glob("*.png") if (root / "images").is_dir() else ():
        match = _IMAGE.match(path.name)
        if match:
            record.images[(match["key"], int(match["step"]))] += 1
            if not _readable_png(path):
                record.broken_images.append(path.name)
    for path in sorted(root.glob("**/*.wav")):
        record.wavs[str(path.relative_to(root))] = path.read_bytes()


def _readable_png(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
        return True
    except Exception:
        return False


def compare(trial: Trial, got: RunRecord, reference: RunRecord, exact: bool = True) -> None:
    """Record in `trial` every way `got` differs from `reference` (see the module docstring)."""
    if len(got.run_ids) != 1:
        trial.wrong_result(f"{len(got.run_ids)} MLflow runs instead of one")
        return
    if got.status != "FINISHED" or got.tags.get("outcome") != reference.tags.get("outcome"):
        trial.died(f"run status {got.status}, outcome {got.tags.get('outcome')}")
    for key, points in got.metrics.items():
        steps = [s for s, _ in points]
        if len(steps) != len(set(steps)):
            repeated = sorted(s for s, n in Counter(steps).items() if n > 1)
            trial.wrong_result(f"{key} logs step(s) {repeated} more than once")
    for key, points in reference.metrics.items():
        mine = dict(got.metrics.get(key, []))
        missing = [s for s, _ in points if s not in mine]
        if missing:
            trial.lost(f"{key} lacks step(s) {missing}")
        if exact and key not in TIMING:
            differ = [s for s, v in points if s in mine and mine[s] != v]
            if differ:
                trial.wrong_result(f"{key} differs from the uninterrupted run at step(s) {differ}")
    extra = sorted(set(got.metrics) - set(reference.metrics))
    if extra:
        trial.wrong_result(f"metrics the uninterrupted run does not have: {extra[:5]}")
    if got.images != reference.images:
        trial.wrong_result(f"preview images per step {dict(got.images)} != {dict(reference.images)}")
    if got.broken_images:
        trial.wrong_result(f"unreadable preview images {got.broken_images}")
    for path, data in reference.wavs.items():
        if path not in got.wavs:
            trial.lost(f"preview {path} missing")
        elif exact and got.wavs[path] != data:
            trial.wrong_result(f"preview {path} differs from the uninterrupted run's")
