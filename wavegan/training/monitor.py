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


def reference_figures(evaluator, store, representation=None) -> dict[str, float]:
    """`eval/reference/...`: held-out real clips scored as generated ones are, at the same N. For a
    representation that is not the identity (spectrograms), the clips first go through its round trip
    (transform, clip, inverse/Griffin-Lim), the best a generator of that representation can reach; the
    raw clips' figures are then logged too, as `eval/reference_raw/...`."""
    raw = evaluator.reference()
    if representation is None or representation.is_identity:
        return raw
    held_out = evaluator.held_out_waveforms(store)
    reachable = evaluator.score(representation.inverse(representation.transform(held_out)), "eval/reference/")
    reachable.update({k: v for k, v in raw.items() if k not in reachable})  # e.g. classifier accuracy
    return reachable | {k.replace("eval/reference/", "eval/reference_raw/", 1): v for k, v in raw.items()}


class QualityMonitor:
    """`eval/...` metrics of generated samples against the data set (wavegan.metrics), at intervals.

    Fair by construction: the generated set and the held-out reference are scored at the same N
    (`Evaluator.num_scored`), and the reference of a spectrogram model goes through the same
    representation round trip (transform, clip, inverse/Griffin-Lim) as its generated spectrograms,
    so `eval/reference/...` is the ceiling the model can reach; the raw clips' figures are logged as
    `eval/reference_raw/...` where the two differ (any representation other than the waveform).
    """

    def __init__(self, cfg: DictConfig, store, generator, representation) -> None:
        from wavegan.metrics.evaluator import Evaluator
        from wavegan.models import sample_latent

        self.evaluator = Evaluator.for_store(store, cfg.eval)
        self.store, self.generator, self.representation = store, generator, representation
        self.z = sample_latent(
            self.evaluator.num_scored, int(cfg.model.latent_dim), seed=int(cfg.seed) + EVAL_SEED_OFFSET
        )
        self._previous: np.ndarray | None = None  # spectral vectors of the previous evaluation
        if self.evaluator.unavailable:
            log.warning("metrics unavailable for this data set: %s", ", ".join(self.evaluator.unavailable))

    def reference(self) -> dict[str, float]:
        return reference_figures(self.evaluator, self.store, self.representation)

    def score(self) -> dict[str, float]:
        waveforms = generate_waveforms(self.generator, self.representation, self.z)
        if not np.all(np.isfinite(waveforms)):
            return {}  # the divergence check reports this; metrics of NaN audio mean nothing
        features = self.evaluator.features(waveforms)
        figures = self.evaluator.score_features(features, "eval/")
        # How much G's output for the same latents moved since the last evaluation: the distance between
        # each clip's normalised log-mel vectors then and now (an RMS difference per feature, the scale of
        # eval/nn_to_generated), averaged. 0: a frozen generator; a healthy run's change shrinks late.
        if self._previous is not None:
            change = np.linalg.norm(features.spectral - self._previous, axis=1)
            figures["eval/output_change"] = float(np.mean(change))
        self._previous = features.spectral
        return figures
