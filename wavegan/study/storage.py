"""Where a study lives: its Optuna storage (`open_storage`, `open_study`), the machine-wide claim lock
(`ClaimLock`), and what counts toward `sweep.n_trials` (`count_trials`, `fail_stale`)."""

from __future__ import annotations

import fcntl
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from wavegan.errors import ConfigError, WaveganError
from wavegan.secret_masking import mask_text, mask_url
from wavegan.study.plan import Plan, make_pruner, make_sampler
from wavegan.study.spec import SweepSpec, fingerprint

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _rdb(url: str, **kwargs) -> optuna.storages.RDBStorage:
    return optuna.storages.RDBStorage(url, **kwargs)  # one place to construct it (tests substitute the URL)


def open_storage(spec: SweepSpec) -> optuna.storages.RDBStorage:
    url = spec.storage
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": 120}}  # several workers write to one file
    try:
        return _rdb(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=spec.heartbeat_interval,
            grace_period=spec.grace_period,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(spec.max_retry),
        )
    except Exception as exc:
        raise WaveganError(
            f"cannot open the study storage {mask_url(url)}: {exc.__class__.__name__}: "
            f"{mask_text(str(exc).splitlines()[0] if str(exc) else '', url)}. Fix: check sweep.storage (a "
            "reachable database URL; postgresql:// needs the psycopg2 package)."
        ) from None


def open_study(plan: Plan, create: bool = False, seed_offset: int = 0) -> optuna.Study:
    spec = plan.spec
    storage = open_storage(spec)
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


def lock_path(spec: SweepSpec) -> Path:
    return (
        Path(tempfile.gettempdir())
        / f"wavegan-sweep-{fingerprint(spec.storage + '|' + spec.study_name)}.lock"
    )


class ClaimLock:
    """A machine-wide lock per study (flock on a file in the temp folder): claiming a trial (count, then
    ask) happens under it, so workers on one machine never start more trials than the study holds."""

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

    def __enter__(self) -> ClaimLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


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


def fail_stale(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
