"""Where a study lives: its Optuna storage (`open_storage`, `open_study`), the lock under which a worker
claims a trial (`claim_lock`), what counts toward `sweep.n_trials` (`count_trials`, `fail_stale`), and
telling a database outage from other errors (`is_unreachable`).

Many workers on one study (several machines, one PostgreSQL database):
- Claims: a worker counts the study's trials and asks for a new one under one lock, so the study never
  starts more than n_trials. On PostgreSQL that lock is a session-level advisory lock in the study's own
  database (`AdvisoryClaimLock`): every worker on every machine takes the same one, and the server drops
  it when the holder's connection dies (kill -9, a lost machine). SQLite (one machine by nature) uses a
  file lock. Optuna has no "ask only while fewer than n trials" of its own (MaxTrialsCallback stops after
  the fact, so N workers overshoot by up to N-1); other databases fall back to the file lock and the
  runner's after-claim check, which records a claim past n_trials as outcome=surplus.
- Dead workers: Optuna's heartbeat (heartbeat_interval, grace_period) and RetryHeartbeatStaleTrialCallback
  fail a silent trial and re-enqueue its parameters. Heartbeats that fail while the database is briefly
  down are skipped, not fatal (`StudyStorage`): a trial outliving a restart keeps its claim.
- Connections: pool_pre_ping (a connection the server closed, e.g. across a restart, is replaced before
  use), a small pool per worker (main thread + heartbeat thread; 20 workers stay under PostgreSQL's
  default max_connections=100) and a connect timeout (an unreachable host fails in seconds, not minutes).
  Not used: GrpcStorageProxy (for thousands of nodes; one more server to run and lose) and JournalStorage
  (needs a shared file system with working locks, or Redis; the RDB is already there).
- `postgresql://` (and `postgres://`) URLs go through psycopg 3 (`pip install 'wavegan[postgres]'`).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import random
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from wavegan.caching import text_digest
from wavegan.errors import ConfigError, WaveganError
from wavegan.secret_masking import mask_text, mask_url
from wavegan.study.plan import Plan, make_pruner, make_sampler
from wavegan.study.spec import SweepSpec, fingerprint

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
log = logging.getLogger("wavegan.sweep")

POSTGRES_EXTRA = "pip install 'wavegan[postgres]'"
CONNECT_TIMEOUT = 10  # seconds: an unreachable database host fails fast
CLAIM_WAIT = 600  # seconds a worker waits for the claim lock before giving up with a message
CREATE_ATTEMPTS = 5  # opening a fresh database at once with other workers (see _lost_creation_race)


class StorageUnreachable(WaveganError):
    """The study's database cannot be reached (down, wrong host/port/credentials)."""


def rdb_url(url: str) -> str:
    """The URL SQLAlchemy gets: `postgresql://` and `postgres://` through psycopg 3 (SQLAlchemy would pick
    psycopg2, which wavegan does not install); a missing driver is one message naming the extra."""
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        scheme = "postgresql+psycopg"
    driver = {"postgresql+psycopg": "psycopg", "postgresql+psycopg2": "psycopg2"}.get(scheme)
    if driver is not None and importlib.util.find_spec(driver) is None:
        fix = POSTGRES_EXTRA if driver == "psycopg" else f"pip install psycopg2-binary, or {POSTGRES_EXTRA} "
        fix += "" if driver == "psycopg" else "and a postgresql+psycopg:// URL"
        raise ConfigError(
            f"sweep.storage={mask_url(url)} needs the PostgreSQL driver {driver}, which is not installed. "
            f"Fix: {fix}."
        )
    return scheme + sep + rest


def is_postgres(url: str) -> bool:
    return url.partition("://")[0].split("+")[0] in ("postgresql", "postgres")


def engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite:///"):
        return {"connect_args": {"timeout": 120}}  # several workers write to one file
    if is_postgres(url):
        return {
            "pool_pre_ping": True,
            "pool_size": 2,
            "max_overflow": 3,
            "connect_args": {"connect_timeout": CONNECT_TIMEOUT},
        }
    return {"pool_pre_ping": True}


def is_unreachable(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) is a lost or refused database connection."""
    import sqlalchemy.exc

    LOST_CONNECTION = sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError  # noqa: N806
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, StorageUnreachable | LOST_CONNECTION):
            return True
        if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
            return True
        if type(exc).__module__.startswith("psycopg") and type(exc).__name__ == "OperationalError":
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def unreachable(url: str, exc: BaseException) -> StorageUnreachable:
    """One message naming the (masked) URL, what went wrong and the fix."""
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    detail = str(root).strip().splitlines()[0] if str(root).strip() else ""
    return StorageUnreachable(
        f"cannot open the study storage {mask_url(url)}: {root.__class__.__name__}: "
        f"{mask_text(detail, url)}. "
        "Fix: start the database server, or correct sweep.storage (host, port, user, password and "
        "database must be reachable from this machine)."
    )


class StudyStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage whose heartbeat survives a short database outage. Optuna's heartbeat thread
    ends at the first failed write; the trial would then look dead and be retried while it still runs."""

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            super().record_heartbeat(trial_id)
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            log.warning("heartbeat of trial id %d not recorded: the study database is unreachable", trial_id)


class RetryStaleTrials:
    """Optuna's RetryHeartbeatStaleTrialCallback (re-enqueue a dead trial's parameters, up to max_retry
    times), remembering the trials it failed: the worker that noticed closes their MLflow runs."""

    def __init__(self, max_retry: int | None) -> None:
        self._retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry)
        self.failed: list[optuna.trial.FrozenTrial] = []

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._retry(study, trial)
        self.failed.append(trial)


def fail_stale(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Fail the trials whose heartbeat lapsed (their process died) and queue their retries; returns them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
    callback = getattr(study._storage, "heartbeat_stale_trial_callback", None)
    if not isinstance(callback, RetryStaleTrials):
        return []
    failed, callback.failed = callback.failed, []
    return failed


def _rdb(url: str, **kwargs) -> optuna.storages.RDBStorage:
    """One place to construct the storage (tests substitute the URL), with the engine settings its URL's
    database needs."""
    return StudyStorage(url, engine_kwargs=engine_kwargs(url), **kwargs)


def open_storage(spec: SweepSpec) -> optuna.storages.RDBStorage:
    url = spec.storage
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(CREATE_ATTEMPTS):
        try:
            return _rdb(
                rdb_url(url),
                heartbeat_interval=spec.heartbeat_interval,
                grace_period=spec.grace_period,
                heartbeat_stale_trial_callback=RetryStaleTrials(spec.max_retry),
            )
        except WaveganError:
            raise
        except ImportError as exc:  # another database's driver (mysql+pymysql://, ...)
            cause = exc.__cause__ or exc
            raise ConfigError(
                f"sweep.storage={mask_url(url)} needs a database driver that is not installed ({cause}). "
                f"Fix: pip install it (PostgreSQL: {POSTGRES_EXTRA})."
            ) from None
        except Exception as exc:
            if not _lost_creation_race(exc) or attempt == CREATE_ATTEMPTS - 1:
                raise unreachable(url, exc) from None
            time.sleep(0.2 + random.random())  # the winner is creating the tables: try again after it
    raise AssertionError("unreachable")


def _lost_creation_race(exc: BaseException) -> bool:
    """Workers opening a fresh database at once all create Optuna's tables; on PostgreSQL the losers get
    a unique violation (pg_type, alembic_version). Opening again then finds the tables."""
    import sqlalchemy.exc

    return isinstance(exc, sqlalchemy.exc.IntegrityError | sqlalchemy.exc.ProgrammingError) or (
        isinstance(exc.__cause__, sqlalchemy.exc.IntegrityError)
    )


def open_study(
    plan: Plan,
    create: bool = False,
    seed_offset: int = 0,
    storage: optuna.storages.RDBStorage | None = None,
) -> optuna.Study:
    spec = plan.spec
    storage = storage or open_storage(spec)
    sampler, pruner = make_sampler(plan, seed_offset), make_pruner(spec)
    try:
        if create:
            study = optuna.create_study(
                storage=storage,
                study_name=spec.study_name,
                directions=spec.directions,
                sampler=sampler,
                pruner=pruner,
                load_if_exists=True,
            )
        else:
            study = optuna.load_study(
                study_name=spec.study_name, storage=storage, sampler=sampler, pruner=pruner
            )
    except Exception as exc:
        if is_unreachable(exc):
            raise unreachable(spec.storage, exc) from None
        raise WaveganError(
            f"cannot open study {spec.study_name} in {mask_url(spec.storage)}: "
            f"{mask_text(str(exc), spec.storage)}"
        ) from None
    wanted = [
        optuna.study.StudyDirection.MINIMIZE if d == "minimize" else optuna.study.StudyDirection.MAXIMIZE
        for d in spec.directions
    ]
    if list(study.directions) != wanted:
        raise ConfigError(
            f"study {spec.study_name} in {mask_url(spec.storage)} was created with directions "
            f"{[d.name.lower() for d in study.directions]}, but this objective has {spec.directions}. Fix: a "
            "new "
            "sweep.study_name (or the original objective)."
        )
    return study


# --- the claim lock ---------------------------------------------------------------------------------


class ClaimLock:
    """One claim at a time per study: acquire(), release(), and `with lock:`."""

    def acquire(self) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.release()

    def __enter__(self) -> ClaimLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_path(spec: SweepSpec) -> Path:
    return (
        Path(tempfile.gettempdir())
        / f"wavegan-sweep-{fingerprint(spec.storage + '|' + spec.study_name)}.lock"
    )


class FileClaimLock(ClaimLock):
    """A machine-wide lock per study (flock on a file in the temp folder): enough for SQLite, whose
    workers are all on one machine."""

    def __init__(self, path: Path) -> None:
        self.path, self._fd = path, None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def advisory_key(study_name: str) -> int:
    """The study's advisory-lock number: a positive 60-bit integer (PostgreSQL takes a bigint)."""
    return int(text_digest(f"wavegan-claim|{study_name}", 15), 16)


class AdvisoryClaimLock(ClaimLock):
    """A PostgreSQL session-level advisory lock on its own connection: the same lock for every worker on
    every machine, released by the server when the holder's connection ends (a killed worker holds
    nothing). Taken with pg_try_advisory_lock in a bounded loop, so a stuck holder ends in a message."""

    def __init__(self, url: str, engine_url: Any, study_name: str, wait: float = CLAIM_WAIT) -> None:
        """`url`: the storage as the user gave it (messages); `engine_url`: what SQLAlchemy connects to."""
        self.url, self.engine_url = url, engine_url
        self.study_name, self.key, self.wait = study_name, advisory_key(study_name), wait
        self._engine = None
        self._connection = None
        self._held = False

    def _connect(self):
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        if self._engine is None:
            self._engine = sqlalchemy.create_engine(
                self.engine_url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT}
            )
        if self._connection is None:
            self._connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._connection

    def _drop_connection(self) -> None:
        with contextlib.suppress(Exception):
            self._connection.close()
        self._connection = None

    def acquire(self) -> None:
        from sqlalchemy import text

        deadline = time.monotonic() + self.wait
        query = text("SELECT pg_try_advisory_lock(:k)")
        while True:
            try:
                got = self._connect().execute(query, {"k": self.key}).scalar()
            except Exception:  # a connection the server closed (a restart): once more on a new one
                self._drop_connection()
                try:
                    got = self._connect().execute(query, {"k": self.key}).scalar()
                except Exception as exc:
                    self._drop_connection()
                    raise unreachable(self.url, exc) from None
            if got:
                self._held = True
                return
            if time.monotonic() > deadline:
                raise WaveganError(
                    f"waited {self.wait:.0f} s for the claim lock of study {self.study_name} in "
                    f"{mask_url(self.url)} (PostgreSQL advisory lock {self.key}). Fix: find the process "
                    f"holding it (SELECT pid FROM pg_locks WHERE locktype = 'advisory') and end it."
                )
            time.sleep(0.1)

    def release(self) -> None:
        from sqlalchemy import text

        if not self._held or self._connection is None:
            return
        self._held = False
        try:
            self._connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        except Exception:  # the connection is gone, and the lock with it
            self._drop_connection()

    def close(self) -> None:
        self.release()
        self._drop_connection()
        if self._engine is not None:
            self._engine.dispose()


def claim_lock(spec: SweepSpec, storage: optuna.storages.RDBStorage) -> ClaimLock:
    """The lock for claiming this study's trials: in the database when it can hold one (PostgreSQL)."""
    dialect = storage.engine.dialect.name
    if dialect == "postgresql":
        return AdvisoryClaimLock(spec.storage, storage.engine.url, spec.study_name)
    if dialect != "sqlite":
        log.warning(
            "claims on %s are locked per machine only: workers on several machines may claim a trial "
            "past sweep.n_trials at the end (recorded as surplus, not run). PostgreSQL locks them in the "
            "database.",
            mask_url(spec.storage),
        )
    return FileClaimLock(lock_path(spec))


@dataclass
class Counts:
    done: int  # trials that count toward n_trials: complete, pruned, failed (not retried, not surplus)
    running: int
    waiting: int


# Trials that are not results: a claim past n_trials on another machine, a trial stopped by a study-level
# error (the objective's metric missing: fixed and rerun, the study should still get n_trials results).
NOT_COUNTED = ("surplus", "aborted")


def count_trials(trials: list[optuna.trial.FrozenTrial], before: int | None = None) -> Counts:
    """What counts toward sweep.n_trials. A FAIL trial whose process died and that was re-enqueued (its
    number is in a retry's history) does not count: its retry does."""
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    done = running = waiting = 0
    for t in trials:
        if (before is not None and t.number >= before) or t.user_attrs.get("outcome") in NOT_COUNTED:
            continue
        finished = t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        if finished or (t.state == TrialState.FAIL and t.number not in retried):
            done += 1
        elif t.state == TrialState.RUNNING:
            running += 1
        elif t.state == TrialState.WAITING:
            waiting += 1
    return Counts(done, running, waiting)
