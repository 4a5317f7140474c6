"""A study on several machines, against real servers the tests start themselves (tests/servers.py): a
PostgreSQL server holds the study, an `mlflow server` backed by the same PostgreSQL holds the runs and
(through --serve-artifacts) their artifacts.

Each worker is the `wavegan sweep` command in its own process and its own working directory, as if on
its own machine: the workers share nothing but the database URL, MLFLOW_TRACKING_URI and the data root
(WAVEGAN_DATA_DIR). The README's "Running a study on several machines" gives these commands.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from tests.machines import WAVEGAN, Worker, counted, machine, machine_env, run_workers, study_file, wait_until
from wavegan.study.storage import count_trials

pytestmark = pytest.mark.system


def check_study(study: optuna.Study, n_trials: int, tracking_uri: str, experiment: str) -> dict:
    """Exactly n_trials finished, each with its own number and parameters, one MLflow parent run with
    every trial's run nested under it, and each seed's run nested under its trial's."""
    results = counted(study)
    assert count_trials(study.get_trials()).done == n_trials
    assert [t.state for t in results] == [TrialState.COMPLETE] * n_trials, [t.state for t in results]
    assert len({t.number for t in results}) == n_trials
    assert len({t.params["optimizer.lr"] for t in results}) == n_trials, "two workers ran the same params"
    mlflow.set_tracking_uri(tracking_uri)
    runs = mlflow.search_runs(experiment_names=[experiment], output_format="list")
    parents = [r for r in runs if r.data.tags.get("role") == "study"]
    assert len(parents) == 1, f"{len(parents)} MLflow parent runs for one study"
    assert parents[0].info.status == "FINISHED"
    trial_runs = {r.info.run_id: r for r in runs if r.data.tags.get("role") == "trial"}
    for t in results:
        run = trial_runs[t.user_attrs["mlflow_run_id"]]
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.data.tags["state"] == "complete" and run.info.status == "FINISHED"
    seeds = [r for r in runs if "sweep_seed_index" in r.data.tags]
    trial_ids = {t.user_attrs["mlflow_run_id"] for t in results}
    assert {r.data.tags["mlflow.parentRunId"] for r in seeds} >= trial_ids
    return {"parent": parents[0], "runs": runs}


@pytest.fixture
def cluster(postgres_server, mlflow_tracking_server, tmp_path):
    """A fresh study database, the shared tracking server and a shared data root."""
    shared = tmp_path / "shared"
    shared.mkdir()
    name = f"study_{tmp_path.name[-24:].replace('-', '_')}"
    return {
        "storage": postgres_server.create_database(name.lower()),
        "tracking": mlflow_tracking_server.url,
        "env": machine_env(shared, mlflow_tracking_server.url),
        "root": tmp_path,
        "name": name,
        "postgres": postgres_server,
        "mlflow": mlflow_tracking_server,
    }


def test_three_workers_on_three_machines_run_one_study_to_exactly_n_trials(cluster):
    n_trials, name = 6, cluster["name"]
    study_spec = study_file(name, n_trials)
    started = time.perf_counter()
    workers = [
        Worker(machine(cluster["root"], f"machine{i}", study_spec), name, cluster["storage"], cluster["env"])
        for i in range(3)
    ]
    run_workers(workers, 420)
    seconds = time.perf_counter() - started
    study = optuna.load_study(study_name=name, storage=cluster["storage"])
    check_study(study, n_trials, cluster["tracking"], name)
    by_worker = {t.user_attrs["worker"] for t in counted(study)}
    print(f"3 workers: {n_trials} trials in {seconds:.0f} s, by {len(by_worker)} worker(s)", file=sys.stderr)
    assert len(by_worker) >= 2, "the trials were not shared out"
    # Nothing went to the machines' own folders: runs and artifacts are on the tracking server.
    for worker in workers:
        assert not (worker.cwd / "mlflow.db").exists() and not (worker.cwd / "mlruns").exists()
        assert cluster["postgres"].password not in worker.output
    artifacts = cluster["mlflow"].artifacts
    assert any(artifacts.rglob("config.yaml")), "no artifact reached the server's artifact destination"
    # `wavegan report` from another machine finds the study and its parent run.
    reporter = machine(cluster["root"], "laptop", study_spec)
    report = subprocess.run(
        [*WAVEGAN, "report", f"sweep={name}", f"sweep.storage={cluster['storage']}"],
        cwd=reporter, env=cluster["env"], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    assert (reporter / "sweeps" / "results" / name / "summary.md").is_file()
    assert cluster["postgres"].password not in report.stdout + report.stderr


def test_a_killed_worker_and_a_database_restart_lose_no_trial(cluster):
    """kill -9 one worker mid-trial, then restart PostgreSQL while the others train: the dead worker's
    trial is retried once its heartbeat lapses, the others reconnect, and the study ends with exactly
    n_trials, one parent run, and the dead trial's MLflow run closed."""
    n_trials, name = 6, cluster["name"]
    longer = [*study_file(name, 1)["overrides"], "trainer.max_steps=40"]  # seconds per trial: time to kill
    study_spec = study_file(name, n_trials, overrides=longer)
    workers = [
        Worker(machine(cluster["root"], f"machine{i}", study_spec), name, cluster["storage"], cluster["env"])
        for i in range(3)
    ]
    storage = cluster["storage"]
    victim = workers[0]

    def victims_trial():
        try:
            trials = optuna.load_study(study_name=name, storage=storage).get_trials()
        except Exception:
            return None
        pid = f":{victim.process.pid}"
        mine = [
            t for t in trials
            if t.state == TrialState.RUNNING and t.user_attrs.get("worker", "").endswith(pid)
            and "mlflow_run_id" in t.user_attrs
        ]  # fmt: skip
        return mine[0] if mine else None

    killed = wait_until(victims_trial, 300, "the first worker to start a trial")
    time.sleep(1.0)  # mid-training
    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait()
    wait_until(
        lambda: any(
            t.state == TrialState.RUNNING and t.number != killed.number
            for t in optuna.load_study(study_name=name, storage=storage).get_trials()
        ),
        120,
        "another worker to be mid-trial",
    )
    cluster["postgres"].restart(down_seconds=3)
    run_workers(workers[1:], 420)

    study = optuna.load_study(study_name=name, storage=storage)
    found = check_study(study, n_trials, cluster["tracking"], name)
    dead = next(t for t in study.get_trials() if t.number == killed.number)
    assert dead.state == TrialState.FAIL
    retries = [t for t in study.get_trials() if killed.number in t.system_attrs.get("retry_history", [])]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == dead.params
    dead_run = next(r for r in found["runs"] if r.info.run_id == dead.user_attrs["mlflow_run_id"])
    assert dead_run.info.status == "KILLED" and dead_run.data.tags["state"] == "failed"
    outputs = "".join(w.output for w in workers[1:])
    assert cluster["postgres"].password not in outputs
    print(
        f"killed worker: trial {dead.number} retried as {retries[0].number}; "
        f"{sum('unreachable' in w.output for w in workers[1:])} worker(s) saw the database restart",
        file=sys.stderr,
    )
