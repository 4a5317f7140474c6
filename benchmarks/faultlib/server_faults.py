"""Fault 6: the tracking server lost mid-run. `wavegan train` logs to a real `mlflow server` (backed by
PostgreSQL, artifacts served through it) that the harness stops (SIGTERM) or kills (SIGKILL) at a random
moment, then brings back on the same port either at once (down for as long as a restart takes) or only
after the run has given up.

What the product promises (README "What survives what"): while MLflow retries a call, training waits; a
server back within that window costs nothing. Past it, the run ends with exit status 2 and one message
naming the server and the kept checkpoint, and `trainer.resume=true` continues the same MLflow run.
Either way the run ends as the uninterrupted reference run ends: every (metric, step) once, the same
values, the same previews. The trials set MLflow's retry window (MLFLOW_HTTP_REQUEST_MAX_RETRIES and
_BACKOFF_FACTOR; about 4 minutes by default) so that each reaches its side of it: about a minute when the
server comes back at once, about 2 s when it stays down; the two alternate.

`Servers` starts the PostgreSQL and MLflow servers (tests/servers.py) on first use, or takes the test
session's.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

from .harness import Trial
from .mlflow_checks import compare, read_server_run
from .processes import Finished, run
from .training_faults import CONFIG, EXPERIMENT, Reference, check_checkpoints, expect_completed

# MLflow's retry window per trial: long enough to ride out a restart (about 2 + 4 + ... + 32 s of
# back-off), or short enough (about 2 s) that the run gives up while the server stays down.
RETRIES = {
    back: {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(n), "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
    for back, n in (("at once", 6), ("after the run gave up", 2))
}


class Servers:
    """A PostgreSQL server and an `mlflow server` on it, each started on first use (or given)."""

    def __init__(self, root: Path | None = None, postgres=None, mlflow=None) -> None:
        self.root, self._postgres, self._mlflow = root, postgres, mlflow
        self._owned: list = []

    def postgres(self):
        if self._postgres is None:
            from tests.servers import PostgresServer

            self._postgres = PostgresServer().start()
            self._owned.append(self._postgres)
        return self._postgres

    def mlflow(self):
        if self._mlflow is None:
            from tests.servers import MlflowServer

            folder = self.root / "mlflow-server"
            folder.mkdir(parents=True, exist_ok=True)
            backend = self.postgres().create_database("mlflow_faults")
            self._mlflow = MlflowServer(backend, folder).start()
            self._owned.append(self._mlflow)
        return self._mlflow

    def close(self) -> None:
        for server in reversed(self._owned):
            server.close() if hasattr(server, "close") else server.stop()
        self._owned.clear()


class LostTrackingServer:
    """Fault 6 (see the module docstring)."""

    name = "tracking server lost mid-run"
    unavailable = None

    def __init__(self, reference: Reference, servers: Servers) -> None:
        self.reference, self.servers = reference, servers
        self.count = 0
        self.seconds = 0.0  # an uninterrupted run against the server, caches built

    def prepare(self, root: Path) -> None:
        self.reference.ensure()
        server = self.servers.mlflow()
        if not self.seconds:  # the reference built the caches; a run that finds them takes far less
            config = [c for c in CONFIG if not c.startswith("tracking.experiment=")]
            config.append(f"tracking.experiment={EXPERIMENT}-server-warm-{time.time_ns():x}")
            warm = run(self.reference.workspace(), "train", config, env={"MLFLOW_TRACKING_URI": server.url})
            if warm.returncode != 0:
                raise RuntimeError(f"a run against the tracking server failed: {warm.tail(20)}")
            self.seconds = warm.seconds

    def trial(self, rng: random.Random, root: Path) -> Trial:
        server = self.servers.mlflow()
        self.count += 1
        experiment = f"{EXPERIMENT}-server-{self.count}-{rng.randrange(1 << 30):x}"
        config = [c for c in CONFIG if not c.startswith("tracking.experiment=")]
        config.append(f"tracking.experiment={experiment}")
        back = list(RETRIES)[self.count % 2]  # the first trial (the one CI runs): down until it stops
        env = {"MLFLOW_TRACKING_URI": server.url, **RETRIES[back]}
        workspace = self.reference.workspace()
        at = rng.uniform(0.3, 1.0) * self.seconds  # from start-up (the run's creation) to the last step
        how = rng.choice(("stop", "kill"))
        trial = Trial(f"{how} at {at:.1f} s, back {back}")
        result: list[Finished] = []
        training = threading.Thread(target=lambda: result.append(run(workspace, "train", config, env=env)))
        training.start()
        training.join(timeout=at)
        if not training.is_alive():
            trial.finished_first()
            # The warm-up run that sized the window was slower than runs are now (a busier machine):
            # size the next draw by this run, so the outage lands inside it.
            if result:
                self.seconds = min(self.seconds, result[0].seconds)
        else:
            server.stop() if how == "stop" else server.kill()
            if back != "at once":
                training.join(timeout=600)
            server.start()
        training.join(timeout=900)
        first = result[0] if result else None
        if first is None:
            trial.died("the run did not end within 15 minutes")
            return trial
        if first.returncode == 0 and back != "at once" and trial.injected:
            trial.point += " (its last MLflow call came before the outage)"
        if first.returncode == 2 and "cannot reach the MLflow tracking server" in first.stderr:
            trial.point += " (down before the run began: one message; run again)"
            first = run(workspace, "train", config, env=env)
        elif first.returncode == 2 and "lost the MLflow tracking server" in first.stderr:
            lines = first.stderr.strip().splitlines()
            if len(lines) != 1 or "trainer.resume=true" not in lines[0]:
                trial.wrong_result(f"not one message saying how to continue: {first.tail()}")
            trial.point += " (the run stopped; resumed)"
            first = run(workspace, "train", [*config, "trainer.resume=true"], env=env)
        if not expect_completed(trial, first, "the run"):
            return trial
        compare(trial, read_server_run(server.url, experiment, server.artifacts), self.reference.record)
        check_checkpoints(trial, workspace)
        return trial
