"""Running a study: create or resume it, run the missing trials in `sweep.n_jobs` worker processes,
write and log the report (`run_sweep`).

- Resume: the study lives in `sweep.storage` (SQLite file by default). `sweep.n_trials` is the study's
  total; rerunning the command runs only the trials still missing. A trial whose process died stops
  sending heartbeats; after `grace_period` seconds Optuna marks it FAIL and re-enqueues its parameters
  (RetryHeartbeatStaleTrialCallback), and the retry runs before any new trial.
- Parallel: `sweep.n_jobs` spawned worker processes (each imports wavegan first). A worker claims a
  trial under a machine-wide file lock, counting finished + running + queued trials against n_trials,
  so no trial is lost or duplicated; several machines share one study through an RDB storage URL (a
  rare end-of-study race there is caught after the claim and recorded as outcome=surplus).
- One trial: wavegan/study/runner.py.
- MLflow: one parent run per study (found again on resume through a study user attr), a nested run per
  trial, and train()'s run per seed nested under it (wavegan/study/tracker.py). The report
  (wavegan.study.report) is written to `results_dir` and logged to the parent run at the end.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path

import optuna
from omegaconf import OmegaConf

from wavegan.atomic import pid_alive
from wavegan.errors import WaveganError
from wavegan.secret_masking import mask_text, mask_url
from wavegan.study.plan import Plan, plan_study
from wavegan.study.runner import CHECKPOINT_PREFIX, TrialRunner
from wavegan.study.spec import SweepSpec
from wavegan.study.storage import ClaimLock, count_trials, fail_stale, lock_path, open_study
from wavegan.study.tracker import Tracker


def remove_dead_checkpoints() -> None:
    """Checkpoint folders of trials whose process died (SIGKILL, preemption): nobody else removes them."""
    for folder in Path(tempfile.gettempdir()).glob(f"{CHECKPOINT_PREFIX}*-*"):
        pid = folder.name[len(CHECKPOINT_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def work(plan: Plan, parent_run: str, worker_index: int = 0) -> int:
    """Run trials until the study holds sweep.n_trials; returns how many this worker trained."""
    spec = plan.spec
    remove_dead_checkpoints()
    lock = ClaimLock(lock_path(spec))
    with lock:
        offset = 1009 * worker_index + len(open_study(plan).get_trials(deepcopy=False))
    study = open_study(plan, seed_offset=offset)
    tracker = Tracker(plan.experiment)
    runner = TrialRunner(plan, study, tracker, parent_run, lock)
    said_waiting = False
    while True:
        lock.acquire()
        try:
            fail_stale(study)
            counts = count_trials(study.get_trials(deepcopy=False))
            if counts.waiting or counts.done + counts.running < plan.n_trials:
                study.optimize(runner.objective, n_trials=1, catch=(Exception,), gc_after_trial=True)
                if runner.fatal is not None:
                    raise runner.fatal
                said_waiting = False
                continue
            if not counts.running:
                return runner.ran
        finally:
            lock.release()
        if not said_waiting:
            print(
                f"sweep: {counts.running} trial(s) still running elsewhere (or dead: retried after "
                f"{spec.grace_period} s without heartbeat); waiting",
                flush=True,
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


def run_workers(plan: Plan, parent_run: str) -> None:
    if plan.spec.n_jobs == 1:
        work(plan, parent_run)
        return
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_spawned_worker, args=(plan, parent_run, i), name=f"wavegan-sweep-{i}")
        for i in range(plan.spec.n_jobs)
    ]
    for process in processes:
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
        print(
            f"sweep: {len(failed)} worker(s) exited with status {failed}; rerun the command to resume",
            file=sys.stderr,
        )


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
    print(f"sweep: study {spec.study_name} in {mask_url(spec.storage)}; {spec.description}".rstrip("; "))
    with ClaimLock(lock_path(spec)):
        study = open_study(plan, create=True)
        study.set_user_attr("sweep", spec.summary())
        study.set_metric_names(spec.objective_names)
        tracker = Tracker(plan.experiment)
        parent_run = tracker.parent_run(study, spec)
        fail_stale(study)  # trials of a process that died (and were silent for grace_period) are retried
        tracker.close_orphans(study)
    counts = count_trials(study.get_trials(deepcopy=False))
    print(
        f"sweep: {counts.done} of {plan.n_trials} trial(s) done, {counts.running} running, {counts.waiting} "
        f"queued; seeds {spec.seeds}; objective "
        f"{', '.join(f'{o.direction} {o.name}' for o in spec.objectives)}; "
        f"MLflow parent run {parent_run} in experiment '{plan.experiment}'",
        flush=True,
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
    study = open_study(plan)
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
    print(
        f"sweep: {counts.done} of {plan.n_trials} trial(s) done in this study; this run took {elapsed:.0f} s"
    )
    return study
