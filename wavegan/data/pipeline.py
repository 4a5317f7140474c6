"""From the store to batches: representations computed once per store and cached, then tf.data.

Features of every split are computed in one pass after fitting the representation (scaler, mean/std)
on the training split, and saved under `<store>/features/<representation>-<hash>/` with the fitted
state, so training never recomputes a spectrogram per step and every run of one data set sees the
same normalisation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from wavegan import failpoints
from wavegan.atomic import build_atomically
from wavegan.caching import cache_key
from wavegan.data.schema import SPLITS
from wavegan.data.store import DataStore
from wavegan.errors import ConfigError
from wavegan.representations import Representation, build_representation

EPOCHS = 1 << 62  # "endless": more epochs than any run takes


def features_dir(store: DataStore, preprocessing: DictConfig) -> Path:
    key = cache_key(OmegaConf.to_container(preprocessing, resolve=True), 12)
    return store.root / "features" / f"{preprocessing.name}-{key}"


def load_features(
    store: DataStore, preprocessing: DictConfig
) -> tuple[dict[str, np.ndarray], Representation]:
    """Features per split (float32, [-1, 1]) and the fitted representation that inverts them."""
    slice_len, sample_rate = int(store.summary["slice_len"]), int(store.summary["sample_rate"])
    target = features_dir(store, preprocessing)
    if not (target / "complete").is_file():
        with build_atomically(target, marker="complete") as partial:
            representation = build_representation(preprocessing, slice_len, sample_rate)
            # one read of the audio column for all splits (each store.waveforms call reads it whole)
            audio, splits = store.waveforms(split=None), store.column("split", split=None)
            representation.fit(audio[splits == "train"])
            representation.save(partial)
            for split in SPLITS:
                failpoints.reach("features.build")
                np.save(partial / f"{split}.npy", representation.transform(audio[splits == split]))
            (partial / "complete").touch()
    representation = type(build_representation(preprocessing, slice_len, sample_rate)).load(
        target, preprocessing, slice_len, sample_rate
    )
    features = {split: np.load(target / f"{split}.npy") for split in SPLITS}
    return features, representation


def make_dataset(
    features: np.ndarray, batch_size: int, seed: int, shuffle: bool = True, start_batch: int = 0
):
    """An endless stream of batches over in-memory features, each epoch in a new seeded order, starting at
    batch number `start_batch`.

    The order is a function of (seed, position) only: epoch e is the permutation `index_shuffle` gives
    for seed (seed, e), and the stream runs through the epochs without a gap, a batch may span two. So a
    resumed run asks for the batch it stopped at and sees exactly the batches an uninterrupted run would,
    with nothing to checkpoint (tf.data's shuffle buffer would have to be saved whole, the data set with it).
    """
    import tensorflow as tf

    n = len(features)
    if batch_size > n:
        raise ConfigError(
            f"trainer.batch_size={batch_size} is larger than the training split ({n} clips). "
            "Fix: lower trainer.batch_size or use more data (data.num_samples)."
        )
    data = tf.constant(features)
    first = int(start_batch) * batch_size  # the position of the first example in the endless stream

    def epoch(e: tf.Tensor) -> tf.data.Dataset:
        order = tf.range(n, dtype=tf.int64)
        if shuffle:
            seeds = tf.stack([tf.constant(seed, tf.int64), e])
            order = tf.random.experimental.index_shuffle(order, seeds, max_index=n - 1)
        return tf.data.Dataset.from_tensor_slices(order)

    positions = tf.data.Dataset.range(first // n, EPOCHS).flat_map(epoch).skip(first % n)
    batches = positions.batch(batch_size, drop_remainder=True).map(lambda rows: tf.gather(data, rows))
    return batches.prefetch(tf.data.AUTOTUNE)
