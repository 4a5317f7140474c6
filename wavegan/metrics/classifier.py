"""A small CNN on standardised log-mel spectrograms, trained on the data set's own labels.

No pretrained audio network can be downloaded here, so, as WaveGAN (an SC09 digit classifier) and
GANSynth (an NSynth pitch classifier) did, the Inception Score and the Fréchet distance use a
classifier trained on the training split of the data set being modelled. Its penultimate layer
(`embedding_dim` ReLU units) is the feature space of the Fréchet distance.

Sized for 2 CPU cores: four stride-2 3x3 convolutions (16-32-64-64 channels by default) then global
average pooling, ~6 MFLOP per 1 s clip, so an epoch over ~1600 clips takes about a second. Early
stopping on the held-out split keeps the best epoch's weights.

Seeding: every initialiser and the shuffling get explicit seeds derived from `seed`; the global
Keras/TensorFlow/NumPy seeds are not touched (keras.utils.set_random_seed would reset the random
state of a training run that builds this classifier in its own process, so a run would train
differently depending on whether the classifier was already cached).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

log = logging.getLogger(__name__)

__all__ = ["ClassifierSettings", "build_classifier", "predict", "train_classifier"]


@dataclass(frozen=True)
class ClassifierSettings:
    epochs: int = 20
    patience: int = 3
    batch_size: int = 64
    learning_rate: float = 5e-3
    embedding_dim: int = 128
    channels: tuple[int, ...] = (16, 32, 64, 64)

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


def train_classifier(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    num_classes: int,
    settings: ClassifierSettings,
    seed: int = 0,
) -> tuple[keras.Model, TrainingReport]:
    """Adam on cross-entropy with early stopping on held-out accuracy (ties: lower held-out loss).

    Without held-out examples it trains for `settings.epochs` and keeps the last weights.
    """
    started = time.perf_counter()
    model = build_classifier(x_train.shape[1:], num_classes, settings, seed)
    optimizer = keras.optimizers.Adam(settings.learning_rate)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(reduce_retracing=True)
    def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            _, logits = model(x, training=True)
            loss = loss_fn(y, logits)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    rng = np.random.default_rng(seed)
    has_valid = len(x_valid) > 0
    best: tuple[float, float] = (-1.0, -np.inf)  # (accuracy, -loss)
    best_weights, best_epoch, waited = None, 0, 0
    history: list[dict[str, float]] = []
    y_train = y_train.astype(np.int32)
    for epoch in range(1, settings.epochs + 1):
        order = rng.permutation(len(x_train))
        losses = []
        for start in range(0, len(order), settings.batch_size):
            idx = order[start : start + settings.batch_size]
            losses.append(float(step(tf.constant(x_train[idx]), tf.constant(y_train[idx]))))
        record = {"epoch": epoch, "train_loss": float(np.mean(losses))}
        if has_valid:
            _, probs = predict(model, x_valid)
            acc = float(np.mean(np.argmax(probs, axis=1) == y_valid))
            valid_loss = float(-np.mean(np.log(np.maximum(probs[np.arange(len(y_valid)), y_valid], 1e-12))))
            record.update(valid_accuracy=acc, valid_loss=valid_loss)
            if (acc, -valid_loss) > best:
                best, best_weights, best_epoch, waited = (acc, -valid_loss), model.get_weights(), epoch, 0
            else:
                waited += 1
        history.append(record)
        log.debug("classifier epoch %d: %s", epoch, record)
        if has_valid and waited >= settings.patience:
            break
    if best_weights is not None:
        model.set_weights(best_weights)
    else:
        best_epoch = len(history)
    report = TrainingReport(
        epochs_run=len(history),
        best_epoch=best_epoch,
        valid_accuracy=best[0] if has_valid else None,
        seconds=time.perf_counter() - started,
        history=history,
    )
    return model, report
