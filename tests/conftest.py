"""Shared fixtures. wavegan is imported first so deeplake loads before tensorflow (see wavegan/__init__)."""

import os
from pathlib import Path

import pytest

import wavegan  # noqa: F401  (import-order guard)

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory, monkeypatch):
    """Keep every test's data store and MLflow state out of the working tree."""
    root = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("WAVEGAN_DATA_DIR", str(root / "data_store"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    yield
