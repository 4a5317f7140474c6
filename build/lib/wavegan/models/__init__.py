"""Generator/discriminator pairs, chosen by the `model` config group (`model.name`).

    build_models(model_cfg, data_shape) -> (generator, discriminator)

    generator:     z [B, latent_dim] -> [B, *data_shape], tanh output in [-1, 1] (WaveGAN's optional
                   post-processing filter is applied after tanh and lifts that bound)
    discriminator: [B, *data_shape] -> logits [B, 1] (linear; the losses apply any sigmoid)

Models: `wavegan` (raw waveforms, data_shape (slice_len, 1)), `dcgan` (SpecGAN-style DCGAN on square
spectrograms, (128, 128, 1) at paper size), `audiosynth` (the seed's sketch, (128, 128, 1) only).
Call both networks with `training=True` in train steps: it switches batch norm to batch statistics
and turns WaveGAN's phase shuffle on; `training=False` (the default) is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from wavegan.errors import ConfigError
from wavegan.models.audiosynth import build_audiosynth
from wavegan.models.dcgan import build_dcgan
from wavegan.models.layers import PhaseShuffle, phase_shuffle
from wavegan.models.wavegan import SUPPORTED_SLICE_LENS, build_wavegan

__all__ = [
    "MODEL_BUILDERS",
    "SUPPORTED_SLICE_LENS",
    "PhaseShuffle",
    "build_models",
    "phase_shuffle",
    "sample_latent",
]

MODEL_BUILDERS: dict[str, Callable[[Any, tuple[int, ...]], tuple[keras.Model, keras.Model]]] = {
    "wavegan": build_wavegan,
    "dcgan": build_dcgan,
    "audiosynth": build_audiosynth,
}


def build_models(model_cfg: Any, data_shape: tuple[int, ...]) -> tuple[keras.Model, keras.Model]:
    """Build (generator, discriminator) for `model_cfg.name` and per-example data shape `data_shape`.

    `model_cfg` is a `model` config (DictConfig or dict; missing keys take the schema's defaults,
    wavegan/config/schema.py). Raises ConfigError for an unknown model, a bad value, or a data shape the
    model cannot handle (the message names the config key, e.g. data.slice_len).
    """
    from wavegan.config.checks import check_model
    from wavegan.config.schema import typed

    name = model_cfg.get("name") if model_cfg is not None else None
    if name not in MODEL_BUILDERS:
        raise ConfigError(f"model.name must be one of {', '.join(MODEL_BUILDERS)}; got {name!r}")
    cfg = typed("model", model_cfg)
    check_model(cfg)
    return MODEL_BUILDERS[name](cfg, tuple(int(s) for s in data_shape))


def sample_latent(
    batch_size: int, latent_dim: int, seed: int | tf.random.Generator | None = None
) -> tf.Tensor:
    """z ~ U[-1, 1]^latent_dim, shape [batch_size, latent_dim], float32 (as WaveGAN and SpecGAN draw it).

    seed: an int gives the same z on every call (stateless; use it for fixed preview/evaluation
    latents); a tf.random.Generator advances its own state (reproducible training streams that can be
    checkpointed); None draws from TensorFlow's global RNG (seeded by keras.utils.set_random_seed).
    """
    shape = (int(batch_size), int(latent_dim))
    if isinstance(seed, tf.random.Generator):
        return seed.uniform(shape, minval=-1.0, maxval=1.0, dtype=tf.float32)
    if seed is not None:
        return tf.random.stateless_uniform(
            shape, seed=(int(seed), 0), minval=-1.0, maxval=1.0, dtype=tf.float32
        )
    return tf.random.uniform(shape, minval=-1.0, maxval=1.0, dtype=tf.float32)
