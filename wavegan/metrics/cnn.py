"""The quality classifier for larger labelled data sets: a small CNN on standardised log-mel spectrograms.

Sized for 2 CPU cores: four stride-2 3x3 convolutions (16-32-64-64 channels by default) then global
average pooling, ~6 MFLOP per 1 s clip; its penultimate layer (`embedding_dim` ReLU units) is the feature
space of the Fréchet distance. On the 2048 built-in notes it reaches 1.0 on the 208 test clips in ~20 s.
Small folders get the discriminant model instead (classifier.py says why).

Training uses `Model.fit` with `EarlyStopping(restore_best_weights=True)` on the early-stopping rows'
accuracy, ties broken by their lower loss (a small callback folds both into one monitored figure), and
earlier epochs kept on exact ties (EarlyStopping only moves on a strict improvement).

Seeding: every initialiser and the shuffling get explicit seeds derived from `seed`; the global
Keras/TensorFlow/NumPy seeds are not touched (keras.utils.set_random_seed would reset the random state of
a training run that builds this classifier in its own process, so a run would train differently
depending on whether the classifier was already cached).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import keras
import numpy as np

from wavegan.metrics.classifier import CnnSettings

__all__ = ["TrainingReport", "build_cnn", "train_cnn"]


@dataclass
class TrainingReport:
    epochs_run: int
    best_epoch: int
    valid_accuracy: float | None
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def build_cnn(
    input_shape: Sequence[int], num_classes: int, settings: CnnSettings, seed: int = 0
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
            channels, 3, strides=2, padding="same", kernel_initializer=kernel(), name=f"conv_{i}", **f32
        )(x)
        x = keras.layers.ReLU(name=f"conv_{i}_relu", **f32)(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool", **f32)(x)
    embedding = keras.layers.Dense(
        settings.embedding_dim, activation="relu", kernel_initializer=kernel(), name="embedding", **f32
    )(x)
    logits = keras.layers.Dense(
        num_classes,
        kernel_initializer=keras.initializers.GlorotUniform(seed=next(init)),
        name="logits",
        **f32,
    )(embedding)
    return keras.Model(x_in, [embedding, logits], name="quality_classifier")


class _Batches(keras.utils.PyDataset):
    """Seeded shuffled batches. Each epoch's order is a pure function of (seed, epoch), so prefetching or
    re-reading a batch cannot change training."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self.x, self.y, self.seed = x, y.astype(np.int32), seed
        self.batch_size = min(batch_size, len(x))
        self.epoch, self._order = 0, None

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def _epoch_order(self) -> np.ndarray:
        if self._order is None or self._order[0] != self.epoch:
            rng = np.random.default_rng([self.seed, self.epoch])
            self._order = (self.epoch, rng.permutation(len(self.x)))
        return self._order[1]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self._epoch_order()[index * self.batch_size : (index + 1) * self.batch_size]
        return self.x[idx], self.y[idx]

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


def train_cnn(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    num_classes: int,
    settings: CnnSettings,
    seed: int = 0,
) -> tuple[keras.Model, TrainingReport]:
    """AdamW on cross-entropy with early stopping on the (x_valid, y_valid) rows' accuracy (ties: lower
    loss), keeping the best epoch's weights. Without such rows it trains for `settings.epochs` and keeps
    the last weights."""
    started = time.perf_counter()
    model = build_cnn(x_train.shape[1:], num_classes, settings, seed)
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
    batches = _Batches(np.asarray(x_train, np.float32), np.asarray(y_train), settings.batch_size, seed)
    with warnings.catch_warnings():  # "your input ran out of data" and PyDataset chatter: harmless here
        warnings.simplefilter("ignore", UserWarning)
        fit = trainer.fit(
            batches,
            epochs=int(settings.epochs),
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
