"""Running `wavegan` commands as a user does, each trial in a workspace of its own, and killing them.

A workspace is a working directory with its own MLflow store (`mlflow.db`, artifacts under `mlruns/`),
checkpoint folder and Hydra output folder; the data store folder may be shared, as users share it. A
command is killed with SIGKILL (kill -9) in one of three ways: at a named failpoint inside it
(wavegan/failpoints.py, `WAVEGAN_FAILPOINT`), after a time, or a moment after a file appears (a cache's
partial folder: the kill then lands inside the build).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KILLED = -signal.SIGKILL


@dataclass
class Workspace:
    root: Path
    data_dir: Path

    @property
    def db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.db}"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def artifacts(self) -> Path:
        return self.root / "mlruns"

    def env(self, failpoint: str | None = None, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "WAVEGAN_FAILPOINT"}
        env.update(
            PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
            WAVEGAN_DATA_DIR=str(self.data_dir),
            MLFLOW_TRACKING_URI=self.tracking_uri,
            WAVEGAN_CHECKPOINT_DIR=str(self.checkpoints),
            CUDA_VISIBLE_DEVICES="",
            **extra,
        )
        if failpoint:
            env["WAVEGAN_FAILPOINT"] = failpoint
        return env

    @classmethod
    def fresh(cls, root: Path, data_dir: Path, template_db: Path | None = None) -> Workspace:
        """An empty workspace at `root` (whatever was there is removed), its MLflow store copied from
        `template_db` (creating a store's tables takes seconds; a copy does not)."""
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        workspace = cls(root, data_dir)
        if template_db is not None:
            shutil.copyfile(template_db, workspace.db)
        return workspace


def template_store(path: Path) -> Path:
    """An MLflow SQLite store with its tables created and no experiment but the default one."""
    if not path.exists():
        from mlflow.tracking import MlflowClient

        MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    @property
    def killed(self) -> bool:
        return self.returncode == KILLED

    def tail(self, lines: int = 6) -> str:
        return " | ".join((self.stderr or self.stdout).strip().splitlines()[-lines:])


def run(
    workspace: Workspace,
    command: str,
    args: list[str],
    *,
    failpoint: str | None = None,
    kill_after: float | None = None,
    kill_when: tuple[Callable[[], bool], float] | None = None,
    timeout: float = 900,
    env: dict[str, str] | None = None,
) -> Finished:
    """`python -m wavegan.<command> <args>` in the workspace; killed as asked (see the module docstring).
    `kill_when` is (a condition polled every 5 ms, seconds to wait once it holds)."""
    argv = [sys.executable, "-m", f"wavegan.{command}", *args]
    if command in ("train", "data", "evaluate"):
        argv.append(f"hydra.run.dir={workspace.root / 'hydra'}")
    out, err = workspace.root / f".{command}.stdout", workspace.root / f".{command}.stderr"
    started = time.perf_counter()
    with open(out, "w") as stdout, open(err, "w") as stderr:
        process = subprocess.Popen(
            argv,
            cwd=workspace.root,
            env={**workspace.env(failpoint), **(env or {})},
            stdout=stdout,
            stderr=stderr,
        )
        timed_out = _watch(process, started, kill_after, kill_when, timeout)
    return Finished(
        process.returncode, out.read_text(), err.read_text(), time.perf_counter() - started, timed_out
    )


def _watch(process: subprocess.Popen, started: float, kill_after, kill_when, timeout: float) -> bool:
    deadline = started + timeout
    kill_at = started + kill_after if kill_after is not None else None
    while process.poll() is None:
        now = time.perf_counter()
        if now > deadline:
            process.kill()
            process.wait()
            return True
        if kill_when is not None and kill_at is None and kill_when[0]():
            kill_at = now + kill_when[1]
        if kill_at is not None and now >= kill_at:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return False
        time.sleep(0.005)
    return False
