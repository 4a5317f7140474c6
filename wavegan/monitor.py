"""What a training run looks at along the way: preview samples (images, audio) and sample-quality
evaluation, both from fixed latent batches so that successive steps are comparable."""

from __future__ import annotations

import io
import logging

import mlflow
import numpy as np
from omegaconf import DictConfig

from wavegan import tracking

log = logging.getLogger(__name__)
# Evaluation latents come from their own seed stream so they never coincide with the previews'.
EVAL_SEED_OFFSET = 1_000_003


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

    def __init__(self, cfg: DictConfig, generator, representation, sample_rate: int) -> None:
        from wavegan.models import sample_latent

        self.generator, self.representation, self.sample_rate = generator, representation, sample_rate
        self.z = sample_latent(int(cfg.trainer.num_previews), int(cfg.model.latent_dim), seed=int(cfg.seed))

    def log(self, artifact_dir: str, step: int | None, title: str) -> None:
        from wavegan.plots import spectrogram_grid

        audio = generate_waveforms(self.generator, self.representation, self.z)
        figure = spectrogram_grid(audio, self.sample_rate, [f"z{i}" for i in range(len(audio))])
        if step is not None:
            mlflow.log_image(_as_image(figure), key="previews", step=step)
        tracking.log_audio_set(audio, self.sample_rate, artifact_dir, figure, title)


class QualityMonitor:
    """`eval/...` metrics of generated samples against the data set (wavegan.metrics), at intervals."""

    def __init__(self, cfg: DictConfig, store, generator, representation) -> None:
        from wavegan.metrics.evaluator import Evaluator
        from wavegan.models import sample_latent

        self.evaluator = Evaluator.for_store(store, cfg.eval)
        self.generator, self.representation = generator, representation
        self.z = sample_latent(
            int(cfg.eval.num_samples), int(cfg.model.latent_dim), seed=int(cfg.seed) + EVAL_SEED_OFFSET
        )
        if self.evaluator.unavailable:
            log.warning("metrics unavailable for this data set: %s", ", ".join(self.evaluator.unavailable))

    def reference(self) -> dict[str, float]:
        return self.evaluator.reference()

    def score(self) -> dict[str, float]:
        waveforms = generate_waveforms(self.generator, self.representation, self.z)
        if not np.all(np.isfinite(waveforms)):
            return {}  # the divergence check reports this; metrics of NaN audio mean nothing
        return self.evaluator.score(waveforms)
