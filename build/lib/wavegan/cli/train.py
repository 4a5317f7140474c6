"""`wavegan train [overrides]` (also `python -m wavegan.train`): one GAN training run, logged to MLflow.

    wavegan train                                  # WaveGAN, WGAN-GP, built-in notes
    wavegan train loss=wgan_gp model=dcgan         # SpecGAN-style DCGAN on spectrograms
    wavegan train -m loss=bce,wgan_gp model=dcgan,wavegan seed=0,1,2   # a grid, one run each
    wavegan train trainer.resume=true              # continue this config's last run

The run itself is wavegan/training/run.py.
"""

from __future__ import annotations

import mlflow
from omegaconf import DictConfig

from wavegan.cli.app import entry_point
from wavegan.secret_masking import mask_url
from wavegan.training.run import train


@entry_point()
def main(cfg: DictConfig) -> None:
    result = train(cfg)
    print(
        f"{result.outcome}: {result.steps} steps, MLflow run id {result.run_id}. "
        f"Look at it with: mlflow ui --backend-store-uri {mask_url(mlflow.get_tracking_uri())}"
    )
