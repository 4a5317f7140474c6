"""Fault 3: kill -9 of `wavegan sweep` workers, one or all, at random moments, with the study on SQLite
or on PostgreSQL; then the command is run again. Invariants: exactly n_trials results, no trial counted
twice (a dead worker's trial is retried once, and only the retry counts), one MLflow parent run, and no
MLflow run left RUNNING.

Two workers are two `wavegan sweep` commands sharing the study (as on two machines; in one workspace, so
they share its SQLite mlflow.db). The kill lands anywhere: at start-up, while a worker claims a trial,
mid-trial (training, logging, checkpointing), while the report is written.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.study.studies import TINY

from .harness import Trial
from .mlflow_checks import runs_of
from .processes import Workspace, template_store

N_TRIALS = 3
STUDY_OVERRIDES = [*TINY, "trainer.progress=false"]  # a WaveGAN that trains 3 steps in seconds


def study_file(workspace: Workspace, name: str, storage: str, n_trials: int = N_TRIALS) -> None:
    """sweeps/<name>.yaml in the workspace: `n_trials` tiny trials, a dead worker detected in seconds."""
    study = {
        "description": "fault injection",
        "study_name": name,
        "overrides": [*STUDY_OVERRIDES, f"tracking.experiment={name}"],
        "search_space": {"optimizer.lr": "tag(log, interval(1e-5, 1e-3))"},
        "seeds": 1,
        "sampler": {"name": "random", "seed": 0},
        "pruner": "none",
        "n_trials": n_trials,
        "storage": storage,
        "results_dir": str(workspace.root / "results" / name),
        "heartbeat_interval": 1,
        "grace_period": 6,  # longer than a worker starved by its neighbours on 2 cores stays silent
    }
    (workspace.root / "sweeps").mkdir(exist_ok=True)
    (workspace.root / "sweeps" / f"{name}.yaml").write_text(yaml.safe_dump(study))


def start_sweep(workspace: Workspace, name: str, tag: str) -> subprocess.Popen:
    """`wavegan sweep sweep=<name>` in the workspace, in its own process group (so a kill reaches it
    whole), output in .sweep-<tag>.log."""
    argv = [sys.executable, "-c", "import sys; from wavegan.cli import main; sys.exit(main())"]
    with open(workspace.root / f".sweep-{tag}.log", "w") as log:
        return subprocess.Popen(
            [*argv, "sweep", f"sweep={name}"],
            cwd=workspace.root,
            env=workspace.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def sweep_log(workspace: Workspace, tag: str) -> str:
    return (workspace.root / f".sweep-{tag}.log").read_text(errors="replace")


def kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def finish(process: subprocess.Popen, timeout: float) -> int | None:
    """The exit status, or None (and the process group killed) past `timeout`."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        return None


def check_study(trial: Trial, workspace: Workspace, name: str, storage: str, n_trials: int) -> None:
    """The study holds exactly n_trials results, each counted once; MLflow one parent run and nothing
    left RUNNING (see the module docstring)."""
    import optuna

    from wavegan.study.storage import count_trials

    study = optuna.load_study(study_name=name, storage=storage)
    try:
        trials = study.get_trials()
    finally:
        with contextlib.suppress(Exception):
            study._storage.engine.dispose()  # noqa: SLF001  (a PostgreSQL connection per trial otherwise)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    counted = [t for t in trials if not (t.state.name == "FAIL" and t.number in retried)]
    counted = [t for t in counted if t.user_attrs.get("outcome") not in ("surplus", "aborted")]
    done = count_trials(trials).done
    complete = [t for t in counted if t.state.name == "COMPLETE"]
    if done < n_trials or len(complete) < n_trials:
        trial.lost(f"{done} trial(s) done, {len(complete)} complete, of {n_trials}")
    if done > n_trials or len(complete) > n_trials:
        trial.wrong_result(f"{len(complete)} complete trials counted for n_trials={n_trials}")
    lrs = [t.params.get("optimizer.lr") for t in complete]
    if len(set(lrs)) != len(lrs):
        trial.wrong_result("one trial's parameters counted twice (a retry and its original)")
    with contextlib.closing(sqlite3.connect(f"file:{workspace.db}?mode=ro", uri=True)) as db:
        runs = [(run, status) for run, status, _ in runs_of(db, name)]
        tags = {(run, key): value for run, key, value in db.execute("SELECT run_uuid, key, value FROM tags")}
    status = dict(runs)
    parents = [run for run, _ in runs if tags.get((run, "role")) == "study"]
    if len(parents) != 1:
        trial.wrong_result(f"{len(parents)} MLflow parent runs for one study")
    elif status[parents[0]] != "FINISHED":
        trial.died(f"the parent run is {status[parents[0]]}")
    running = [run for run, state in runs if state == "RUNNING"]
    if running:
        trial.wrong_result(f"{len(running)} MLflow run(s) left RUNNING")
    for t in complete:
        run = t.user_attrs.get("mlflow_run_id")
        if run not in status or status[run] != "FINISHED" or tags.get((run, "state")) != "complete":
            trial.lost(
                f"trial {t.number}'s MLflow run is {status.get(run)}, state {tags.get((run, 'state'))}"
            )
        elif parents and tags.get((run, "mlflow.parentRunId")) != parents[0]:
            trial.wrong_result(f"trial {t.number}'s run is not under the parent run")


class KillSweepWorkers:
    """Fault 3 (see the module docstring); trials alternate between PostgreSQL and SQLite storage."""

    name = "kill -9 sweep workers"
    unavailable = None

    def __init__(self, servers) -> None:
        self.servers = servers  # server_faults.Servers: PostgreSQL on first use
        self.count = 0

    def prepare(self, root: Path) -> None:
        self.template = template_store(root / "template.db")
        self.data_dir = root / "sweep-data"
        self.servers.postgres()

    def trial(self, rng: random.Random, root: Path) -> Trial:
        self.count += 1
        workspace = Workspace.fresh(root / "sweep-trial", self.data_dir, self.template)
        on_postgres = self.count % 2 == 1  # the first trial (the one CI runs) on PostgreSQL
        name = f"faults_sweep_{self.count}"
        if on_postgres:
            storage = self.servers.postgres().create_database(name)
        else:
            storage = f"sqlite:///{workspace.root / 'optuna.db'}"
        study_file(workspace, name, storage)
        which = rng.choice(("one", "all"))
        # From start-up (imports take ~10 s) through claims and trials to the report (a sweep takes ~40 s)
        times = sorted(rng.uniform(2, 40) for _ in range(1 if which == "one" else 2))
        moments = ", ".join(f"{t:.0f}" for t in times)
        trial = Trial(f"{'postgres' if on_postgres else 'sqlite'}, kill {which} at {moments} s")
        workers = [start_sweep(workspace, name, str(i)) for i in range(2)]
        started = time.perf_counter()
        killed = []
        for at, victim in zip(times, rng.sample(workers, len(times)), strict=False):
            time.sleep(max(0.0, started + at - time.perf_counter()))
            if victim.poll() is None:
                kill_group(victim)
                killed.append(victim)
        if not killed:
            trial.finished_first()
        elif len(killed) < len(times):
            trial.point += f" ({len(times) - len(killed)} finished first)"
        for i, worker in enumerate(workers):
            if worker not in killed and finish(worker, 900) != 0:
                trial.died(
                    f"a surviving worker exited {worker.returncode}: {sweep_log(workspace, str(i))[-300:]}"
                )
                return trial
        resumed = start_sweep(workspace, name, "resumed")
        if finish(resumed, 900) != 0:
            trial.died(
                f"the resumed sweep exited {resumed.returncode}: {sweep_log(workspace, 'resumed')[-300:]}"
            )
            return trial
        logs = "".join(sweep_log(workspace, tag) for tag in ("0", "1", "resumed"))
        if "database is locked" in logs:
            trial.wrong_result("'database is locked' in a worker's output")
        if "Traceback" in sweep_log(workspace, "resumed"):
            trial.wrong_result("the resumed sweep printed a traceback")
        check_study(trial, workspace, name, storage, N_TRIALS)
        return trial
