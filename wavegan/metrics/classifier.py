"""The quality classifier trained on the data set's own labels: its settings, which model a data set gets,
prediction, and k-fold cross-validation.

No pretrained audio network can be downloaded here, so, as WaveGAN (an SC09 digit classifier) and
GANSynth (an NSynth pitch classifier) did, the Inception Score, class coverage and the Fréchet distance
use a classifier trained on the training split of the data set being modelled. Two models share one
interface, a Keras model from standardised log-mels [B, frames, n_mels, 1] to (embedding, logits), so the
cache, `predict` and the evaluator treat them alike:

* a small labelled folder (at most `small_data_max_clips` labelled training clips, the common case:
  100-500 clips, 5-20 labels) gets shrinkage linear discriminant analysis on a fixed summary of each clip
  (discriminant.py); its embedding is the discriminant space;
* a larger data set gets a small CNN (cnn.py); its embedding is the penultimate layer.

Why two: benchmarks/classifier_small_data.py measured, under 5-fold cross-validation, the discriminant
model at 0.96 on 140 spoken words (10 labels) and 0.93 on 165 built-in notes (11 families), where the CNN
reaches 0.27 and 0.72 (the augmented CNN this replaced: 0.71-0.79 on the words); the CNN reaches 1.0 on
the 2048 built-in notes' test clips. README, "How the classifier is trained", has the figures.

Importing this module does not import TensorFlow (an unlabelled store never needs it).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

__all__ = [
    "ClassifierSettings",
    "CnnSettings",
    "CrossValidation",
    "SummarySettings",
    "cross_validate",
    "fold_assignment",
    "predict",
]


@dataclass(frozen=True)
class SummarySettings:
    """The small-data model's clip summary (discriminant.ClipSummary)."""

    patch_frames: int = 32  # the onset patch: this many aligned frames from the start (0.5 s at hop 256)
    patch_pool: int = 2  # averaged over 2 x 2 cells of (frames x mel bands)
    n_mfcc: int = 20  # cepstral coefficients (DCT-II of each frame's log-mel) summarised over time


@dataclass(frozen=True)
class CnnSettings:
    """The CNN for larger data sets (cnn.py)."""

    epochs: int = 20
    patience: int = 3
    batch_size: int = 64
    learning_rate: float = 5e-3
    weight_decay: float = 0.0
    embedding_dim: int = 128
    channels: tuple[int, ...] = (16, 32, 64, 64)


@dataclass(frozen=True)
class ClassifierSettings:
    cv_folds: int = 5  # small data: accuracy by k-fold cross-validation on the training split (0: off)
    small_data_max_clips: int = 600  # labelled training clips up to which a data set is "small"
    summary: SummarySettings = field(default_factory=SummarySettings)
    cnn: CnnSettings = field(default_factory=CnnSettings)

    def is_small(self, training_clips: int) -> bool:
        return 0 < training_clips <= int(self.small_data_max_clips)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> ClassifierSettings:
        """From `eval.classifier` (unknown keys, e.g. min_accuracy, are not the classifier's: ignored)."""
        cfg = dict(cfg or {})
        top = {f.name: cfg[f.name] for f in fields(cls) if f.name in cfg and f.name not in ("summary", "cnn")}
        summary = _pick(SummarySettings, cfg.get("summary"))
        cnn = _pick(CnnSettings, cfg.get("cnn"))
        if "channels" in cnn:
            cnn["channels"] = tuple(int(c) for c in cnn["channels"])
        return cls(**top, summary=SummarySettings(**summary), cnn=CnnSettings(**cnn))


def _pick(kind: type, cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    cfg = dict(cfg or {})
    return {f.name: cfg[f.name] for f in fields(kind) if f.name in cfg}


def predict(model, x: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, class probabilities) as float32 numpy arrays, in batches (inference mode)."""
    import tensorflow as tf

    embeddings, probs = [], []
    for start in range(0, len(x), batch_size):
        emb, logits = model(tf.convert_to_tensor(x[start : start + batch_size]), training=False)
        embeddings.append(np.asarray(emb))
        probs.append(np.asarray(tf.nn.softmax(logits)))
    if not embeddings:
        width = model.get_layer("embedding").units
        return np.zeros((0, width), np.float32), np.zeros((0, model.output[1].shape[-1]), np.float32)
    return np.concatenate(embeddings), np.concatenate(probs)


# -- cross-validation -------------------------------------------------------------------------------


@dataclass
class CrossValidation:
    """Out-of-fold predictions: each row predicted by a model that was not fitted on it."""

    folds: np.ndarray  # [N] the fold each row was predicted in
    predicted: np.ndarray  # [N] predicted class
    seconds: float


def fold_assignment(y: np.ndarray, groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """[N] fold of each row: stratified by class, clips of one recording (group) in one fold."""
    from sklearn.model_selection import StratifiedGroupKFold

    folds = np.full(len(y), -1, np.int64)
    with warnings.catch_warnings():  # a class with fewer than k examples: sklearn warns, folds stay valid
        warnings.simplefilter("ignore", UserWarning)
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        for i, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y, groups)):
            folds[test] = i
    return folds


def cross_validate(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    fit: Callable[[np.ndarray, np.ndarray], Any],
    k: int,
    seed: int = 0,
) -> CrossValidation:
    """k-fold out-of-fold predictions: fold i is predicted by `fit(x, y)` of the other folds (a model
    without early stopping, so no row of fold i fitted or stopped it)."""
    started = time.perf_counter()
    if k < 2:
        raise ValueError(f"cross-validation needs cv_folds >= 2, got {k}")
    folds = fold_assignment(y, groups, k, seed)
    predicted = np.full(len(y), -1, np.int64)
    for i in range(k):
        held = folds == i
        _, probs = predict(fit(x[~held], y[~held]), x[held])
        predicted[held] = np.argmax(probs, axis=1)
    return CrossValidation(folds, predicted, time.perf_counter() - started)
