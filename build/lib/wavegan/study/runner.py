"""`python -m wavegan.sweep sweep=<name> [sweep.<key>=<value> ...] [training overrides ...]`: an Optuna
study from sweeps/<name>.yaml (format: wavegan/sweep_spec.py and sweeps/README.md).

    python -m wavegan.sweep sweep=optimizer_stability
    python -m wavegan.sweep sweep=loss_comparison sweep.seeds=5 trainer.max_steps=2000
    python -m wavegan.sweep sweep=optimizer_stability sweep.n_jobs=2 sweep.n_trials=40
    python -m wavegan.sweep sweep=optimizer_stability sweep.storage=postgresql://u:pw@db/optuna  # N machines
    python -m wavegan.sweep sweep=optimizer_stability --cfg job     # print the checked study, run nothing

The command line is read here, not by Hydra: `sweep=` picks the study file, `sweep.*` overrides its keys,
and every other `key=value` (Hydra override syntax) is a training override added after the study's fixed
overrides. Optuna 5 is driven directly (no Hydra sweeper plugin).

How it works:
- Resume: the study lives in `sweep.storage` (SQLite file by default). `sweep.n_trials` is the study's
  total; rerunning the command runs only the trials still missing. A trial whose process died stops
  sending heartbeats; after `grace_period` seconds Optuna marks it FAIL and re-enqueues its parameters
  (RetryHeartbeatStaleTrialCallback), and the retry runs before any new trial.
- Parallel: `sweep.n_jobs` spawned worker processes (each imports wavegan first). A worker claims a
  trial under a machine-wide file lock, counting finished + running + queued trials against n_trials,
  so no trial is lost or duplicated; several machines share one study through an RDB storage URL (a
  rare end-of-study race there is caught after the claim and recorded as outcome=surplus).
- Seeds: each trial trains every seed in `sweep.seeds` in turn; its objective aggregates them.
- Divergence: a seed that diverges stops at once (the trainer's check). A trial is recorded as PRUNED
  with user attr outcome=diverged when its aggregate cannot be finite (e.g. the median seed diverged;
  with divergence.stop_trial it stops as soon as that is decided). Every trial records n_diverged and
  divergence_rate over the seeds it ran, seeds_planned, seeds_run and truncated ("divergence" when
  stop_trial cut its seeds short, which biases its rate upward; "pruned"), so the report can count rates
  over seeds run and say how many trials were truncated. The built-in studies set stop_trial: false.
- Recorded per trial too: seconds (wall-clock of the trial), seed_seconds (per seed run) and
  seed_references (per objective on an eval/<name> metric, each seed's eval/reference/<name>: the
  real-data reference, the reachable ceiling the report draws).
- Pruning: the pruner sees the objective's metric (or pruner.metric) at each log step through
  trial.report (step = seed index * max_steps + step); a pruned trial ends as PRUNED, outcome=pruned.
- Crashes: a trial that raises is recorded as FAIL (outcome=failed, error as user attr); the study goes on.
- MLflow: one parent run per study (found again on resume through a study user attr), a nested run per
  trial, and train()'s run per seed nested under it. The report (wavegan.study.report) is written to
  `results_dir` and logged to the parent run at the end.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import logging
import math
import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from wavegan import tracking
from wavegan.atomic import pid_alive
from wavegan.cli.app import CONF_DIR
from wavegan.errors import ConfigError, WaveganError
from wavegan.metrics.seeds import reference_key
from wavegan.secret_masking import mask_text, mask_url
from wavegan.study.search_space import describe, format_value, grid, override, suggest
from wavegan.study.spec import (
    DIVERGENCE_RATE,
    PRUNERS,
    SAMPLERS,
    SweepSpec,
    fingerprint,
)

log = logging.getLogger("wavegan.sweep")
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

# Applied before the study's own overrides (which may change them): a sweep's runs print no progress bars.
DRIVER_DEFAULTS = ["trainer.progress=false"]
CHECKPOINT_PREFIX = "wavegan-sweep-ckpt-"  # + pid: a trial's private checkpoint folder in the temp dir
USAGE = __doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1]


class MissingMetric(WaveganError):
    """The objective's metric was never logged: every trial would fail the same way, so the study stops."""


# --- checking a study against the training config --------------------------------------------------


@dataclass
class Plan:
    """A checked study: what every trial composes from, and how many trials the study holds."""

    spec: SweepSpec
    base_overrides: list[str]
    groups: list[str]  # searched keys that are config groups (loss, model, ...)
    experiment: str
    n_trials: int
    grid: dict[str, list] | None = None
    variants: list[DictConfig] = field(default_factory=list, repr=False)


def config_groups() -> list[str]:
    return sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir())


def compose_config(overrides: list[str]) -> DictConfig:
    """The training config as `python -m wavegan.train <overrides>` composes it; errors are ConfigErrors."""
    from wavegan.cli.app import compose

    try:
        return compose(overrides)
    except WaveganError:
        raise
    except Exception as exc:  # Hydra's messages name the offending override
        message = " ".join(str(exc).split())
        raise ConfigError(f"cannot compose the training config with {overrides}: {message}") from None


def _override_keys(overrides: list[str]) -> dict[str, str]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:
        raise ConfigError(f"bad training override in {overrides}: {str(exc).splitlines()[0]}") from None
    return {o.key_or_group: o.input_line or o.key_or_group for o in parsed}


def _flat_keys(cfg: DictConfig) -> list[str]:
    return list(tracking.flatten(cfg)) + list(tracking.NOT_PARAMS)


def plan_study(spec: SweepSpec, training_overrides: list[str] | None = None) -> Plan:
    """Check the study before any trial: unknown keys, conflicts, bad groups, sampler/pruner settings."""
    from wavegan.config.checks import validate_training_config
    from wavegan.representations import build_representation

    space = spec.space
    fixed = [*DRIVER_DEFAULTS, *spec.overrides, *(training_overrides or [])]
    fixed += [override(k, v) for k, v in space.fixed.items()]
    fixed_keys = _override_keys(fixed)
    if "seed" in space.params or "seed" in space.fixed:
        raise ConfigError(
            "search space: `seed` cannot be searched; seeds are per trial (sweep.seeds=[0, 1, 2])."
        )
    clash = sorted(set(space.params) & set(fixed_keys))
    if clash:
        key = clash[0]
        raise ConfigError(
            f"{', '.join(clash)} is both searched and fixed by an override ({fixed_keys[key]}). Fix: drop "
            f"one; to fix a searched key for this run pass sweep.search_space.{key}=<value> instead."
        )
    base = compose_config(fixed)
    groups = config_groups()
    searched_groups = [k for k in space.params if k in groups]
    variants = [base]
    for group in searched_groups:
        dist = space.params[group]
        if not isinstance(dist, CategoricalDistribution):
            raise ConfigError(
                f"search space: {group} is a config group; search it with choice(...), not {describe(dist)}."
            )
        options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        missing = [c for c in dist.choices if str(c) not in options]
        if missing:
            raise ConfigError(
                f"search space: {group}: no option(s) {', '.join(map(str, missing))} in conf/{group}/. "
                f"Options: {', '.join(options)}."
            )
        variants += [compose_config([*fixed, f"{group}={c}"]) for c in dist.choices]
    unknown = []
    for key in space.params:
        if key in searched_groups:
            continue
        absent = [v for v in variants if OmegaConf.select(v, key, default=_ABSENT) is _ABSENT]
        if absent:
            unknown.append(key)
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, _flat_keys(base) + groups, n=1, cutoff=0.75)
            hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
        raise ConfigError(
            f"search space: unknown config key(s) {', '.join(hints)}: not in the composed training config"
            f"{' (for every searched ' + '/'.join(searched_groups) + ')' if searched_groups else ''}. "
            "Fix: use keys as `python -m wavegan.train --cfg job` prints them (e.g. optimizer.lr)."
        )
    for variant in variants:
        validate_training_config(variant)
        # The representation checks its own keys (cheap; the models are built by each trial).
        build_representation(
            variant.preprocessing, int(variant.data.slice_len), int(variant.data.sample_rate)
        )
    n_trials, grid_values = spec.n_trials, None
    if spec.sampler["name"] == "grid":
        grid_values = grid(space)
        size = math.prod(len(v) for v in grid_values.values())
        if n_trials > size:
            print(f"sweep: the grid has {size} points; running {size} trials, not sweep.n_trials={n_trials}.")
            n_trials = size
    plan = Plan(spec, fixed, searched_groups, str(base.tracking.experiment), n_trials, grid_values, variants)
    make_sampler(plan)  # a bad sampler/pruner keyword fails here, not in a worker
    make_pruner(spec)
    if spec.pruner["name"] != "none" and spec.prune_metric is None:
        print(
            f"sweep: pruner {spec.pruner['name']} is off: Optuna prunes single-objective studies only, on a "
            "logged metric (set sweep.pruner.metric when the objective is divergence_rate)."
        )
    return plan


_ABSENT = object()


def make_sampler(plan: Plan, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    spec = plan.spec
    kwargs = {k: v for k, v in spec.sampler.items() if k != "name"}
    cls = getattr(optuna.samplers, SAMPLERS[spec.sampler["name"]])
    if kwargs.get("seed") is not None:
        # Workers (and a resumed run) must not replay the same random stream: offset the seed.
        kwargs["seed"] = int(kwargs["seed"]) + seed_offset
    if plan.grid is not None:
        kwargs["search_space"] = plan.grid
    try:
        return cls(**kwargs)
    except Exception as exc:
        raise ConfigError(f"sweep.sampler={spec.sampler}: {exc}") from None


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    kwargs = {k: v for k, v in spec.pruner.items() if k not in ("name", "metric")}
    try:
        return getattr(optuna.pruners, PRUNERS[spec.pruner["name"]])(**kwargs)
    except Exception as exc:
        raise ConfigError(f"sweep.pruner={spec.pruner}: {exc}") from None


# --- the study's storage ----------------------------------------------------------------------------


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


# --- MLflow -------------------------------------------------------------------------------------------


class Tracker:
    """The study's parent run and the trials' runs, through MlflowClient (train() owns the fluent API)."""

    def __init__(self, experiment: str) -> None:
        self.uri = tracking.configure()
        self.client = MlflowClient()
        self.experiment_id = tracking.experiment_id(experiment)

    def _alive(self, run_id: str | None) -> bool:
        if not run_id:
            return False
        try:
            return self.client.get_run(run_id).info.lifecycle_stage == "active"
        except Exception:
            return False

    def parent_run(self, study: optuna.Study, spec: SweepSpec) -> str:
        """The study's run: reused when this tracking store already has it (a resumed study)."""
        key = fingerprint(mask_url(self.uri))
        known = dict(study.user_attrs.get("mlflow_parent_runs", {}))
        storage_id = fingerprint(spec.storage + "|" + spec.study_name)
        run_id = known.get(key)
        if not self._alive(run_id):
            found = self.client.search_runs(
                [self.experiment_id],
                filter_string=(
                    f"tags.optuna_study = '{spec.study_name}' and tags.optuna_storage_id = '{storage_id}'"
                ),
                max_results=1,
            )
            run_id = found[0].info.run_id if found else None
        summary = spec.summary()
        if run_id is None:
            run = self.client.create_run(
                self.experiment_id,
                run_name=f"study-{spec.study_name}",
                tags={
                    "optuna_study": spec.study_name,
                    "optuna_storage": mask_url(spec.storage),
                    "optuna_storage_id": storage_id,
                    "sweep": spec.name,
                    "role": "study",
                },
            )
            run_id = run.info.run_id
            params = {f"search.{k}": v for k, v in summary["search_space"].items()}
            params |= {
                f"objective.{i}": f"{o['direction']} {o['name']}" for i, o in enumerate(summary["objectives"])
            }
            params |= {"seeds": str(spec.seeds), "sampler": str(spec.sampler), "pruner": str(spec.pruner)}
            params |= {"overrides": " ".join(summary["overrides"])[: tracking.PARAM_VALUE_LIMIT]}
            for name, value in params.items():
                self.client.log_param(run_id, name, mask_text(value, spec.storage))
        else:
            self.client.update_run(run_id, status="RUNNING")
        known[key] = run_id
        study.set_user_attr("mlflow_parent_runs", known)
        self.client.set_tag(run_id, "sweep.n_trials", str(spec.n_trials))
        self.client.log_dict(run_id, summary, "sweep.yaml")
        return run_id

    def start_trial(self, parent: str, spec: SweepSpec, trial: optuna.Trial, params: dict[str, Any]) -> str:
        tags = {
            MLFLOW_PARENT_RUN_ID: parent,
            "optuna_study": spec.study_name,
            "optuna_trial": str(trial.number),
            "state": "running",
            "role": "trial",
        }
        tags |= {
            k: str(v) for k, v in params.items() if isinstance(spec.space.params[k], CategoricalDistribution)
        }
        run = self.client.create_run(self.experiment_id, run_name=f"trial-{trial.number:03d}", tags=tags)
        for key, value in params.items():
            self.client.log_param(run.info.run_id, key, str(value))
        self.client.log_param(run.info.run_id, "seeds", str(spec.seeds))
        return run.info.run_id

    def end_trial(self, run_id: str, state: str, metrics: dict[str, float], status: str = "FINISHED") -> None:
        self.client.set_tag(run_id, "state", state)
        for name, value in metrics.items():
            if value is not None and math.isfinite(value):
                self.client.log_metric(run_id, name, float(value))
        self.client.set_terminated(run_id, status)

    def close_orphans(self, study: optuna.Study) -> None:
        """Runs of trials whose process died: marked failed/KILLED instead of RUNNING forever."""
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            run_id = t.user_attrs.get("mlflow_run_id")
            if t.user_attrs.get("outcome") != "running" or not self._alive(run_id):
                continue
            with contextlib.suppress(Exception):
                if self.client.get_run(run_id).info.status == "RUNNING":
                    self.client.set_tag(run_id, "state", "failed")
                    self.client.set_tag(run_id, "error", "the trial's process died; retried as a new trial")
                    self.client.set_terminated(run_id, "KILLED")
                for child in self.client.search_runs(
                    [self.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'"
                ):
                    if child.info.status == "RUNNING":
                        self.client.set_terminated(child.info.run_id, "KILLED")


# --- one trial ----------------------------------------------------------------------------------------


@dataclass
class SeedResult:
    outcome: str
    run_id: str
    values: dict[str, float | None]
    diverged_step: int | None = None
    seconds: float = float("nan")  # wall-clock of the seed's run (composing, training, evaluating)
    # Per objective: the run's real-data reference for its metric (eval/reference/<name>), if logged.
    references: dict[str, float | None] = field(default_factory=dict)


class TrialRunner:
    """The objective: train each seed, aggregate, record. Runs inside a worker process."""

    def __init__(
        self, plan: Plan, study: optuna.Study, tracker: Tracker, parent_run: str, lock: ClaimLock
    ) -> None:
        self.plan, self.spec, self.study = plan, plan.spec, study
        self.tracker, self.parent_run, self.lock = tracker, parent_run, lock
        self.fatal: WaveganError | None = None
        self.ran = 0

    def objective(self, trial: optuna.Trial):
        self.lock.release()  # the trial is claimed (it exists as RUNNING): other workers may claim the next
        spec = self.spec
        earlier = count_trials(self.study.get_trials(deepcopy=False), before=trial.number)
        if earlier.done + earlier.running + earlier.waiting >= self.plan.n_trials:
            # Another machine claimed the last trial at the same moment (the file lock is per machine):
            # record it as surplus (not counted, not reported) instead of training past the budget.
            trial.set_user_attr("outcome", "surplus")
            raise _Surplus(f"trial {trial.number} is beyond sweep.n_trials={self.plan.n_trials}; not run")
        params = {key: suggest(trial, key, dist) for key, dist in spec.space.params.items()}
        run_id = self.tracker.start_trial(self.parent_run, spec, trial, params)
        trial.set_user_attr("mlflow_run_id", run_id)
        trial.set_user_attr("outcome", "running")
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        self.ran += 1
        try:
            return self._run(trial, params, run_id)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("outcome", "interrupted")
            self.tracker.end_trial(run_id, "interrupted", {}, "KILLED")
            frozen = next(t for t in self.study.get_trials(deepcopy=False) if t.number == trial.number)
            optuna.storages.RetryHeartbeatStaleTrialCallback(spec.max_retry)(self.study, frozen)
            raise
        except Exception as exc:
            message = mask_text(f"{exc.__class__.__name__}: {exc}", spec.storage)[:2000]
            trial.set_user_attr("outcome", "aborted" if isinstance(exc, MissingMetric) else "failed")
            trial.set_user_attr("error", message)
            with contextlib.suppress(Exception):
                self.tracker.client.set_tag(run_id, "error", message[:5000])
                self.tracker.end_trial(run_id, "failed", {}, "FAILED")
            if isinstance(exc, MissingMetric):
                self.fatal = exc
            else:  # the full traceback, masked; Optuna then logs only the masked message
                log.error(
                    "trial %d failed:\n%s", trial.number, mask_text(traceback.format_exc(), spec.storage)
                )
            raise TrialFailed(message) from None

    def _trial_overrides(self, params: dict[str, Any], number: int, seed: int, checkpoints: str) -> list[str]:
        return [
            *self.plan.base_overrides,
            *(override(k, v) for k, v in params.items()),
            f"seed={seed}",
            "trainer.resume=false",
            f"trainer.checkpoint_dir={format_value(checkpoints)}",
            f"tracking.run_name=trial-{number:03d}-seed{seed}",
        ]

    def _seed(
        self, trial: optuna.Trial, params: dict[str, Any], index: int, seed: int, run_id: str
    ) -> SeedResult:
        from wavegan.training.run import train
        from wavegan.training.trainer import StopRun

        spec = self.spec
        started = time.perf_counter()
        # Trials never resume and must never share checkpoints: a private folder, removed afterwards.
        checkpoints = tempfile.mkdtemp(prefix=f"{CHECKPOINT_PREFIX}{os.getpid()}-")
        try:
            cfg = compose_config(self._trial_overrides(params, trial.number, seed, checkpoints))
            max_steps = int(cfg.trainer.max_steps)
            metric = spec.prune_metric

            def on_metrics(step: int, metrics: dict[str, float]) -> None:
                if metric is None or metric not in metrics or not math.isfinite(metrics[metric]):
                    return
                trial.report(float(metrics[metric]), index * max_steps + step)
                if trial.should_prune():
                    raise StopRun("pruned", f"pruned at step {step} ({metric}={metrics[metric]:.4g})")

            result = train(
                cfg,
                on_metrics=on_metrics,
                parent_run_id=run_id,
                extra_tags={
                    "optuna_study": spec.study_name,
                    "optuna_trial": str(trial.number),
                    "sweep_seed_index": str(index),
                },
            )
        finally:
            shutil.rmtree(checkpoints, ignore_errors=True)
        values: dict[str, float | None] = {}
        references: dict[str, float | None] = {}
        for objective in spec.objectives:
            key = reference_key(objective.metric)
            if key is not None:
                ref = result.metrics.get(key)
                references[objective.name] = float(ref) if ref is not None and math.isfinite(ref) else None
        if result.outcome == "completed":
            for objective in spec.objectives:
                if objective.metric == DIVERGENCE_RATE:
                    continue
                value = objective.run_value(result.metrics, result.history)
                if value is None:
                    raise MissingMetric(
                        f"the objective's metric {objective.metric!r} was never logged by run "
                        f"{result.run_id}. "
                        f"Logged: {', '.join(sorted(result.metrics)) or '(nothing)'}. Fix: "
                        "sweep.objective.metric=<one of those>."
                    )
                values[objective.name] = value
        seconds = time.perf_counter() - started
        return SeedResult(result.outcome, result.run_id, values, result.diverged_step, seconds, references)

    def _decided(self, seeds: list[SeedResult], remaining: int) -> bool:
        """True when the remaining seeds cannot make the aggregate finite (the trial counts as diverged).

        Stopping there (divergence.stop_trial) saves the remaining seeds but truncates the trial's seed
        count after divergences, which biases its divergence rate upward: the trial records it
        (seeds_planned, seeds_run, truncated) and the report says how many trials were truncated."""
        n_diverged = sum(s.outcome == "diverged" for s in seeds)
        if n_diverged == 0:
            return False
        for objective in self.spec.objectives:
            if objective.metric == DIVERGENCE_RATE:
                continue
            values = [s.values.get(objective.name) for s in seeds] + [0.0] * remaining
            if not math.isfinite(objective.combine(values, n_diverged, self.spec.divergence["seed_value"])):
                return True
        return False

    def _run(self, trial: optuna.Trial, params: dict[str, Any], run_id: str):
        spec = self.spec
        started = time.perf_counter()
        seeds: list[SeedResult] = []
        truncated = ""
        for index, seed in enumerate(spec.seeds):
            seeds.append(self._seed(trial, params, index, seed, run_id))
            remaining = len(spec.seeds) - index - 1
            if seeds[-1].outcome == "pruned":
                truncated = "pruned" if remaining else ""
                break
            if remaining and spec.divergence["stop_trial"] and self._decided(seeds, remaining):
                truncated = "divergence"
                break
        outcomes = [s.outcome for s in seeds]
        n_diverged = outcomes.count("diverged")
        per_seed = {
            o.name: [s.values.get(o.name) for s in seeds]
            for o in spec.objectives
            if o.metric != DIVERGENCE_RATE
        }
        values = [
            o.combine(per_seed.get(o.name, []), n_diverged, spec.divergence["seed_value"])
            for o in spec.objectives
        ]
        if "pruned" in outcomes:
            outcome = "pruned"
        elif n_diverged == len(seeds) or not all(math.isfinite(v) for v in values):
            outcome = "diverged"
        else:
            outcome = "completed"
        attrs = {
            "outcome": outcome,
            "seeds": list(spec.seeds[: len(seeds)]),
            "seed_outcomes": outcomes,
            "seed_values": per_seed,
            "seed_run_ids": [s.run_id for s in seeds],
            "n_diverged": n_diverged,
            "divergence_rate": n_diverged / len(seeds),
            "diverged_steps": [s.diverged_step for s in seeds if s.diverged_step is not None],
            # Divergence rates count seeds run; a trial stopped early says so (the report counts them).
            "seeds_planned": len(spec.seeds),
            "seeds_run": len(seeds),
            "truncated": truncated,  # "" | "divergence" (divergence.stop_trial) | "pruned"
            "seconds": time.perf_counter() - started,
            "seed_seconds": [round(s.seconds, 3) for s in seeds],
            # The real-data reference of each objective's metric per seed (the reachable ceiling).
            "seed_references": {
                o.name: [s.references.get(o.name) for s in seeds]
                for o in spec.objectives
                if reference_key(o.metric) is not None
            },
        }
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        metrics = {
            "n_diverged": n_diverged,
            "divergence_rate": attrs["divergence_rate"],
            "seeds_run": len(seeds),
            "seconds": attrs["seconds"],
        }
        if outcome == "completed":
            metrics |= {f"objective/{name}": v for name, v in zip(spec.objective_names, values, strict=True)}
        state = {"completed": "complete"}.get(outcome, outcome)
        self.tracker.end_trial(run_id, state, metrics)
        if outcome == "pruned":
            raise optuna.TrialPruned(f"pruned by {spec.pruner['name']} pruner")
        if outcome == "diverged":
            raise optuna.TrialPruned(f"diverged in {n_diverged} of {len(seeds)} seed(s)")
        return values[0] if len(values) == 1 else values


class _Surplus(Exception):
    pass


class TrialFailed(Exception):
    """A trial's crash, re-raised with credentials masked (Optuna logs its message)."""


# --- workers ------------------------------------------------------------------------------------------


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
