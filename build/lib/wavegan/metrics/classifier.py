"""A small CNN on standardised log-mel spectrograms, trained on the data set's own labels.

No pretrained audio network can be downloaded here, so, as WaveGAN (an SC09 digit classifier) and
GANSynth (an NSynth pitch classifier) did, the Inception Score and the Fréchet distance use a
classifier trained on the training split of the data set being modelled. Its penultimate layer
(`embedding_dim` ReLU units) is the feature space of the Fréchet distance.

Sized for 2 CPU cores: four stride-2 3x3 convolutions (16-32-64-64 channels by default, each followed
by batch normalisation) then global average pooling, ~6 MFLOP per 1 s clip. What makes it fit for the
small labelled folders researchers bring (100-500 clips, 5-20 labels; benchmarks/classifier_small_data.py
measures each piece on spoken words):

* augmentation of the log-mels (a random time shift: a word or note does not start at the same frame in
  every recording; SpecAugment-style time and frequency masks, Park et al. 2019), so a few examples per
  class cover more than their exact frames;
* batch normalisation, dropout before the logits and AdamW's weight decay, as regularisers;
* an epoch of at least `min_clips_per_epoch` (augmented) clips, so early-stopping patience means the same
  amount of training on 120 clips as on 2000;
* `cross_validate`: k-fold accuracy when the held-out split is too small to measure it.

Training uses `Model.fit` with `EarlyStopping(restore_best_weights=True)` on the early-stopping rows'
accuracy, ties broken by their lower loss (a small callback folds both into one monitored figure), and
earlier epochs kept on exact ties (EarlyStopping only moves on a strict improvement).

Seeding: every initialiser, dropout layer, the shuffling and the augmentation get explicit seeds derived
from `seed`; the global Keras/TensorFlow/NumPy seeds are not touched (keras.utils.set_random_seed would
reset the random state of a training run that builds this classifier in its own process, so a run
would train differently depending on whether the classifier was already cached).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

log = logging.getLogger(__name__)

__all__ = [
    "ClassifierSettings",
    "CrossValidation",
    "build_classifier",
    "cross_validate",
    "predict",
    "train_classifier",
]


@dataclass(frozen=True)
class ClassifierSettings:
    epochs: int = 40
    patience: int = 8
    batch_size: int = 32
    learning_rate: float = 1e-2
    weight_decay: float = 1e-3
    embedding_dim: int = 128
    channels: tuple[int, ...] = (16, 32, 64, 64)
    batch_norm: bool = True
    dropout: float = 0.3
    min_clips_per_epoch: int = 512
    augment: bool = True
    time_shift: float = 0.15  # at most this fraction of the frames, either way
    time_masks: int = 2
    mask_frames: int = 6
    freq_masks: int = 2
    mask_bands: int = 6
    cv_folds: int = 5
    cv_max_clips: int = 600

    def for_large_data(self) -> ClassifierSettings:
        """The settings for a training split above `cv_max_clips`: the plain CNN without augmentation,
        batch norm or dropout (Adam 5e-3, batch 64, early stopping after 3 epochs). Measured on the
        built-in notes: 0.995 held-out accuracy, against 0.962 and a 2.8x slower build with the
        small-data settings, which exist for the 100-500-clip folders where augmentation is what helps
        (benchmarks/classifier_small_data.py)."""
        from dataclasses import replace

        return replace(
            self, epochs=20, patience=3, batch_size=64, learning_rate=5e-3, weight_decay=0.0,
            batch_norm=False, dropout=0.0, min_clips_per_epoch=0, augment=False,
        )  # fmt: skip

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> ClassifierSettings:
        cfg = dict(cfg or {})
        known = {k: cfg[k] for k in cls.__dataclass_fields__ if k in cfg}
        if "channels" in known:
            known["channels"] = tuple(int(c) for c in known["channels"])
        return cls(**known)


@dataclass
class TrainingReport:
    epochs_run: int
    best_epoch: int
    valid_accuracy: float | None
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def build_classifier(
    input_shape: Sequence[int], num_classes: int, settings: ClassifierSettings, seed: int = 0
) -> keras.Model:
    """x [B, frames, n_mels, 1] -> (embedding [B, embedding_dim], logits [B, num_classes])."""
    init = iter(range(seed * 100, seed * 100 + 100))  # a distinct explicit seed per initialiser

    def kernel() -> keras.initializers.Initializer:
        return keras.initializers.HeNormal(seed=next(init))

    # float32 whatever the global policy: a mixed-precision training run that builds the cache must not
    # give it a float16 classifier that other runs would then share.
    f32 = {"dtype": "float32"}
    x_in = keras.Input(tuple(input_shape), name="log_mel", dtype="float32")
    x = x_in
    for i, channels in enumerate(settings.channels):
        x = keras.layers.Conv2D(
            channels,
            3,
            strides=2,
            padding="same",
            use_bias=not settings.batch_norm,
            kernel_initializer=kernel(),
            name=f"conv_{i}",
            **f32,
        )(x)
        if settings.batch_norm:
            # momentum 0.9: a small data set trains a few hundred steps; the moving statistics must settle
            x = keras.layers.BatchNormalization(momentum=0.9, name=f"conv_{i}_bn", **f32)(x)
        x = keras.layers.ReLU(name=f"conv_{i}_relu", **f32)(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool", **f32)(x)
    embedding = keras.layers.Dense(
        settings.embedding_dim, activation="relu", kernel_initializer=kernel(), name="embedding", **f32
    )(x)
    h = embedding
    if settings.dropout > 0:
        h = keras.layers.Dropout(settings.dropout, seed=next(init), name="dropout", **f32)(h)
    logits = keras.layers.Dense(
        num_classes,
        kernel_initializer=keras.initializers.GlorotUniform(seed=next(init)),
        name="logits",
        **f32,
    )(h)
    return keras.Model(x_in, [embedding, logits], name="quality_classifier")


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, class probabilities) as float32 numpy arrays, in batches (inference mode)."""
    embeddings, probs = [], []
    for start in range(0, len(x), batch_size):
        emb, logits = model(tf.convert_to_tensor(x[start : start + batch_size]), training=False)
        embeddings.append(np.asarray(emb))
        probs.append(np.asarray(tf.nn.softmax(logits)))
    if not embeddings:
        width = model.get_layer("embedding").units
        return np.zeros((0, width), np.float32), np.zeros((0, model.output[1].shape[-1]), np.float32)
    return np.concatenate(embeddings), np.concatenate(probs)


# -- training ---------------------------------------------------------------------------------------


def augment(x: np.ndarray, settings: ClassifierSettings, rng: np.random.Generator) -> np.ndarray:
    """Random time shift (edge frames repeated) and SpecAugment masks, on standardised log-mels
    [B, frames, n_mels, 1]; masked cells are set to 0, the training set's per-band mean."""
    x = np.array(x, dtype=np.float32, copy=True)
    batch, frames, bands = x.shape[:3]
    max_shift = int(round(settings.time_shift * frames))
    if max_shift > 0:
        shifts = rng.integers(-max_shift, max_shift + 1, batch)
        src = np.clip(np.arange(frames)[None, :] - shifts[:, None], 0, frames - 1)
        x = x[np.arange(batch)[:, None], src]
    for count, width, axis_len, axis in (
        (settings.time_masks, settings.mask_frames, frames, 1),
        (settings.freq_masks, settings.mask_bands, bands, 2),
    ):
        for _ in range(count):
            w = rng.integers(0, min(width, axis_len) + 1, batch)
            start = rng.integers(0, np.maximum(axis_len - w, 0) + 1)
            pos = np.arange(axis_len)[None, :]
            mask = (pos >= start[:, None]) & (pos < (start + w)[:, None])  # [B, axis_len]
            shape = [batch, 1, 1, 1]
            shape[axis] = axis_len
            x = np.where(mask.reshape(shape), np.float32(0.0), x)
    return x


class _Batches(keras.utils.PyDataset):
    """Seeded shuffled (and augmented) batches. An epoch is at least `min_clips_per_epoch` clips: a
    small set is repeated (each pass newly shuffled and augmented). Each batch's randomness is a pure
    function of (seed, epoch, batch), so prefetching or re-reading a batch cannot change training."""

    def __init__(self, x: np.ndarray, y: np.ndarray, settings: ClassifierSettings, seed: int) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self.x, self.y, self.settings, self.seed = x, y.astype(np.int32), settings, seed
        self.batch_size = min(settings.batch_size, len(x))
        repeats = max(1, math.ceil(settings.min_clips_per_epoch / len(x)))
        self.steps = math.ceil(repeats * len(x) / self.batch_size)
        self.repeats, self.epoch, self._order = repeats, 0, None

    def __len__(self) -> int:
        return self.steps

    def _epoch_order(self) -> np.ndarray:
        if self._order is None or self._order[0] != self.epoch:
            rng = np.random.default_rng([self.seed, self.epoch])
            order = np.concatenate([rng.permutation(len(self.x)) for _ in range(self.repeats)])
            self._order = (self.epoch, order)
        return self._order[1]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self._epoch_order()[index * self.batch_size : (index + 1) * self.batch_size]
        x = self.x[idx]
        if self.settings.augment:
            x = augment(x, self.settings, np.random.default_rng([self.seed, self.epoch, index, 1]))
        return x, self.y[idx]

    def on_epoch_end(self) -> None:
        self.epoch += 1


class _StoppingScore(keras.callbacks.Callback):
    """Adds `val_score` = accuracy + a bounded function of the loss smaller than one example's worth of
    accuracy, so EarlyStopping ranks epochs by accuracy and breaks accuracy ties by the lower loss."""

    def __init__(self, n_stop: int) -> None:
        super().__init__()
        self.scale = 1.0 / (n_stop + 1)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None and "val_accuracy" in logs:
            logs["val_score"] = float(logs["val_accuracy"]) + self.scale / (1.0 + float(logs["val_loss"]))


def train_classifier(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    num_classes: int,
    settings: ClassifierSettings,
    seed: int = 0,
    epochs: int | None = None,
) -> tuple[keras.Model, TrainingReport]:
    """AdamW on cross-entropy with early stopping on the (x_valid, y_valid) rows' accuracy (ties: lower
    loss), keeping the best epoch's weights. Without such rows it trains for `epochs` (default
    `settings.epochs`) and keeps the last weights.
    """
    started = time.perf_counter()
    model = build_classifier(x_train.shape[1:], num_classes, settings, seed)
    trainer = keras.Model(model.input, model.outputs[1], name="quality_classifier_training")
    trainer.compile(
        optimizer=keras.optimizers.AdamW(settings.learning_rate, weight_decay=settings.weight_decay),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    has_valid = len(x_valid) > 0
    callbacks: list[keras.callbacks.Callback] = []
    validation = None
    if has_valid:
        validation = (np.asarray(x_valid, np.float32), np.asarray(y_valid, np.int32))
        callbacks = [
            _StoppingScore(len(x_valid)),
            keras.callbacks.EarlyStopping(
                monitor="val_score", mode="max", patience=settings.patience, restore_best_weights=True
            ),
        ]
    batches = _Batches(np.asarray(x_train, np.float32), np.asarray(y_train), settings, seed)
    with warnings.catch_warnings():  # "your input ran out of data" and PyDataset chatter: harmless here
        warnings.simplefilter("ignore", UserWarning)
        fit = trainer.fit(
            batches,
            epochs=int(epochs or settings.epochs),
            validation_data=validation,
            callbacks=callbacks,
            shuffle=False,  # _Batches shuffles with its own seed; Keras would use Python's global RNG
            verbose=0,
        )
    keys = list(fit.history)
    history = [
        {"epoch": e + 1} | {k.replace("val_", "valid_"): float(fit.history[k][e]) for k in keys}
        for e in range(len(fit.history[keys[0]]) if keys else 0)
    ]
    best_epoch, best_acc = len(history), None
    if has_valid and history:
        scores = [h["valid_score"] for h in history]
        best_epoch = int(np.argmax(scores)) + 1  # argmax: the first of equal scores, as EarlyStopping
        best_acc = history[best_epoch - 1]["valid_accuracy"]
    report = TrainingReport(
        epochs_run=len(history),
        best_epoch=best_epoch,
        valid_accuracy=best_acc,
        seconds=time.perf_counter() - started,
        history=history,
    )
    return model, report


# -- cross-validation -------------------------------------------------------------------------------


_STOP_PARTS = 8  # each fold's early-stopping rows: one eighth of its non-accuracy rows


@dataclass
class CrossValidation:
    """Out-of-fold predictions: each row predicted by a model that neither fitted nor early-stopped on it."""

    folds: np.ndarray  # [N] the fold each row was predicted in
    predicted: np.ndarray  # [N] predicted class
    best_epochs: list[int]
    seconds: float

    @property
    def epochs(self) -> int:
        """Epochs for a final model on all rows: the folds' median best epoch."""
        return max(1, int(round(float(np.median(self.best_epochs)))))


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
    num_classes: int,
    settings: ClassifierSettings,
    seed: int = 0,
) -> CrossValidation:
    """k-fold (settings.cv_folds) out-of-fold predictions. Fold i is predicted by a model fitted on the
    other folds less a stratified ~1/8 of them (by recording), on which it early-stops: accuracy,
    stopping and fitting rows are disjoint. Carving the stopping rows rather than giving them a whole
    fold leaves each fold's model ~70 % of the clips to fit instead of 60 %: on 140 clips that matters."""
    started = time.perf_counter()
    k = int(settings.cv_folds)
    if k < 3:
        raise ValueError(f"cross-validation needs cv_folds >= 3 (fit, stop and accuracy folds), got {k}")
    folds = fold_assignment(y, groups, k, seed)
    predicted = np.full(len(y), -1, np.int64)
    best_epochs = []
    for i in range(k):
        acc = folds == i
        rest = np.flatnonzero(~acc)
        inner = fold_assignment(y[rest], groups[rest], _STOP_PARTS, seed + i + 1) == 0
        stop = np.zeros(len(y), bool)
        stop[rest[inner]] = True
        fit = ~(acc | stop)
        model, report = train_classifier(
            x[fit], y[fit], x[stop], y[stop], num_classes, settings, seed=seed * 1000 + i + 1
        )
        _, probs = predict(model, x[acc])
        predicted[acc] = np.argmax(probs, axis=1)
        best_epochs.append(report.best_epoch)
        log.debug("cross-validation fold %d: best epoch %d", i, report.best_epoch)
        del model
    return CrossValidation(folds, predicted, best_epochs, time.perf_counter() - started)
