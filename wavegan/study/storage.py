"""Where a study lives: its Optuna storage (`open_storage`, `open_study`), what counts toward
`sweep.n_trials` (`count_trials`, `fail_stale`), and telling a database outage from other errors
(`is_unreachable`). The lock under which a worker claims a trial: wavegan/study/claims.py.

Many workers on one study (several machines, one PostgreSQL database):
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

import importlib.util
import logging
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from wavegan.errors import ConfigError, WaveganError
from wavegan.secret_masking import mask_text, mask_url
from wavegan.study.plan import Plan, make_pruner, make_sampler
from wavegan.study.spec import SweepSpec

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
log = logging.getLogger("wavegan.sweep")

POSTGRES_EXTRA = "pip install 'wavegan[postgres]'"
CONNECT_TIMEOUT = 10  # seconds: an unreachable database host fails fast
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
    storage = study._storage  # Optuna's cache in front of the RDBStorage; it hands the callback through
    callback = getattr(storage, "get_heartbeat_stale_trial_callback", lambda: None)()
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
    a unique violation (pg_type, alembic_version), on SQLite "table ... already exists" (an
    OperationalError; found by benchmarks/faults.py's concurrent row, 1 trial in 20). Opening again then
    finds the tables."""
    import sqlalchemy.exc

    if isinstance(exc, sqlalchemy.exc.OperationalError) and "already exists" in str(exc):
        return True
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
