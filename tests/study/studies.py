"""Tiny studies for the tests of wavegan.study: a WaveGAN that trains 3 steps in seconds on a CPU."""

from pathlib import Path

import yaml

TINY = [
    "model=wavegan",
    "data.slice_len=1024",
    "model.dim=4",
    "trainer.batch_size=4",
    "trainer.n_critic=1",
    "trainer.max_steps=3",
    "trainer.log_every=1",
    "data.num_samples=48",
    "trainer.preview_every=1000",
    "trainer.checkpoint_every=1000",
    "tracking.log_model=false",
    "eval.enabled=false",  # sample-quality evaluation (wavegan.metrics) is not what these tests are about
]


def write_study(tmp_path: Path, name: str = "tiny", **keys) -> Path:
    """`<tmp_path>/<name>.yaml`: three trials of the tiny WaveGAN on their own SQLite storage."""
    study = {
        "description": "a tiny test study",
        "overrides": [*TINY, f"tracking.experiment=test-{tmp_path.name}"],
        "search_space": {"optimizer.lr": "tag(log, interval(1e-5, 1e-3))"},
        "seeds": 1,
        "sampler": {"name": "random", "seed": 0},
        "pruner": "none",
        "n_trials": 3,
        "storage": f"sqlite:///{tmp_path / 'optuna.db'}",
        "results_dir": str(tmp_path / "results"),
        "heartbeat_interval": 1,
        "grace_period": 2,
    } | keys
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study))
    return path
