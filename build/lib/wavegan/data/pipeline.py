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

from wavegan.atomic import build_atomically
from wavegan.caching import cache_key
from wavegan.data.schema import SPLITS
from wavegan.data.store import DataStore
from wavegan.errors import ConfigError
from wavegan.representations import Representation, build_representation


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
                np.save(partial / f"{split}.npy", representation.transform(audio[splits == split]))
            (partial / "complete").touch()
    representation = type(build_representation(preprocessing, slice_len, sample_rate)).load(
        target, preprocessing, slice_len, sample_rate
    )
    features = {split: np.load(target / f"{split}.npy") for split in SPLITS}
    return features, representation


def make_dataset(features: np.ndarray, batch_size: int, seed: int, shuffle: bool = True):
    """An endless, shuffled, batched, prefetched tf.data stream over in-memory features."""
    import tensorflow as tf

    if batch_size > len(features):
        raise ConfigError(
            f"trainer.batch_size={batch_size} is larger than the training split ({len(features)} clips). "
            "Fix: lower trainer.batch_size or use more data (data.num_samples)."
        )
    ds = tf.data.Dataset.from_tensor_slices(features)
    if shuffle:
        ds = ds.shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
    return ds.repeat().batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
