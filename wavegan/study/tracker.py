"""A study in MLflow: one parent run per study (found again on resume), a nested run per trial."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import optuna
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from wavegan import tracking
from wavegan.secret_masking import mask_text, mask_url
from wavegan.study.spec import SweepSpec, fingerprint


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
            self.close_orphan(t)

    def close_orphan(self, trial: optuna.trial.FrozenTrial) -> None:
        """The run of one trial whose process died (and its seeds' runs), if still open. Whatever its
        outcome attr says: a process killed after recording the outcome, before closing the run, left
        outcome=completed on a trial that is now failed and retried."""
        run_id = trial.user_attrs.get("mlflow_run_id")
        if not self._alive(run_id):
            return
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
