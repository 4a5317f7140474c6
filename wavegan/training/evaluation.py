"""Sample-quality evaluation along a run: `eval/...` (or `eval_ema/...` for the EMA generator) against
held-out real data, from a fixed latent batch so successive evaluations compare."""

from __future__ import annotations

import io
import logging

import numpy as np
import tensorflow as tf
from omegaconf import DictConfig

from wavegan.training.previews import generate_waveforms

log = logging.getLogger(__name__)
# Evaluation latents come from their own seed stream so they never coincide with the previews'.
EVAL_SEED_OFFSET = 1_000_003


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

    def __init__(
        self, cfg: DictConfig, store, generator, representation, prefix: str = "eval/", evaluator=None
    ) -> None:
        """`prefix` names the figures (`eval_ema/` for the EMA generator); `evaluator` shares one already
        built for the store (its classifier and real-data features) instead of loading them again."""
        from wavegan.metrics.evaluator import Evaluator
        from wavegan.models import sample_latent

        self.evaluator = evaluator or Evaluator.for_store(store, cfg.eval)
        self.store, self.generator, self.representation = store, generator, representation
        self.prefix = prefix
        self.z = sample_latent(
            self.evaluator.num_scored, int(cfg.model.latent_dim), seed=int(cfg.seed) + EVAL_SEED_OFFSET
        )
        self._previous: np.ndarray | None = None  # spectral vectors of the previous evaluation
        if self.evaluator.unavailable and evaluator is None:
            log.warning("metrics unavailable for this data set: %s", ", ".join(self.evaluator.unavailable))

    def reference(self) -> dict[str, float]:
        return reference_figures(self.evaluator, self.store, self.representation)

    def score(self) -> dict[str, float]:
        waveforms = generate_waveforms(self.generator, self.representation, self.z)
        if not np.all(np.isfinite(waveforms)):
            return {}  # the divergence check reports this; metrics of NaN audio mean nothing
        features = self.evaluator.features(waveforms)
        figures = self.evaluator.score_features(features, self.prefix)
        # How much G's output for the same latents moved since the last evaluation: the distance between
        # each clip's normalised log-mel vectors then and now (an RMS difference per feature, the scale of
        # eval/nn_to_generated), averaged. 0: a frozen generator; a healthy run's change shrinks late.
        if self._previous is not None:
            change = np.linalg.norm(features.spectral - self._previous, axis=1)
            figures[f"{self.prefix}output_change"] = float(np.mean(change))
        self._previous = features.spectral
        return figures

    def memory(self) -> MonitorMemory:
        """What this monitor remembers between evaluations, as a checkpointable object: a resumed run's first
        `output_change` then compares with the evaluation before the checkpoint, as an uninterrupted run's."""
        return MonitorMemory(self)


class MonitorMemory(tf.train.experimental.PythonState):
    """A QualityMonitor's previous spectral vectors in the run's checkpoint (NumPy's format, no pickle)."""

    def __init__(self, monitor: QualityMonitor) -> None:
        self.monitor = monitor

    def serialize(self) -> bytes:
        buffer = io.BytesIO()
        previous = self.monitor._previous
        np.save(buffer, np.zeros((0,), np.float32) if previous is None else previous, allow_pickle=False)
        return buffer.getvalue()

    def deserialize(self, string_value: bytes) -> None:
        previous = np.load(io.BytesIO(string_value), allow_pickle=False)
        self.monitor._previous = previous if previous.size else None
