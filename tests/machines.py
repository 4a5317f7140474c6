"""Workers as if on separate machines (tests/study/test_multi_machine.py, benchmarks/study_workers.py):
each one is the `wavegan sweep` command in its own process and its own working directory, holding only
the study file; they share nothing but the database URL, MLFLOW_TRACKING_URI and WAVEGAN_DATA_DIR."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.conftest import REPO_ROOT, TINY

WAVEGAN = [sys.executable, "-c", "import sys; from wavegan.cli import main; sys.exit(main())"]


def study_file(name: str, n_trials: int, **keys) -> dict:
    overrides = [o for o in TINY if not o.startswith("tracking.experiment")]
    return {
        "description": "a tiny study shared by several workers",
        "study_name": name,
        "overrides": [
            *overrides,
            "trainer.max_steps=3",
            "trainer.preview_every=1000",  # the final samples still go to the server's artifact store
            "trainer.checkpoint_every=1000",
            "tracking.log_model=false",
            f"tracking.experiment={name}",
        ],
        "search_space": {"optimizer.lr": "tag(log, interval(1e-5, 1e-3))"},
        "seeds": 1,
        "sampler": {"name": "random", "seed": 0},
        "pruner": "none",
        "n_trials": n_trials,
        "heartbeat_interval": 1,
        "grace_period": 10,  # a worker starved of CPU for longer is taken for dead (see lost_claim)
    } | keys


def machine(root: Path, name: str, study: dict) -> Path:
    """A worker's working directory, holding only the study file (sweeps/<name>.yaml)."""
    cwd = root / name
    (cwd / "sweeps").mkdir(parents=True)
    (cwd / "sweeps" / f"{study['study_name']}.yaml").write_text(yaml.safe_dump(study))
    return cwd


def machine_env(shared: Path, tracking_uri: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAVEGAN_", "MLFLOW_"))}
    return env | {
        "PYTHONPATH": str(REPO_ROOT),
        "CUDA_VISIBLE_DEVICES": "",
        "MLFLOW_TRACKING_URI": tracking_uri,
        "WAVEGAN_DATA_DIR": str(shared / "data"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


class Worker:
    def __init__(self, cwd: Path, study: str, storage: str, env: dict[str, str], *extra: str) -> None:
        self.cwd, self.log = cwd, cwd / "worker.log"
        command = [*WAVEGAN, "sweep", f"sweep={study}", f"sweep.storage={storage}", *extra]
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, deadline: float) -> int:
        try:
            return self.process.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"worker in {self.cwd} did not finish in time:\n{self.output[-4000:]}")


def run_workers(workers: list[Worker], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    for worker in workers:
        code = worker.wait(deadline)
        assert code == 0, f"worker in {worker.cwd} exited {code}:\n{worker.output[-4000:]}"


def wait_until(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}")


def counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The trials that count toward n_trials (not a dead worker's trial that was retried)."""
    trials = study.get_trials()
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    return [t for t in trials if t.state != TrialState.FAIL or t.number not in retried]
