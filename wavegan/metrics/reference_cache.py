"""The per-store metrics cache: everything the metrics need that depends only on the data set.

Computed once and cached next to the store, in `<store.root>/classifier/<hash of the eval settings>/`,
built under a temporary name and renamed into place (as the store itself), so concurrent jobs and
interrupted builds never leave a half cache:

    info.json        class names, held-out rows, the classifier's accuracy with its interval and the
                     rows it was measured on (classifier_fit.py), timings
    classifier.keras the quality classifier (absent for unlabelled data)
    kmeans.joblib    the k-means that NDB bins by
    features.npz     the per-band normaliser and the features of every real clip, train and held-out
                     (RealFeatures: spectral vectors, mel statistics, labels, embeddings, probabilities)

A score() then costs one log-mel pass, one classifier forward pass and a few small matrix products for
the generated clips alone.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn

from wavegan.atomic import build_atomically
from wavegan.caching import cache_key
from wavegan.data.store import DataStore
from wavegan.errors import DataError
from wavegan.metrics import quality
from wavegan.metrics.classifier import ClassifierSettings
from wavegan.metrics.classifier_fit import fit_and_measure, held_out_indices, plan_rows, recording_groups
from wavegan.metrics.features import BandNormaliser, MelFeatures, mel_statistics, spectral_vectors

log = logging.getLogger(__name__)

__all__ = ["CACHE_VERSION", "CachedReference", "RealFeatures", "build_cache", "cache_dir", "read_cache"]

# Bump when a change to the features or the classifier makes old caches wrong.
# 5: small data sets get the discriminant model (classifier.py), settings nested by model.
CACHE_VERSION = 5
_FEATURE_KEYS = ("spectral", "mel_stats", "embeddings", "probs", "labels")


@dataclass
class RealFeatures:
    """Precomputed features of a set of real clips (rows aligned)."""

    spectral: np.ndarray
    mel_stats: np.ndarray
    labels: np.ndarray  # class index, -1 when unlabelled or a class the classifier was not trained on
    embeddings: np.ndarray | None = None
    probs: np.ndarray | None = None

    def subset(self, idx: np.ndarray) -> RealFeatures:
        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]

        return RealFeatures(
            self.spectral[idx], self.mel_stats[idx], self.labels[idx], pick(self.embeddings), pick(self.probs)
        )

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}_{k}": getattr(self, k) for k in _FEATURE_KEYS if getattr(self, k) is not None}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> RealFeatures:
        get = {k: arrays.get(f"{prefix}_{k}") for k in _FEATURE_KEYS}
        return cls(get["spectral"], get["mel_stats"], get["labels"], get["embeddings"], get["probs"])


@dataclass
class CachedReference:
    """What read_cache returns: the cache's content, ready for an Evaluator."""

    info: dict[str, Any]
    normaliser: BandNormaliser
    train: RealFeatures
    held_out: RealFeatures
    kmeans: Any
    classifier: Any  # keras.Model, or None for unlabelled data


def cache_dir(
    store: DataStore, mel: MelFeatures, settings: ClassifierSettings, ndb_k: int, seed: int
) -> Path:
    spec = {
        "version": CACHE_VERSION,
        "mel": mel.__dict__,
        "classifier": dataclasses.asdict(settings),
        "ndb_k": ndb_k,
        "seed": seed,
        "sklearn": sklearn.__version__.split(".")[:2],  # the k-means is pickled
    }
    digest = cache_key(spec, 12)
    return store.root / "classifier" / digest


def read_cache(target: Path) -> CachedReference:
    import joblib

    info = json.loads((target / "info.json").read_text())
    with np.load(target / "features.npz") as npz:
        arrays = dict(npz)
    classifier = None
    if info["labels_available"]:
        import keras

        import wavegan.metrics.discriminant  # noqa: F401  (registers ClipSummary for loading)

        classifier = keras.models.load_model(target / "classifier.keras", compile=False)
    return CachedReference(
        info,
        BandNormaliser(arrays["norm_mean"], arrays["norm_std"]),
        RealFeatures.from_arrays(arrays, "train"),
        RealFeatures.from_arrays(arrays, "held_out"),
        joblib.load(target / "kmeans.joblib"),
        classifier,
    )


def build_cache(
    store: DataStore, target: Path, mel: MelFeatures, settings: ClassifierSettings, ndb_k: int, seed: int
) -> None:
    with build_atomically(target, marker="info.json") as partial:
        _write_cache(store, partial, mel, settings, ndb_k, seed)


def _write_cache(
    store: DataStore, folder: Path, mel: MelFeatures, settings: ClassifierSettings, ndb_k: int, seed: int
) -> None:
    import joblib

    started = time.perf_counter()
    timings: dict[str, float] = {}
    waveforms = store.waveforms(None)
    splits = np.asarray(store.column("split", None)).astype(str)
    # deeplake returns an empty text cell as None: both mean "no label"
    labels = np.array(["" if v is None else str(v) for v in store.column("label", None)], dtype=object)
    train_idx, held_idx, held_desc = held_out_indices(splits, seed)
    if len(train_idx) < 2 or len(held_idx) < 1:
        raise DataError(
            f"the data store {store.root} has {len(train_idx)} training and {len(held_idx)} held-out clips; "
            "evaluation needs at least 2 and 1. Fix: use more data (data.num_samples) or a valid split."
        )

    t0 = time.perf_counter()
    with quality.one_thread():
        log_mels = mel.log_mel(waveforms)
        normaliser = BandNormaliser.fit(log_mels[train_idx])
        normalised = normaliser(log_mels)
    del log_mels
    timings["features_s"] = time.perf_counter() - t0

    class_names = sorted({lab for lab in labels[train_idx] if lab})
    index = {name: i for i, name in enumerate(class_names)}
    y = np.array([index.get(lab, -1) for lab in labels], np.int32)
    reason = ""
    if not class_names:
        reason = "the data set has no labels (every `label` is empty)"
    elif len(class_names) < 2:
        reason = f"the data set has a single label ({class_names[0]!r}); a classifier needs two or more"

    def real(idx: np.ndarray) -> RealFeatures:
        with quality.one_thread():
            return RealFeatures(
                spectral_vectors(normalised[idx], mel.time_segments), mel_statistics(normalised[idx]), y[idx]
            )

    train, held_out = real(train_idx), real(held_idx)
    info: dict[str, Any] = {
        "labels_available": not reason,
        "unavailable_reason": reason,
        "class_names": class_names,
        "held_out": held_desc,
        "num_train": int(len(train_idx)),
        "num_held_out": int(len(held_idx)),
        "held_out_rows": [int(i) for i in held_idx],
        "classifier_accuracy": None,
        "accuracy_split": None,
        "mel": mel.__dict__,
        "classifier_settings": dataclasses.asdict(settings),
        "ndb_k": ndb_k,
        "seed": seed,
    }

    if not reason:
        from wavegan.metrics.classifier import predict

        t0 = time.perf_counter()
        x = normalised[..., None]
        groups = recording_groups(store, len(y))
        rows = plan_rows(splits, y, groups, train_idx, held_idx, held_desc, settings, seed)
        model, measured = fit_and_measure(x, y, groups, rows, len(class_names), settings, seed)
        info.update(measured)
        train.embeddings, train.probs = predict(model, x[train_idx])
        held_out.embeddings, held_out.probs = predict(model, x[held_idx])
        model.save(folder / "classifier.keras")
        timings["classifier_s"] = time.perf_counter() - t0
        log.info(
            "quality classifier (%s): %d classes, held-out accuracy %s [%s, %s] on %s clips (%s), %.1f s",
            rows.model,
            len(class_names),
            info["classifier_accuracy"],
            info.get("classifier_accuracy_ci_low"),
            info.get("classifier_accuracy_ci_high"),
            info.get("accuracy_n"),
            info["accuracy_split"],
            timings["classifier_s"],
        )

    t0 = time.perf_counter()
    joblib.dump(quality.fit_kmeans(train.spectral, ndb_k, seed), folder / "kmeans.joblib")
    timings["kmeans_s"] = time.perf_counter() - t0
    np.savez(
        folder / "features.npz",
        norm_mean=normaliser.mean,
        norm_std=normaliser.std,
        **train.arrays("train"),
        **held_out.arrays("held_out"),
    )
    info["timings"] = {k: round(v, 3) for k, v in timings.items()}
    info["build_seconds"] = round(time.perf_counter() - started, 3)
    (folder / "info.json").write_text(json.dumps(info, indent=2, default=str))
