"""Preview samples a run logs along the way: from one fixed latent batch, so successive steps compare."""

from __future__ import annotations

import io

import mlflow
import numpy as np
from omegaconf import DictConfig

from wavegan import tracking


def generate_waveforms(generator, representation, z, batch_size: int = 64) -> np.ndarray:
    """Waveforms [N, slice_len] from latents, through the representation's inverse (e.g. Griffin-Lim)."""
    features = [
        generator(z[i : i + batch_size], training=False).numpy().astype(np.float32)
        for i in range(0, int(z.shape[0]), batch_size)
    ]
    return representation.inverse(np.concatenate(features))


def _as_image(figure):
    from PIL import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


class Previewer:
    """A few examples from one fixed latent batch: an image per step (a slider in the UI), WAVs, a page."""

    def __init__(
        self, cfg: DictConfig, generator, representation, sample_rate: int, image_key: str = "previews"
    ) -> None:
        from wavegan.models import sample_latent

        self.generator, self.representation, self.sample_rate = generator, representation, sample_rate
        self.image_key = image_key
        self.z = sample_latent(int(cfg.trainer.num_previews), int(cfg.model.latent_dim), seed=int(cfg.seed))

    def log(self, artifact_dir: str, step: int | None, title: str) -> None:
        from wavegan.plots import spectrogram_grid

        audio = generate_waveforms(self.generator, self.representation, self.z)
        figure = spectrogram_grid(audio, self.sample_rate, [f"z{i}" for i in range(len(audio))])
        if step is not None:
            # Synchronous: MLflow queues a stepped image in a background thread by default, where a full disk
            # or a lost server is an ERROR line and a dropped image instead of the run's one message
            # (tracking.disk_full_reported and the lost-server handler see only errors raised here).
            mlflow.log_image(_as_image(figure), key=self.image_key, step=step, synchronous=True)
        tracking.log_audio_set(audio, self.sample_rate, artifact_dir, figure, title)
