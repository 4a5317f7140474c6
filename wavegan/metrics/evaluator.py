"""Scores generated audio against a data store: quality, diversity, and the held-out-real reference.

    evaluator = Evaluator.for_store(store, cfg.eval)   # trains or loads the cached classifier
    evaluator.score(waveforms)    # {"eval/frechet_distance": ..., ...}
    evaluator.reference()         # the same for held-out real clips: {"eval/reference/frechet_distance": ...}

Everything that depends only on the data set is computed once and cached next to the store, in
`<store.root>/classifier/<hash of the eval settings>/`, built under a temporary name and renamed into
place (as the store itself), so concurrent jobs and interrupted builds never leave a half cache:
the classifier's weights, its held-out accuracy (`info.json`), the k-means that NDB bins by, and the
features of every real clip (train and held-out). A score() then costs one log-mel pass, one
classifier forward pass and a few small matrix products for the generated clips alone.

Metrics (all against the training split; see quality.py for each definition):

    eval/inception_score        IS of the classifier's probabilities                    higher better
    eval/frechet_distance       FD of the classifier's penultimate-layer embeddings     lower better
    eval/class_coverage         fraction of classes predicted at least once             higher better
    eval/class_entropy          normalised entropy of the predicted-class histogram     higher better
    eval/mel_frechet_distance   FD of per-band log-mel mean and std (label-free)        lower better
    eval/ndb_over_k             NDB/K, k-means bins on the spectral vectors             lower better
    eval/ndb_js                 JS divergence of the bin shares                         lower better
    eval/nn_to_train            mean distance to the nearest training clip              vs reference
    eval/nn_to_generated        mean distance to the nearest other generated clip       vs reference

Without labels (every `label` is "", or fewer than two classes) the first four are unavailable and
listed in `unavailable`; the rest are computed. Figures depend on the number of clips scored (the
Fréchet distance's bias, NDB's test power): the reference uses min(eval.num_samples, held-out clips)
clips, so score eval.num_samples generated clips to read them against it.
"""

from __future__ import annotations

import hashlib
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
from wavegan.data.store import DataStore
from wavegan.errors import DataError
from wavegan.metrics import quality
from wavegan.metrics.features import BandNormaliser, MelFeatures, mel_statistics, spectral_vectors

log = logging.getLogger(__name__)

__all__ = ["CLASSIFIER_METRICS", "Evaluator", "METRICS"]

# Bump when a change to the features or the classifier makes old caches wrong.
CACHE_VERSION = 1
CLASSIFIER_METRICS = ("inception_score", "frechet_distance", "class_coverage", "class_entropy")
LABEL_FREE_METRICS = ("mel_frechet_distance", "ndb_over_k", "ndb_js", "nn_to_train", "nn_to_generated")
METRICS = CLASSIFIER_METRICS + LABEL_FREE_METRICS
NDB_ALPHA = 0.05
# Held-out fraction carved from the training split when a store has no valid/test clips.
_CARVE_FRACTION = 0.1
_FEATURE_KEYS = ("spectral", "mel_stats", "embeddings", "probs", "labels")


def _cfg_dict(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    if cfg is None:
        return {}
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return dict(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover
        pass
    return dict(cfg)


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


class Evaluator:
    """Quality/diversity metrics of generated clips for one data store (build with `for_store`)."""

    def __init__(
        self,
        mel: MelFeatures,
        normaliser: BandNormaliser,
        train: RealFeatures,
        held_out: RealFeatures,
        kmeans,
        info: dict[str, Any],
        classifier=None,
        num_samples: int = 256,
        seed: int = 0,
    ) -> None:
        self.mel, self.normaliser, self.train, self.held_out = mel, normaliser, train, held_out
        self.kmeans, self.info, self.classifier = kmeans, info, classifier
        self.num_samples, self.seed = int(num_samples), int(seed)
        self.labels_available: bool = classifier is not None
        self.class_names: list[str] = list(info.get("class_names", []))
        self.classifier_accuracy: float | None = info.get("classifier_accuracy")
        self.unavailable: list[str] = (
            [] if self.labels_available else [f"eval/{m}" for m in CLASSIFIER_METRICS]
        )
        self.unavailable_reason: str = info.get("unavailable_reason", "")
        self._reference: dict[str, float] | None = None
        if self.unavailable:
            log.warning("metrics unavailable: %s (%s)", ", ".join(self.unavailable), self.unavailable_reason)

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def for_store(
        cls, store: DataStore, eval_cfg: Mapping[str, Any] | None = None, seed: int = 0
    ) -> Evaluator:
        """Loads the cached classifier and real features for this store, building them first if needed.

        `seed` seeds the classifier, k-means and the reference subset, and is part of the cache key:
        keep it fixed (the default) across the runs you compare, so every run on a data set is scored
        by the same classifier; do not pass a training run's seed.
        """
        cfg = _cfg_dict(eval_cfg)
        mel = MelFeatures.from_config(
            _cfg_dict(cfg.get("features")), int(store.summary["sample_rate"]), int(store.summary["slice_len"])
        )
        from wavegan.metrics.classifier import ClassifierSettings

        settings = ClassifierSettings.from_config(_cfg_dict(cfg.get("classifier")))
        ndb_k = int(cfg.get("ndb_k", 50))
        target = cache_dir(store, mel, settings, ndb_k, seed)
        if not (target / "info.json").is_file():
            _build_cache(store, target, mel, settings, ndb_k, seed)
        return cls._load(target, mel, int(cfg.get("num_samples", 256)), seed)

    @classmethod
    def _load(cls, target: Path, mel: MelFeatures, num_samples: int, seed: int) -> Evaluator:
        import joblib

        info = json.loads((target / "info.json").read_text())
        with np.load(target / "features.npz") as npz:
            arrays = dict(npz)
        classifier = None
        if info["labels_available"]:
            import keras

            classifier = keras.models.load_model(target / "classifier.keras", compile=False)
        return cls(
            mel,
            BandNormaliser(arrays["norm_mean"], arrays["norm_std"]),
            RealFeatures.from_arrays(arrays, "train"),
            RealFeatures.from_arrays(arrays, "held_out"),
            joblib.load(target / "kmeans.joblib"),
            info,
            classifier,
            num_samples,
            seed,
        )

    # -- features -----------------------------------------------------------------------------------

    def normalised_log_mel(self, waveforms: np.ndarray) -> np.ndarray:
        y = np.asarray(waveforms, dtype=np.float32)
        # As writing a WAV file would: non-finite samples (a diverging generator) to 0, peaks to +-1.
        y = np.clip(np.nan_to_num(y, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
        return self.normaliser(self.mel.log_mel(y))

    def features(self, waveforms: np.ndarray) -> RealFeatures:
        """The features the metrics use, for any clips [N, slice_len] (labels unknown: -1)."""
        with quality.one_thread():
            normalised = self.normalised_log_mel(waveforms)
            feats = RealFeatures(
                spectral_vectors(normalised, self.mel.time_segments),
                mel_statistics(normalised),
                np.full(len(normalised), -1, np.int32),
            )
        if self.classifier is not None:
            from wavegan.metrics.classifier import predict

            feats.embeddings, feats.probs = predict(self.classifier, normalised[..., None])
        return feats

    # -- metrics ------------------------------------------------------------------------------------

    def score(self, waveforms: np.ndarray) -> dict[str, float]:
        """`eval/<metric>` for generated waveforms [N, slice_len] (or [N, slice_len, 1]), N >= 2."""
        if len(waveforms) < 2:
            raise ValueError(f"score() needs at least 2 clips, got {len(waveforms)}")
        return self.score_features(self.features(waveforms), "eval/")

    def score_features(self, feats: RealFeatures, prefix: str = "eval/") -> dict[str, float]:
        train = self.train
        with quality.one_thread():
            out = {"mel_frechet_distance": quality.frechet_distance(train.mel_stats, feats.mel_stats)}
            out["ndb_over_k"], out["ndb_js"] = quality.ndb(
                train.spectral, feats.spectral, alpha=NDB_ALPHA, kmeans=self.kmeans
            )
            out.update(quality.nearest_neighbour_distances(feats.spectral, train.spectral))
            if self.labels_available and feats.probs is not None:
                out["inception_score"] = quality.inception_score(feats.probs)
                out["frechet_distance"] = quality.frechet_distance(train.embeddings, feats.embeddings)
                out["class_coverage"], out["class_entropy"] = quality.class_coverage(feats.probs)
        return {f"{prefix}{name}": float(out[name]) for name in METRICS if name in out}

    def reference(self) -> dict[str, float]:
        """The same metrics for held-out real clips, as `eval/reference/<metric>`: the ceiling a
        generator is read against. Uses min(eval.num_samples, held-out clips) clips, a seeded subset."""
        if self._reference is None:
            n_held = len(self.held_out.spectral)
            n = min(self.num_samples, n_held)
            idx = np.sort(np.random.default_rng(self.seed).permutation(n_held)[:n])
            self._reference = self.score_features(self.held_out.subset(idx), "eval/reference/")
            self._reference["eval/reference/num_samples"] = float(n)
            if self.classifier_accuracy is not None:
                self._reference["eval/reference/classifier_accuracy"] = float(self.classifier_accuracy)
        return dict(self._reference)

    def headline_key(self, preferred: str = "eval/frechet_distance") -> str:
        """`preferred` when this data set has it, else the label-free `eval/mel_frechet_distance`
        (both lower-is-better), so a run on unlabelled data still has a quality figure."""
        return "eval/mel_frechet_distance" if preferred in self.unavailable else preferred

    @property
    def summary(self) -> dict[str, Any]:
        """What the cache holds, for logs and reports."""
        keys = (
            "classifier_accuracy",
            "accuracy_split",
            "class_names",
            "held_out",
            "num_train",
            "build_seconds",
        )
        return {k: self.info.get(k) for k in keys} | {"labels_available": self.labels_available}


# -- the cache -----------------------------------------------------------------------------------------


def cache_dir(store: DataStore, mel: MelFeatures, settings, ndb_k: int, seed: int) -> Path:
    spec = {
        "version": CACHE_VERSION,
        "mel": mel.__dict__,
        "classifier": settings.__dict__,
        "ndb_k": ndb_k,
        "seed": seed,
        "sklearn": sklearn.__version__.split(".")[:2],  # the k-means is pickled
    }
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=list).encode()).hexdigest()[:12]
    return store.root / "classifier" / digest


def _held_out_indices(splits: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(train rows, held-out rows, description): valid+test, or a seeded 10 % of train if none."""
    held = np.flatnonzero(splits != "train")
    train = np.flatnonzero(splits == "train")
    if len(held):
        return train, held, "valid+test splits"
    n_carve = max(1, int(round(_CARVE_FRACTION * len(train)))) if len(train) > 2 else 0
    carved = np.sort(np.random.default_rng(seed).permutation(train)[:n_carve])
    return np.setdiff1d(train, carved), carved, f"{n_carve} clips carved from train (no valid/test split)"


def _build_cache(store: DataStore, target: Path, mel: MelFeatures, settings, ndb_k: int, seed: int) -> None:
    with build_atomically(target, marker="info.json") as partial:
        _write_cache(store, partial, mel, settings, ndb_k, seed)


def _write_cache(store: DataStore, folder: Path, mel: MelFeatures, settings, ndb_k: int, seed: int) -> None:
    import joblib

    started = time.perf_counter()
    timings: dict[str, float] = {}
    waveforms = store.waveforms(None)
    splits = np.asarray(store.column("split", None)).astype(str)
    # deeplake returns an empty text cell as None: both mean "no label"
    labels = np.array(["" if v is None else str(v) for v in store.column("label", None)], dtype=object)
    train_idx, held_idx, held_desc = _held_out_indices(splits, seed)
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
        "classifier_accuracy": None,
        "accuracy_split": None,
        "mel": mel.__dict__,
        "classifier_settings": settings.__dict__,
        "ndb_k": ndb_k,
        "seed": seed,
    }

    if not reason:
        from wavegan.metrics.classifier import predict, train_classifier

        t0 = time.perf_counter()
        x = normalised[..., None]
        fit_rows = train_idx[y[train_idx] >= 0]
        # Early stopping on the valid split; accuracy reported on test when there is one (unbiased).
        held_splits = splits[held_idx]
        has_test = bool(np.any((held_splits == "test") & (y[held_idx] >= 0)))
        stop_rows = held_idx[(held_splits != "test") if has_test else slice(None)]
        stop_rows = stop_rows[y[stop_rows] >= 0]
        model, report = train_classifier(
            x[fit_rows], y[fit_rows], x[stop_rows], y[stop_rows], len(class_names), settings, seed
        )
        timings["classifier_train_s"] = report.seconds
        train.embeddings, train.probs = predict(model, x[train_idx])
        held_out.embeddings, held_out.probs = predict(model, x[held_idx])
        acc_rows = (held_splits == "test") if has_test else np.ones(len(held_idx), bool)
        acc_rows &= held_out.labels >= 0
        if acc_rows.any():
            correct = np.argmax(held_out.probs[acc_rows], axis=1) == held_out.labels[acc_rows]
            info["classifier_accuracy"] = float(np.mean(correct))
            info["accuracy_split"] = "test" if has_test else held_desc
        info["classifier_training"] = {
            "epochs_run": report.epochs_run,
            "best_epoch": report.best_epoch,
            "early_stopping_accuracy": report.valid_accuracy,
            "history": report.history,
        }
        model.save(folder / "classifier.keras")
        timings["classifier_s"] = time.perf_counter() - t0
        log.info(
            "quality classifier: %d classes, held-out accuracy %s (%s), %.1f s",
            len(class_names),
            info["classifier_accuracy"],
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
