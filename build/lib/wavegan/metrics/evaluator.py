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
from wavegan.metrics.features import BandNormaliser, MelFeatures, mel_statistics, spectral_vectors
from wavegan.metrics.intervals import bootstrap_rows

log = logging.getLogger(__name__)

__all__ = ["CLASSIFIER_METRICS", "Evaluator", "METRICS"]

# Bump when a change to the features or the classifier makes old caches wrong.
CACHE_VERSION = 4
CLASSIFIER_METRICS = ("inception_score", "frechet_distance", "class_coverage", "class_entropy")
LABEL_FREE_METRICS = ("mel_frechet_distance", "ndb_over_k", "ndb_js", "nn_to_train", "nn_to_generated")
METRICS = CLASSIFIER_METRICS + LABEL_FREE_METRICS
NDB_ALPHA = 0.05
MIN_CLIPS_PER_IS_SPLIT = 50
# Held-out fraction carved from the training split when a store has no valid/test clips.
_CARVE_FRACTION = 0.1
_FEATURE_KEYS = ("spectral", "mel_stats", "embeddings", "probs", "labels")
# A classifier below this accuracy on clips it never fitted or early-stopped on is unfit: its IS, FD,
# coverage and entropy are marked unreliable (eval.classifier.min_accuracy overrides it).
DEFAULT_MIN_ACCURACY = 0.8
_ACCURACY_KEYS = ("class_names", "classifier_accuracy", "accuracy_n", "accuracy_split", "build_seconds")
_WARNED_UNFIT: set[str] = set()  # caches already warned about in this process: one warning each


def _min_accuracy(eval_cfg: Mapping[str, Any] | None) -> float:
    classifier = _cfg_dict((eval_cfg or {}).get("classifier"))
    value = classifier.get("min_accuracy")
    return DEFAULT_MIN_ACCURACY if value is None else float(value)


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
        scoring: Mapping[str, Any] | None = None,
    ) -> None:
        self.mel, self.normaliser, self.train, self.held_out = mel, normaliser, train, held_out
        self.kmeans, self.info, self.classifier = kmeans, info, classifier
        self.num_samples, self.seed = int(num_samples), int(seed)
        scoring = dict(scoring or {})
        # The Inception Score over splits, as the reference (mean and standard deviation of 10 splits).
        self.is_splits = int(scoring.get("is_splits", 10))
        # Bootstrap resamples for each figure's 95 % interval (0: no intervals).
        self.n_bootstrap = int(scoring.get("bootstrap", 200))
        # Statistics of the fixed (training) side, computed once: each score and each bootstrap resample
        # then costs one covariance and one eigendecomposition, and NDB one bincount.
        with quality.one_thread():
            self._mel_stats_train = quality.GaussianStats(train.mel_stats)
            self._embed_train = (
                quality.GaussianStats(train.embeddings) if train.embeddings is not None else None
            )
            k = int(getattr(kmeans, "n_clusters", 0))
            self._train_bin_counts = np.bincount(kmeans.predict(train.spectral), minlength=k)
        self.labels_available: bool = classifier is not None
        self.class_names: list[str] = list(info.get("class_names", []))
        self.classifier_accuracy: float | None = info.get("classifier_accuracy")
        self.classifier_accuracy_interval: tuple[float, float] | None = (
            None
            if info.get("classifier_accuracy_ci_low") is None
            else (float(info["classifier_accuracy_ci_low"]), float(info["classifier_accuracy_ci_high"]))
        )
        self.unavailable: list[str] = (
            [] if self.labels_available else [f"eval/{m}" for m in CLASSIFIER_METRICS]
        )
        self.unavailable_reason: str = info.get("unavailable_reason", "")
        self._reference: dict[str, float] | None = None
        if self.unavailable:
            log.warning("metrics unavailable: %s (%s)", ", ".join(self.unavailable), self.unavailable_reason)
        self._judge_classifier(_min_accuracy(scoring))

    def _judge_classifier(self, min_accuracy: float) -> None:
        """Sets `classifier_reliable`, `unreliable` and `unreliable_reason`: a classifier below
        eval.classifier.min_accuracy on clips it never fitted or early-stopped on is unfit, and the
        metrics computed from it (IS, FD, coverage, entropy) are unreliable. Warns once per cache."""
        self.min_accuracy = float(min_accuracy)
        acc = self.classifier_accuracy
        reliable = self.labels_available and acc is not None and acc >= self.min_accuracy
        self.classifier_reliable: bool = bool(reliable)
        self.unreliable: list[str] = []
        self.unreliable_reason = ""
        if self.labels_available and not self.classifier_reliable:
            self.unreliable = [f"eval/{m}" for m in CLASSIFIER_METRICS]
            if acc is None:
                self.unreliable_reason = "its accuracy could not be measured (no labelled held-out clips)"
            else:
                low, high = self.classifier_accuracy_interval or (float("nan"), float("nan"))
                self.unreliable_reason = (
                    f"held-out accuracy {acc:.3f} (95 % interval {low:.3f}-{high:.3f}, "
                    f"{self.info.get('accuracy_n')} clips: {self.info.get('accuracy_split')}) is below "
                    f"eval.classifier.min_accuracy={self.min_accuracy:g}"
                )
            key = json.dumps([self.info.get(k) for k in _ACCURACY_KEYS], default=str)
            if key not in _WARNED_UNFIT:
                _WARNED_UNFIT.add(key)
                log.warning(
                    "quality classifier unfit: %s. These metrics are unreliable: %s. Fix: more labelled "
                    "clips per class, or check that the labels are what the audio distinguishes.",
                    self.unreliable_reason,
                    ", ".join(self.unreliable),
                )
        self.info.update(
            classifier_reliable=self.classifier_reliable,
            min_accuracy=self.min_accuracy,
            unreliable=list(self.unreliable),
            unreliable_reason=self.unreliable_reason,
        )

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
        return cls._load(target, mel, int(cfg.get("num_samples", 256)), seed, cfg)

    @classmethod
    def _load(
        cls, target: Path, mel: MelFeatures, num_samples: int, seed: int, scoring: Mapping[str, Any]
    ) -> Evaluator:
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
            scoring,
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

    @property
    def num_scored(self) -> int:
        """How many clips each figure is computed on, generated and held-out real alike:
        min(eval.num_samples, held-out clips). Fréchet distances carry a 1/N bias and NDB's test power
        grows with N, so a generated set is scored at the reference's N, never more."""
        return max(2, min(self.num_samples, len(self.held_out.spectral)))

    def score(self, waveforms: np.ndarray, prefix: str = "eval/") -> dict[str, float]:
        """`<prefix><metric>` for clips [N, slice_len] (or [N, slice_len, 1]), N >= 2: generated clips
        (`eval/`) or real ones scored the same way (`eval/reference/`). Pass `num_scored` clips."""
        if len(waveforms) < 2:
            raise ValueError(f"score() needs at least 2 clips, got {len(waveforms)}")
        if len(waveforms) != self.num_scored:
            log.warning(
                "scoring %d clips where the reference has %d: figures at different N are biased against "
                "each other (pass Evaluator.num_scored clips)",
                len(waveforms),
                self.num_scored,
            )
        return self.score_features(self.features(waveforms), prefix)

    def score_features(self, feats: RealFeatures, prefix: str = "eval/") -> dict[str, float]:
        """Every metric of one feature set, with bootstrap 95 % intervals (`<name>_ci_low/_ci_high`)
        for the Fréchet distance, Inception Score, NDB/K and class coverage, over resamples of the
        scored clips (the training side is fixed), and the IS's standard deviation over splits."""
        with quality.one_thread():
            bins, train_bins = self.kmeans.predict(feats.spectral), self._train_bin_counts
            mel_fd = self._mel_stats_train.frechet_distance
            stats: dict[str, Any] = {
                "mel_frechet_distance": lambda idx: mel_fd(feats.mel_stats[idx]),
                "ndb_over_k": lambda idx: quality.ndb_from_bins(train_bins, bins[idx], NDB_ALPHA)[0],
            }
            all_rows = np.arange(len(feats.spectral))
            out = {name: float(fn(all_rows)) for name, fn in stats.items()}
            out["ndb_js"] = quality.ndb_from_bins(train_bins, bins, NDB_ALPHA)[1]
            out.update(quality.nearest_neighbour_distances(feats.spectral, self.train.spectral))
            with_interval = ["ndb_over_k"]
            if self.labels_available and feats.probs is not None and self._embed_train is not None:
                probs, embeddings = feats.probs, feats.embeddings
                # Splits of at least MIN_CLIPS_PER_IS_SPLIT clips: IS of a small split is biased low
                # (its marginal p(y) misses classes), so 256 clips give 5 splits, not 10 of 25.
                splits = max(1, min(self.is_splits, len(probs) // MIN_CLIPS_PER_IS_SPLIT))
                stats["inception_score"] = lambda idx: quality.inception_score(probs[idx], splits)
                stats["frechet_distance"] = lambda idx: self._embed_train.frechet_distance(embeddings[idx])
                stats["class_coverage"] = lambda idx: quality.class_coverage(probs[idx])[0]
                for name in ("inception_score", "frechet_distance", "class_coverage"):
                    out[name] = float(stats[name](all_rows))
                out["inception_score_std"] = quality.inception_score_std(probs, splits)
                out["class_entropy"] = quality.class_coverage(probs)[1]
                with_interval += ["frechet_distance", "inception_score", "class_coverage"]
            if self.n_bootstrap > 0:
                for name in with_interval:
                    low, high = bootstrap_rows(
                        stats[name], len(all_rows), self.n_bootstrap, seed=self.seed, bias_correct=True
                    )
                    out[f"{name}_ci_low"], out[f"{name}_ci_high"] = low, high
        names = [n for n in METRICS if n in out] + [n for n in out if n not in METRICS]
        result = {f"{prefix}{name}": float(out[name]) for name in names}
        result[f"{prefix}num_samples"] = float(len(all_rows))
        return result

    def reference_rows(self) -> np.ndarray:
        """The held-out clips the reference scores: a seeded subset of `num_scored`, as rows of the
        held-out set (the same clips for the raw and the round-trip reference)."""
        n_held = len(self.held_out.spectral)
        return np.sort(np.random.default_rng(self.seed).permutation(n_held)[: self.num_scored])

    def held_out_waveforms(self, store: DataStore) -> np.ndarray:
        """The reference's held-out real clips as waveforms, in `reference_rows` order."""
        rows = self.info.get("held_out_rows")
        if rows is None:
            raise DataError(
                f"the metrics cache of {store.root} predates held-out row indices; delete its "
                "classifier/ folder to rebuild it"
            )
        return store.waveforms(None)[np.asarray(rows)[self.reference_rows()]]

    def reference(self) -> dict[str, float]:
        """The same metrics for held-out real clips, as `eval/reference/<metric>`: the ceiling a
        generator is read against, on the raw clips (a spectrogram model's reachable ceiling is the
        round trip of these clips through its representation: `monitor.QualityMonitor.reference`)."""
        if self._reference is None:
            held_out = self.held_out.subset(self.reference_rows())
            self._reference = self.score_features(held_out, "eval/reference/")
            if self.classifier_accuracy is not None:
                self._reference["eval/reference/classifier_accuracy"] = float(self.classifier_accuracy)
                if self.classifier_accuracy_interval is not None:
                    low, high = self.classifier_accuracy_interval
                    self._reference["eval/reference/classifier_accuracy_ci_low"] = low
                    self._reference["eval/reference/classifier_accuracy_ci_high"] = high
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
            "classifier_accuracy_ci_low",
            "classifier_accuracy_ci_high",
            "accuracy_n",
            "accuracy_split",
            "classifier_reliable",
            "min_accuracy",
            "unreliable",
            "unreliable_reason",
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
    digest = cache_key(spec, 12)
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


@dataclass
class ClassifierRows:
    """Store rows for the quality classifier. `fit` and `stop` (early stopping) never overlap, and no
    `accuracy` row is in either; `cross_validated` rows (a subset of `fit`) are scored out of fold,
    each by a model that neither fitted nor early-stopped on it, before the final model fits them."""

    fit: np.ndarray
    stop: np.ndarray
    accuracy: np.ndarray
    cross_validated: np.ndarray
    description: str


def _groups(store: DataStore, n: int) -> np.ndarray:
    """Recording of each row: audio_dir names a file's slices `<file>#<i>`, so slices of one recording
    stay in one cross-validation fold (the store keeps only the note id)."""
    try:
        ids = np.asarray(store.column("note_id", None)).astype(str)
    except Exception:  # a store without note ids: every row its own recording
        return np.arange(n).astype(str)
    return np.array([i.rsplit("#", 1)[0] for i in ids], dtype=object)


def _classifier_rows(
    splits: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    train_idx: np.ndarray,
    held_idx: np.ndarray,
    held_desc: str,
    settings,
    seed: int,
) -> ClassifierRows:
    """Which labelled rows fit, early-stop and measure the classifier; only training-split rows are fitted
    on, so the held-out clips stay unseen for the reference metrics.

    * A small training split (<= classifier.cv_max_clips labelled clips): k-fold cross-validation on it
      plus the final model (trained on all of it for the folds' median best epoch, no early stopping) on
      every labelled held-out clip. A held-out split of a small data set is a dozen clips: too few for an
      accuracy worth reporting (0.5 on 12 clips is anything from 0.25 to 0.75).
    * Otherwise, with a test split: fit on train, early-stop on valid, accuracy on test.
    * Otherwise: early-stop on ~10 % of train (by recording, stratified), accuracy on the held-out clips.
    """
    from wavegan.metrics.classifier import fold_assignment

    empty = np.zeros(0, np.int64)
    fit = train_idx[y[train_idx] >= 0]
    held = held_idx[y[held_idx] >= 0]
    folds = int(settings.cv_folds)
    if folds >= 3 and 0 < len(fit) <= int(settings.cv_max_clips) and len(fit) >= 2 * folds:
        desc = (
            f"{folds}-fold cross-validation on {len(fit)} training clips + {len(held)} held-out clips "
            f"({held_desc})"
        )
        return ClassifierRows(fit, empty, held, fit, desc)
    test = held[splits[held] == "test"]
    valid = held[splits[held] != "test"]
    if len(test) and len(valid):
        desc = f"test split ({len(test)} clips; early stopping on valid)"
        return ClassifierRows(fit, valid, test, empty, desc)
    n_parts = max(2, int(round(1 / _CARVE_FRACTION)))
    if len(fit) < 2 * n_parts:  # too few to carve: train without early stopping
        return ClassifierRows(fit, empty, held, empty, f"{held_desc}; no early stopping")
    part = fold_assignment(y[fit], groups[fit], n_parts, seed) == 0
    desc = f"{held_desc} ({len(held)} clips; early stopping on {int(part.sum())} clips carved from train)"
    return ClassifierRows(fit[~part], fit[part], held, empty, desc)


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
        "held_out_rows": [int(i) for i in held_idx],
        "classifier_accuracy": None,
        "accuracy_split": None,
        "mel": mel.__dict__,
        "classifier_settings": settings.__dict__,
        "ndb_k": ndb_k,
        "seed": seed,
    }

    if not reason:
        from wavegan.metrics.classifier import cross_validate, predict, train_classifier
        from wavegan.metrics.intervals import wilson_interval

        t0 = time.perf_counter()
        x = normalised[..., None]
        groups = _groups(store, len(y))
        rows = _classifier_rows(splits, y, groups, train_idx, held_idx, held_desc, settings, seed)
        if not len(rows.cross_validated):  # a large set: the plain CNN does best (for_large_data)
            settings = settings.for_large_data()
        # per accuracy row, right or wrong, as predicted by a model that never fitted or stopped on it
        correct: list[np.ndarray] = []
        epochs, cv_info = None, None
        if len(rows.cross_validated):
            cv = cross_validate(
                x[rows.cross_validated], y[rows.cross_validated], groups[rows.cross_validated],
                len(class_names), settings, seed,
            )  # fmt: skip
            correct.append(cv.predicted == y[rows.cross_validated])
            # the final model sees no early-stopping rows: it trains for the folds' median best epoch
            epochs = cv.epochs
            cv_info = {"folds": int(settings.cv_folds), "best_epochs": cv.best_epochs, "seconds": cv.seconds}
            timings["classifier_cv_s"] = cv.seconds
        model, report = train_classifier(
            x[rows.fit], y[rows.fit], x[rows.stop], y[rows.stop], len(class_names), settings, seed, epochs
        )
        timings["classifier_train_s"] = report.seconds
        train.embeddings, train.probs = predict(model, x[train_idx])
        held_out.embeddings, held_out.probs = predict(model, x[held_idx])
        if len(rows.accuracy):
            _, probs = predict(model, x[rows.accuracy])
            correct.append(np.argmax(probs, axis=1) == y[rows.accuracy])
        k = int(sum(int(c.sum()) for c in correct))
        n = int(sum(len(c) for c in correct))
        if n:
            low, high = wilson_interval(k, n)
            info.update(
                classifier_accuracy=k / n,
                classifier_accuracy_ci_low=low,
                classifier_accuracy_ci_high=high,
                accuracy_n=n,
                accuracy_split=rows.description,
            )
        info["classifier_rows"] = {
            "fit": int(len(rows.fit)),
            "early_stopping": int(len(rows.stop)),
            "accuracy": int(len(rows.accuracy)),
            "cross_validated": int(len(rows.cross_validated)),
        }
        info["classifier_training"] = {
            "epochs_run": report.epochs_run,
            "best_epoch": report.best_epoch,
            "early_stopping_accuracy": report.valid_accuracy,
            "cross_validation": cv_info,
            "history": report.history,
        }
        model.save(folder / "classifier.keras")
        timings["classifier_s"] = time.perf_counter() - t0
        log.info(
            "quality classifier: %d classes, held-out accuracy %s [%s, %s] on %s clips (%s), %.1f s",
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
