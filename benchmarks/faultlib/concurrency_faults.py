"""Fault 7: concurrent use of one workspace. Two `wavegan train` runs and two `wavegan sweep` studies
start together (staggered by up to 2 s, drawn per trial) and log into one SQLite mlflow.db (the default
store); the two sweeps share one SQLite study database too; the data folder is empty, so the two runs
build the same data store at once, and so do the two sweeps (theirs is another store).

Invariants: every command exits 0 and none prints "database is locked"; each training run equals the
uninterrupted reference run (every (metric, step) once, the same values, the same previews: so the store
it trained on was complete and the same); each study holds exactly its n_trials results with one parent
run (sweep_faults.check_study), and every seed run logged each of its steps once; each store folder is
complete and no build folder is left behind.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from .harness import Trial
from .mlflow_checks import compare, read_run
from .processes import Workspace
from .sweep_faults import check_study, finish, start_sweep, study_file, sweep_log
from .training_faults import CONFIG, MAX_STEPS, Reference

SWEEP_TRIALS = 2
SWEEP_STEPS = 3  # sweep_faults.STUDY_OVERRIDES: trainer.max_steps=3, log_every=1
LOSSES = ("train/d_loss", "train/g_loss")


def start_train(workspace: Workspace, tag: str) -> subprocess.Popen:
    """`wavegan train` of the reference config, with its own experiment, checkpoint and Hydra folders."""
    config = [c for c in CONFIG if not c.startswith("tracking.experiment=")]
    argv = [sys.executable, "-m", "wavegan.train", *config, f"tracking.experiment=concurrent-{tag}"]
    argv += [
        f"trainer.checkpoint_dir={workspace.root / f'ckpt-{tag}'}",
        f"hydra.run.dir={workspace.root / tag}",
    ]
    with open(workspace.root / f".train-{tag}.log", "w") as log:
        return subprocess.Popen(
            argv, cwd=workspace.root, env=workspace.env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def check_seed_runs(trial: Trial, db: Path, experiment: str) -> None:
    """Every seed run of a study logged each train/ metric's steps once, and steps 1..SWEEP_STEPS of the
    losses."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        rows = connection.execute(
            "SELECT m.run_uuid, m.key, m.step FROM metrics m JOIN runs r ON m.run_uuid = r.run_uuid "
            "JOIN experiments e ON r.experiment_id = e.experiment_id JOIN tags t ON t.run_uuid = r.run_uuid "
            "WHERE e.name = ? AND t.key = 'sweep_seed_index' AND m.key LIKE 'train/%'",
            (experiment,),
        ).fetchall()
    counts = Counter(rows)
    if any(n > 1 for n in counts.values()):
        trial.wrong_result(f"{experiment}: a seed run logged a step twice")
    per_run: dict[tuple[str, str], set[int]] = {}
    for run, key, step in counts:
        per_run.setdefault((run, key), set()).add(step)
    every_step = set(range(1, SWEEP_STEPS + 1))  # the losses; rolling figures begin at the second step
    short = [key for (_, key), steps in per_run.items() if key in LOSSES and steps != every_step]
    if short or {key for _, key in per_run} < set(LOSSES):
        trial.lost(f"{experiment}: seed runs lack steps of {sorted(set(short))[:3] or 'every metric'}")


def check_stores(trial: Trial, data_dir: Path) -> None:
    """Both stores (the runs', the sweeps') complete under their names, no build folder left."""
    leftovers = [p.name for p in data_dir.rglob(".*.partial-*")]
    if leftovers:
        trial.wrong_result(f"build folders left: {leftovers[:3]}")
    stores = [p for p in data_dir.iterdir() if (p / "summary.json").is_file()]
    if len(stores) != 2:
        trial.wrong_result(f"{len(stores)} complete store folder(s) instead of 2")


class ConcurrentUse:
    """Fault 7 (see the module docstring)."""

    name = "concurrent runs and sweeps"
    unavailable = None

    def __init__(self, reference: Reference) -> None:
        self.reference = reference

    def prepare(self, root: Path) -> None:
        self.reference.ensure()

    def trial(self, rng: random.Random, root: Path) -> Trial:
        data_dir = root / "concurrent-data"
        shutil.rmtree(data_dir, ignore_errors=True)
        workspace = Workspace.fresh(root / "concurrent", data_dir, self.reference.template)
        storage = f"sqlite:///{workspace.root / 'optuna.db'}"
        names = ["concurrent_a", "concurrent_b"]
        for name in names:
            study_file(workspace, name, storage, SWEEP_TRIALS)
        starts = [rng.uniform(0, 2) for _ in range(4)]
        trial = Trial("starts at " + ", ".join(f"{s:.1f}" for s in starts) + " s")
        launch = {"a": lambda: start_train(workspace, "a"), "b": lambda: start_train(workspace, "b")}
        launch |= {name: (lambda name=name: start_sweep(workspace, name, name)) for name in names}
        processes, began = {}, time.perf_counter()
        for at, tag in sorted(zip(starts, launch, strict=True)):
            time.sleep(max(0.0, began + at - time.perf_counter()))
            processes[tag] = launch[tag]()
        codes = {tag: finish(process, 900) for tag, process in processes.items()}
        logs = {tag: (workspace.root / f".train-{tag}.log").read_text(errors="replace") for tag in "ab"}
        logs |= {name: sweep_log(workspace, name) for name in names}
        if any("database is locked" in text for text in logs.values()):
            trial.died("'database is locked' in a command's output")
        failed = [tag for tag, code in codes.items() if code != 0]
        if failed:
            trial.died(f"exit statuses {codes}; {failed[0]}: {logs[failed[0]][-300:]}")
            return trial
        for tag in "ab":
            if f"completed: {MAX_STEPS} steps" not in logs[tag]:
                trial.died(f"training {tag} did not complete: {logs[tag][-300:]}")
            compare(trial, read_run(workspace.db, f"concurrent-{tag}"), self.reference.record)
        for name in names:
            check_study(trial, workspace, name, storage, SWEEP_TRIALS)
            check_seed_runs(trial, workspace.db, name)
        check_stores(trial, data_dir)
        return trial
