"""Multiruns through the shipped Hydra launcher configs (conf/hydra/launcher/): `parallel` (the joblib
launcher: local processes) runs two tiny jobs for real; `slurm` (the submitit launcher) composes."""

from __future__ import annotations

import os
import subprocess

import mlflow
import pytest

from tests.conftest import REPO_ROOT, TINY
from tests.machines import WAVEGAN

pytestmark = pytest.mark.system


def test_a_multirun_on_the_joblib_launcher_runs_its_jobs_in_parallel_processes(tmp_path):
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), CUDA_VISIBLE_DEVICES="", MLFLOW_TRACKING_URI=tracking)
    fast = ["trainer.max_steps=2", "trainer.preview_every=1000", "trainer.checkpoint_every=1000"]
    overrides = [*(o for o in TINY if not o.startswith("tracking.experiment")), *fast]
    result = subprocess.run(
        [*WAVEGAN, "train", "-m", "hydra/launcher=parallel", *overrides, "seed=21,22",
         "tracking.log_model=false", "tracking.experiment=joblib-test",
         f"hydra.sweep.dir={tmp_path / 'multi'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr  # the joblib launcher ran them
    mlflow.set_tracking_uri(tracking)
    runs = mlflow.search_runs(experiment_names=["joblib-test"], output_format="list")
    jobs = [r for r in runs if r.data.tags.get("kind") != "seed_summary"]
    assert sorted(r.data.tags["seed"] for r in jobs) == ["21", "22"]
    assert all(r.data.tags["outcome"] == "completed" for r in jobs)


def test_the_slurm_launcher_config_composes_one_gpu_per_job(tmp_path):
    result = subprocess.run(
        [*WAVEGAN, "train", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
         "--cfg", "hydra", "--package", "hydra.launcher"],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SlurmLauncher" in result.stdout and "gpus_per_node: 1" in result.stdout
    assert "partition: gpu" in result.stdout
