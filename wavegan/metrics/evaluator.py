"""Scores generated audio against a data store: quality, diversity, and the held-out-real reference.

    evaluator = Evaluator.for_store(store, cfg.eval)   # trains or loads the cached classifier
    evaluator.score(waveforms)    # {"eval/frechet_distance": ..., ...}
    evaluator.reference()         # the same for held-out real clips: {"eval/reference/frechet_distance": ...}

Everything that depends only on the data set (the quality classifier, NDB's k-means, the features of
every real clip) is computed once per store and cached next to it (reference_cache.py); the classifier
is fitted and its accuracy measured as classifier_fit.py says. A score() then costs one log-mel pass, one
classifier forward pass and a few small matrix products for the generated clips alone.

Metrics (all against the training split; see quality.py for each definition):

    eval/inception_score        IS of the classifier's probabilities                    higher better
    eval/frechet_distance       FD of the classifier's embeddings (classifier.py)       lower better
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
from collections.abc import Mapping
from typing import Any

import numpy as np

from wavegan.data.store import DataStore
from wavegan.errors import DataError
from wavegan.metrics import quality
from wavegan.metrics.classifier import ClassifierSettings
from wavegan.metrics.features import BandNormaliser, MelFeatures, mel_statistics, spectral_vectors
from wavegan.metrics.intervals import bootstrap_rows
from wavegan.metrics.reference_cache import RealFeatures, build_cache, cache_dir, read_cache
from wavegan.representations.base import as_dict

log = logging.getLogger(__name__)
# for_store builds through this name (tests replace it here; benchmarks/eval_budget.py calls it)
_build_cache = build_cache

__all__ = ["CLASSIFIER_METRICS", "Evaluator", "METRICS"]

CLASSIFIER_METRICS = ("inception_score", "frechet_distance", "class_coverage", "class_entropy")
LABEL_FREE_METRICS = ("mel_frechet_distance", "ndb_over_k", "ndb_js", "nn_to_train", "nn_to_generated")
METRICS = CLASSIFIER_METRICS + LABEL_FREE_METRICS
NDB_ALPHA = 0.05
MIN_CLIPS_PER_IS_SPLIT = 50
# A classifier below this accuracy on clips it never fitted or early-stopped on is unfit: its IS, FD,
# coverage and entropy are marked unreliable (eval.classifier.min_accuracy overrides it).
DEFAULT_MIN_ACCURACY = 0.8
_ACCURACY_KEYS = ("class_names", "classifier_accuracy", "accuracy_n", "accuracy_split", "build_seconds")
_WARNED_UNFIT: set[str] = set()  # caches already warned about in this process: one warning each


def _min_accuracy(eval_cfg: Mapping[str, Any] | None) -> float:
    classifier = as_dict((eval_cfg or {}).get("classifier"))
    value = classifier.get("min_accuracy")
    return DEFAULT_MIN_ACCURACY if value is None else float(value)


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
        cfg = as_dict(eval_cfg)
        mel = MelFeatures.from_config(
            as_dict(cfg.get("features")), int(store.summary["sample_rate"]), int(store.summary["slice_len"])
        )
        settings = ClassifierSettings.from_config(as_dict(cfg.get("classifier")))
        ndb_k = int(cfg.get("ndb_k", 50))
        target = cache_dir(store, mel, settings, ndb_k, seed)
        if not (target / "info.json").is_file():
            _build_cache(store, target, mel, settings, ndb_k, seed)
        cached = read_cache(target)
        return cls(
            mel,
            cached.normaliser,
            cached.train,
            cached.held_out,
            cached.kmeans,
            cached.info,
            cached.classifier,
            int(cfg.get("num_samples", 256)),
            seed,
            cfg,
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
            "classifier_model",
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
