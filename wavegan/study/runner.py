"""One trial, inside a worker process (`TrialRunner.objective`): train each seed, aggregate the seeds'
objective values, record the outcome in Optuna and MLflow.

- Seeds: each trial trains every seed in `sweep.seeds` in turn; its objective aggregates them.
- Divergence: a seed that diverges stops at once (the trainer's check). A trial is recorded as PRUNED
  with user attr outcome=diverged when its aggregate cannot be finite (e.g. the median seed diverged;
  with divergence.stop_trial it stops as soon as that is decided). Every trial records n_diverged and
  divergence_rate over the seeds it ran, seeds_planned, seeds_run and truncated ("divergence" when
  stop_trial cut its seeds short, which biases its rate upward; "pruned"), so the report can count rates
  over seeds run and say how many trials were truncated.
- Recorded per trial too: seconds (wall-clock of the trial), seed_seconds (per seed run) and
  seed_references (per objective on an eval/<name> metric, each seed's eval/reference/<name>: the
  real-data reference, the reachable ceiling the report draws).
- Pruning: the pruner sees the objective's metric (or pruner.metric) at each log step through
  trial.report (step = seed index * max_steps + step); a pruned trial ends as PRUNED, outcome=pruned.
- Crashes: a trial that raises is recorded as FAIL (outcome=failed, error as user attr); the study goes on.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import socket
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from wavegan.atomic import owner_tag
from wavegan.errors import WaveganError
from wavegan.metrics.seeds import reference_key
from wavegan.secret_masking import mask_text
from wavegan.study.claims import ClaimLock
from wavegan.study.plan import Plan, compose_config
from wavegan.study.search_space import format_value, override, suggest
from wavegan.study.spec import DIVERGENCE_RATE
from wavegan.study.storage import count_trials
from wavegan.study.tracker import Tracker

log = logging.getLogger("wavegan.sweep")
CHECKPOINT_PREFIX = "wavegan-sweep-ckpt-"  # + owner tag (host, pid): a trial's private checkpoint folder
CHECKPOINT_ENV = "WAVEGAN_CHECKPOINT_DIR"


def checkpoint_root() -> Path:
    """Where trials keep their (private, short-lived) checkpoints: $WAVEGAN_CHECKPOINT_DIR/sweep-trials,
    or the temp folder when it is unset."""
    configured = os.environ.get(CHECKPOINT_ENV)
    return Path(configured).expanduser() / "sweep-trials" if configured else Path(tempfile.gettempdir())


class MissingMetric(WaveganError):
    """The objective's metric was never logged: every trial would fail the same way, so the study stops."""


@dataclass
class SeedResult:
    outcome: str
    run_id: str
    values: dict[str, float | None]
    diverged_step: int | None = None
    seconds: float = float("nan")  # wall-clock of the seed's run (composing, training, evaluating)
    # Per objective: the run's real-data reference for its metric (eval/reference/<name>), if logged.
    references: dict[str, float | None] = field(default_factory=dict)
    collapse: float | None = None  # stability/collapse (1: coverage fell to half its best), if evaluated
    # The quality at the run's last evaluation over its first, oriented so that lower is better (for FD:
    # final FD / first FD): whether the run learned at all. The measurement issue's bar is <= 1/3.
    learning: float | None = None


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


class TrialRunner:
    """The objective: train each seed, aggregate, record. Runs inside a worker process."""

    def __init__(
        self, plan: Plan, study: optuna.Study, tracker: Tracker, parent_run: str, lock: ClaimLock
    ) -> None:
        self.plan, self.spec, self.study = plan, plan.spec, study
        self.tracker, self.parent_run, self.lock = tracker, parent_run, lock
        self.fatal: WaveganError | None = None
        self.ran = 0
        self.trial_number: int | None = None  # the trial being (or last) run

    def objective(self, trial: optuna.Trial):
        self.lock.release()  # the trial is claimed (it exists as RUNNING): other workers may claim the next
        self.trial_number = trial.number
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
            # MLflow first, each step on its own: when the study database is what failed, the trial's
            # run is still closed (and the trial itself is retried once its heartbeat lapses).
            with contextlib.suppress(Exception):
                self.tracker.client.set_tag(run_id, "error", message[:5000])
                self.tracker.end_trial(run_id, "failed", {}, "FAILED")
            with contextlib.suppress(Exception):
                trial.set_user_attr("outcome", "aborted" if isinstance(exc, MissingMetric) else "failed")
                trial.set_user_attr("error", message)
            if isinstance(exc, MissingMetric):
                self.fatal = exc
            else:  # the full traceback, masked; Optuna then logs only the masked message
                log.error(
                    "trial %d failed:\n%s", trial.number, mask_text(traceback.format_exc(), spec.storage)
                )
            raise TrialFailed(message) from None

    def lost_claim(self, exc: BaseException) -> bool:
        """True when `exc` says the trial just run was finished under this worker: another worker took
        it for dead (its heartbeat was late by grace_period: a starved or paused process), failed it and
        queued its retry. Its result is dropped; the retry counts."""
        if self.trial_number is None or not isinstance(
            exc, ValueError | optuna.exceptions.UpdateFinishedTrialError
        ):
            return False
        try:
            trial = next(t for t in self.study.get_trials(deepcopy=False) if t.number == self.trial_number)
        except Exception:
            return False
        if trial.state != optuna.trial.TrialState.FAIL:
            return False
        log.warning(
            "trial %d was failed by another worker while it ran here (no heartbeat for %d s: raise "
            "sweep.grace_period if this machine is overloaded); its retry counts, this result is dropped",
            trial.number,
            self.spec.grace_period,
        )
        return True

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
        root = checkpoint_root()
        root.mkdir(parents=True, exist_ok=True)
        checkpoints = tempfile.mkdtemp(prefix=f"{CHECKPOINT_PREFIX}{owner_tag()}-", dir=root)
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
        collapse = _finite(result.metrics.get("stability/collapse"))
        return SeedResult(
            result.outcome,
            result.run_id,
            values,
            result.diverged_step,
            seconds,
            references,
            collapse,
            _finite(result.metrics.get("stability/final_over_first")),
        )

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
            # stability/collapse per seed (None where the run had too few evaluations): collapse rates.
            "seed_collapses": [s.collapse for s in seeds],
            # final / first evaluation's quality per seed (None: fewer than two evaluations): learning rates.
            "seed_learning": [s.learning for s in seeds],
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
            raise optuna.TrialPruned(f"pruned by {spec.pruner_name} pruner")
        if outcome == "diverged":
            raise optuna.TrialPruned(f"diverged in {n_diverged} of {len(seeds)} seed(s)")
        return values[0] if len(values) == 1 else values


class _Surplus(Exception):
    pass


class TrialFailed(Exception):
    """A trial's crash, re-raised with credentials masked (Optuna logs its message)."""
