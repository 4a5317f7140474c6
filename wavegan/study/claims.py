"""The lock under which a worker claims a trial (`claim_lock`): counting the study's trials and asking
for a new one happen under it, so the study never starts more than n_trials.

On PostgreSQL it is a session-level advisory lock in the study's own database (`AdvisoryClaimLock`):
every worker on every machine takes the same one, and the server drops it when the holder's connection
dies (kill -9, a lost machine), so a dead worker never blocks the others. SQLite (one machine by nature)
uses a file lock. Why not Optuna alone: it has no "ask only while fewer than n trials" (MaxTrialsCallback
stops after the fact, so N workers overshoot by up to N-1). Other databases fall back to the file lock and
the runner's after-claim check, which records a claim past n_trials as outcome=surplus (also the net for
the moment a database restart drops a held lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

from wavegan.caching import text_digest
from wavegan.errors import WaveganError
from wavegan.secret_masking import mask_url
from wavegan.study.spec import SweepSpec, fingerprint
from wavegan.study.storage import CONNECT_TIMEOUT, unreachable

log = logging.getLogger("wavegan.sweep")
CLAIM_WAIT = 600  # seconds a worker waits for the claim lock before giving up with a message


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
