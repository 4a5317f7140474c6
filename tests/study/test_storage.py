"""The study's database: URLs mapped to the installed driver, one message when it is missing or the
database (or the tracking server) cannot be reached, and the claim lock that lives in PostgreSQL itself
(tested against a real server: the `postgres_server` fixture, tests/servers.py)."""

from __future__ import annotations

import importlib.util
import os
import subprocess

import optuna
import pytest
import sqlalchemy
import yaml

from tests.conftest import REPO_ROOT
from tests.machines import WAVEGAN
from tests.servers import free_port
from wavegan.errors import ConfigError, WaveganError
from wavegan.study.claims import AdvisoryClaimLock
from wavegan.study.storage import StudyStorage, engine_kwargs, is_unreachable, rdb_url

SECRET = "s3cr3t-pw"


def test_postgresql_urls_go_through_psycopg_3():
    assert rdb_url("postgresql://u:p@db:5432/optuna") == "postgresql+psycopg://u:p@db:5432/optuna"
    assert rdb_url("postgres://db/optuna") == "postgresql+psycopg://db/optuna"
    assert rdb_url("postgresql+psycopg://db/optuna") == "postgresql+psycopg://db/optuna"
    assert rdb_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_two_sweeps_creating_one_sqlite_database_at_once_retry_instead_of_failing(tmp_path, monkeypatch):
    """SQLite's loser of the table-creation race gets "table ... already exists" (an OperationalError; the
    fault harness's concurrent row, 1 trial in 20): it is a lost race, opened again, not "cannot open"."""
    import wavegan.study.storage as storage

    exists = Exception("table alembic_version already exists")
    race = sqlalchemy.exc.OperationalError("CREATE TABLE alembic_version", {}, exists)
    assert storage._lost_creation_race(race)
    other = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("unable to open database file"))
    assert not storage._lost_creation_race(other)
    calls = []
    real = storage._rdb

    def first_loses(url, **kwargs):
        calls.append(url)
        if len(calls) == 1:
            raise race
        return real(url, **kwargs)

    monkeypatch.setattr(storage, "_rdb", first_loses)
    monkeypatch.setattr(storage.time, "sleep", lambda s: None)

    class Spec:
        storage = f"sqlite:///{tmp_path / 'optuna.db'}"
        heartbeat_interval, grace_period, max_retry = 60, 120, 1

    assert storage.open_storage(Spec()) is not None and len(calls) == 2


def test_a_missing_driver_is_one_message_naming_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"pip install 'wavegan\[postgres\]'") as error:
        rdb_url(f"postgresql://alice:{SECRET}@db/optuna")
    assert SECRET not in str(error.value) and "postgresql://***@db/optuna" in str(error.value)


def sweep(tmp_path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    (tmp_path / "sweeps").mkdir(exist_ok=True)
    study = {"search_space": {"optimizer.lr": "interval(1e-5, 1e-3)"}, "overrides": ["trainer.max_steps=2"]}
    (tmp_path / "sweeps" / "tiny.yaml").write_text(yaml.safe_dump(study))
    return subprocess.run(
        [*WAVEGAN, "sweep", "sweep=tiny", *args], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT), CUDA_VISIBLE_DEVICES="") | (env or {}),
    )  # fmt: skip


@pytest.mark.system
def test_a_worker_that_cannot_reach_the_database_stops_with_one_message(tmp_path):
    port = free_port()  # nothing listens there
    result = sweep(tmp_path, f"sweep.storage=postgresql://alice:{SECRET}@127.0.0.1:{port}/optuna")
    assert result.returncode == 2, result.stderr[-3000:]
    assert f"cannot open the study storage postgresql://***@127.0.0.1:{port}/optuna" in result.stderr
    assert "Fix: start the database server" in result.stderr
    assert SECRET not in result.stdout + result.stderr and "Traceback" not in result.stderr


@pytest.mark.system
def test_a_worker_that_cannot_reach_the_tracking_server_stops_with_one_message(tmp_path, postgres_server):
    storage = postgres_server.create_database("unreachable_tracking")
    tracking = f"http://bob:{SECRET}@127.0.0.1:{free_port()}"
    result = sweep(tmp_path, f"sweep.storage={storage}", env={"MLFLOW_TRACKING_URI": tracking})
    assert result.returncode == 2, result.stderr[-3000:]
    assert "cannot reach the MLflow tracking server at http://***@127.0.0.1:" in result.stderr
    assert "MLFLOW_TRACKING_URI" in result.stderr and "Traceback" not in result.stderr
    output = result.stdout + result.stderr
    assert SECRET not in output and postgres_server.password not in output


@pytest.mark.system
def test_the_claim_lock_is_one_lock_for_every_connection_and_dies_with_its_holder(postgres_server):
    url = postgres_server.create_database("claims")
    engine_url = sqlalchemy.make_url(rdb_url(url))
    first, second = (AdvisoryClaimLock(url, engine_url, "study-a", wait=0.5) for _ in range(2))
    other = AdvisoryClaimLock(url, engine_url, "study-b", wait=0.5)
    first.acquire()
    with pytest.raises(WaveganError, match="waited 0 s for the claim lock of study study-a") as error:
        second.acquire()
    assert postgres_server.password not in str(error.value)
    other.acquire()  # another study's lock is another lock
    other.close()
    first._connection.invalidate()  # the holder's connection ends (a killed worker): the server frees it
    second.acquire()
    second.release()
    first.acquire()  # a new connection, the lock again
    postgres_server.restart()  # every lock goes with the server's connections; both reconnect
    first.release()
    second.acquire()
    second.close()
    first.close()


@pytest.mark.system
def test_the_storage_survives_a_database_restart(postgres_server):
    """Pooled connections the restart closed are replaced (pool_pre_ping); a heartbeat sent while the
    server is down is skipped, not fatal; the outage counts as 'unreachable'."""
    url = postgres_server.create_database("restart")
    storage = StudyStorage(rdb_url(url), engine_kwargs=engine_kwargs(url), heartbeat_interval=1)
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    postgres_server.stop()
    try:
        storage.record_heartbeat(trial._trial_id)  # logged, not raised
        with pytest.raises(Exception) as error:
            study.get_trials()
        assert is_unreachable(error.value)
    finally:
        postgres_server.start()
    study.tell(trial, 1.0)
    assert [t.value for t in study.get_trials()] == [1.0]


def test_each_worker_on_a_machine_gets_one_gpu():
    from wavegan.study.workers import worker_devices

    assert worker_devices(4, "0,1,2,3") == ["0", "1", "2", "3"]
    assert worker_devices(3, "2,5") == ["2", "5", "2"]  # more workers than GPUs: shared round robin
    assert worker_devices(2, "") == [None, None]  # no GPU (CPU only): left as it is
    assert worker_devices(2, None) == [None, None]  # unset: every worker sees every GPU
    assert worker_devices(1, "0,1") == [None]  # one worker keeps them all


def test_a_trial_failed_under_its_live_worker_is_dropped_not_fatal(tmp_path):
    """A worker starved of CPU past grace_period is taken for dead: another worker fails its trial and
    queues the retry. When the starved worker then reports, its result is dropped and it goes on."""
    from types import SimpleNamespace

    from optuna.trial import TrialState

    from wavegan.study.runner import TrialRunner

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    trial = study.ask()
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # as fail_stale does
    runner = TrialRunner.__new__(TrialRunner)
    runner.study, runner.spec, runner.trial_number = study, SimpleNamespace(grace_period=10), trial.number
    with pytest.raises(ValueError) as error:
        study.tell(trial, 1.0)
    assert runner.lost_claim(error.value)
    assert not runner.lost_claim(RuntimeError("something else"))
