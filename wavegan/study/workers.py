"""Running a study: create or resume it, run the missing trials in `sweep.n_jobs` worker processes,
write and log the report (`run_sweep`).

- Resume: the study lives in `sweep.storage` (SQLite file by default). `sweep.n_trials` is the study's
  total; rerunning the command runs only the trials still missing. A trial whose process died stops
  sending heartbeats; after `grace_period` seconds Optuna marks it FAIL and re-enqueues its parameters
  (RetryHeartbeatStaleTrialCallback), and the retry runs before any new trial.
- Parallel: `sweep.n_jobs` spawned worker processes (each imports wavegan first; each gets one of the
  GPUs in CUDA_VISIBLE_DEVICES, `worker_devices`). A worker claims a trial under the study's claim lock,
  counting finished + running + queued trials against n_trials, so no trial is lost or duplicated.
  Several machines share one study through a PostgreSQL storage URL, whose claim lock lives in the
  database (wavegan/study/claims.py); a worker rides out a database restart (`Outage`), and a trial
  that failed on it is retried.
- One trial: wavegan/study/runner.py.
- MLflow: one parent run per study (found again on resume through a study user attr), a nested run per
  trial, and train()'s run per seed nested under it (wavegan/study/tracker.py). The report
  (wavegan.study.report) is written to `results_dir` and logged to the parent run at the end.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import sys
import time

import optuna
from omegaconf import OmegaConf

from wavegan.atomic import owner_gone
from wavegan.errors import WaveganError
from wavegan.secret_masking import mask_text, mask_url
from wavegan.study.claims import ClaimLock, claim_lock
from wavegan.study.plan import Plan, plan_study
from wavegan.study.runner import CHECKPOINT_PREFIX, TrialRunner, checkpoint_root
from wavegan.study.spec import SweepSpec
from wavegan.study.storage import (
    count_trials,
    fail_stale,
    is_unreachable,
    open_storage,
    open_study,
    unreachable,
)
from wavegan.study.tracker import Tracker

# How long a worker waits for the study database to come back mid-study before it stops.
RECONNECT_SECONDS = float(os.environ.get("WAVEGAN_DB_RECONNECT_SECONDS", "300"))

log = logging.getLogger(__name__)


def remove_dead_checkpoints() -> None:
    """Checkpoint folders of this machine's trials whose process died (SIGKILL, preemption): nobody else
    removes them. Another machine's folders (a shared WAVEGAN_CHECKPOINT_DIR) are left to it."""
    for folder in checkpoint_root().glob(f"{CHECKPOINT_PREFIX}*-*"):
        tag = folder.name[len(CHECKPOINT_PREFIX) :].rsplit("-", 1)[0]
        if owner_gone(tag):
            shutil.rmtree(folder, ignore_errors=True)


class Outage:
    """A worker rides out a study-database outage (a restart, a failover): it retries every few seconds
    for up to RECONNECT_SECONDS, then stops with the storage's message. Its trial in flight, if any, has
    failed; Optuna retries it once its heartbeat lapses."""

    def __init__(self, url: str, limit: float = RECONNECT_SECONDS) -> None:
        self.url, self.limit, self.since = url, limit, None

    def wait(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self.since is None:
            self.since = now
            log.warning(
                "the study database %s is unreachable; retrying for up to %.0f s",
                mask_url(self.url),
                self.limit,
            )
        if now - self.since > self.limit:
            raise unreachable(self.url, exc) from None
        time.sleep(2)

    def over(self) -> None:
        if self.since is not None:
            log.warning("reconnected to %s", mask_url(self.url))
            self.since = None


def _seed_offset(plan: Plan, storage: optuna.storages.RDBStorage, lock: ClaimLock) -> int:
    """A sampler-seed offset no other worker of the study has (on any machine): the study counts the
    workers it has seen, under the claim lock. Equal offsets would replay the same suggestions."""
    with lock:
        study = open_study(plan, storage=storage)
        started = int(study.user_attrs.get("workers_started", 0))
        study.set_user_attr("workers_started", started + 1)
    return 1009 * started


def work(plan: Plan, parent_run: str, worker_index: int = 0) -> int:
    """Run trials until the study holds sweep.n_trials; returns how many this worker trained.
    (`worker_index` names the process in logs; seeds come from the study, see _seed_offset.)"""
    remove_dead_checkpoints()
    storage = open_storage(plan.spec)
    with contextlib.closing(claim_lock(plan.spec, storage)) as lock:
        study = open_study(plan, seed_offset=_seed_offset(plan, storage, lock), storage=storage)
        runner = TrialRunner(plan, study, Tracker(plan.experiment), parent_run, lock)
        return _claim_and_run(plan, study, runner, lock)


def _claim_and_run(plan: Plan, study: optuna.Study, runner: TrialRunner, lock: ClaimLock) -> int:
    spec = plan.spec
    outage = Outage(spec.storage)
    said_waiting = False
    while True:
        try:
            lock.acquire()
            try:
                for dead in fail_stale(study):  # another worker died mid-trial: close its MLflow run
                    runner.tracker.close_orphan(dead)
                counts = count_trials(study.get_trials(deepcopy=False))
                if counts.waiting or counts.done + counts.running < plan.n_trials:
                    study.optimize(runner.objective, n_trials=1, catch=(Exception,), gc_after_trial=True)
                    outage.over()
                    if runner.fatal is not None:
                        raise runner.fatal
                    said_waiting = False
                    continue
                if not counts.running:
                    return runner.ran
            finally:
                lock.release()
            outage.over()
        except Exception as exc:
            if runner.lost_claim(exc):
                continue
            if not is_unreachable(exc):
                raise
            outage.wait(exc)
            continue
        if not said_waiting:
            log.info(
                "%d trial(s) still running elsewhere (or dead: retried after %s s without heartbeat); "
                "waiting",
                counts.running,
                spec.grace_period,
            )
            said_waiting = True
        time.sleep(min(spec.heartbeat_interval, 5))


def setup_logging(prefix: str = "") -> None:
    """INFO from wavegan and Optuna (trial results), WARNING from everything else (absl, matplotlib)."""
    logging.basicConfig(level=logging.WARNING, format=f"{prefix}%(levelname)s %(name)s: %(message)s")
    logging.getLogger("wavegan").setLevel(logging.INFO)
    optuna.logging.set_verbosity(optuna.logging.INFO)


def _spawned_worker(plan: Plan, parent_run: str, worker_index: int) -> None:
    """A worker process's entry (multiprocessing spawn: a fresh interpreter, wavegan imported first)."""
    setup_logging(f"[worker {worker_index}] ")
    try:
        work(plan, parent_run, worker_index)
    except WaveganError as exc:
        print(f"error: [worker {worker_index}] {mask_text(str(exc), plan.spec.storage)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def worker_devices(n_jobs: int, visible: str | None) -> list[str | None]:
    """One GPU per worker: with CUDA_VISIBLE_DEVICES=0,1,2,3 and sweep.n_jobs=4, worker i sees device i
    only (round robin when there are more workers than devices). None: leave the variable as it is."""
    devices = [d.strip() for d in (visible or "").split(",") if d.strip()]
    if n_jobs == 1 or not devices or devices == ["-1"]:
        return [None] * n_jobs
    return [devices[i % len(devices)] for i in range(n_jobs)]


@contextlib.contextmanager
def _environment(name: str, value: str | None):
    """`name=value` in os.environ while a spawned process starts (it copies the environment)."""
    before = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def run_workers(plan: Plan, parent_run: str) -> None:
    if plan.spec.n_jobs == 1:
        work(plan, parent_run)
        return
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_spawned_worker, args=(plan, parent_run, i), name=f"wavegan-sweep-{i}")
        for i in range(plan.spec.n_jobs)
    ]
    devices = worker_devices(len(processes), os.environ.get("CUDA_VISIBLE_DEVICES"))
    for process, device in zip(processes, devices, strict=True):
        with _environment("CUDA_VISIBLE_DEVICES", device):
            process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        for process in processes:
            process.join(timeout=60)
        raise
    failed = [p.exitcode for p in processes if p.exitcode]
    if 2 in failed:
        raise WaveganError("a sweep worker stopped with an error (see its message above)")
    if failed:
        log.error("%d worker(s) exited with status %s; rerun the command to resume", len(failed), failed)


def prepare_data(plan: Plan) -> None:
    """Build the data stores and features every trial needs once, before workers race to build them."""
    from wavegan.data.pipeline import load_features
    from wavegan.data.store import open_store

    seen = set()
    for cfg in plan.variants:
        key = (str(OmegaConf.to_container(cfg.data, resolve=True)), str(cfg.preprocessing))
        if key not in seen:
            seen.add(key)
            load_features(open_store(cfg.data, progress=False), cfg.preprocessing)


# --- the command ------------------------------------------------------------------------------------


def run_sweep(
    spec: SweepSpec, training_overrides: list[str] | None = None, report: bool = True
) -> optuna.Study:
    """Create or resume the study, run the missing trials (n_jobs workers), write and log the report."""
    plan = plan_study(spec, training_overrides)
    log.info(f"study {spec.study_name} in {mask_url(spec.storage)}; {spec.description}".rstrip("; "))
    # Under the claim lock (in the database on PostgreSQL): workers starting at once on several machines
    # create one study and one MLflow parent run, and every later one finds both again.
    storage = open_storage(spec)
    with contextlib.closing(claim_lock(spec, storage)) as lock, lock:
        study = open_study(plan, create=True, storage=storage)
        study.set_user_attr("sweep", spec.summary())
        study.set_metric_names(spec.objective_names)
        tracker = Tracker(plan.experiment)
        parent_run = tracker.parent_run(study, spec)
        fail_stale(study)  # trials of a process that died (and were silent for grace_period) are retried
        tracker.close_orphans(study)
    counts = count_trials(study.get_trials(deepcopy=False))
    log.info(
        f"{counts.done} of {plan.n_trials} trial(s) done, {counts.running} running, {counts.waiting} "
        f"queued; seeds {spec.seeds}; objective "
        f"{', '.join(f'{o.direction} {o.name}' for o in spec.objectives)}; "
        f"MLflow parent run {parent_run} in experiment '{plan.experiment}'",
    )
    prepare_data(plan)
    started = time.perf_counter()
    try:
        run_workers(plan, parent_run)
    except (KeyboardInterrupt, WaveganError):
        with contextlib.suppress(Exception):
            tracker.client.set_terminated(parent_run, "KILLED")
        raise
    elapsed = time.perf_counter() - started
    study = open_study(plan, storage=storage)
    counts = count_trials(study.get_trials(deepcopy=False))
    finished = counts.done >= plan.n_trials
    tracker.client.set_tag(parent_run, "state", "complete" if finished else "incomplete")
    tracker.client.log_metric(parent_run, "sweep/seconds_this_run", elapsed)
    if report:
        from wavegan.study.report import build_report, log_report

        result = build_report(study, spec.results_dir)
        log_report(result, tracker.client, parent_run)
        print(result.text)
        print(f"report: {result.out_dir}")
    tracker.client.set_terminated(parent_run, "FINISHED" if finished else "KILLED")
    log.info(
        "%d of %d trial(s) done in this study; this run took %.0f s", counts.done, plan.n_trials, elapsed
    )
    return study
