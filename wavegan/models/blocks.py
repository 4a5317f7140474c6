"""The layer blocks every model repeats: G's up-convolution stack, D's conv block and its logits head.

Layer names are part of the checkpoints and the tests (`upconv_<i>`, `downconv_<i>_lrelu`, `output`), so the
blocks name their layers exactly as the models did when they built them inline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras

from wavegan.models.layers import LeakyReLU
from wavegan.models.normalization import d_feature_norm, d_layer, g_feature_norm


def generator_upconv_stack(
    x: Any, layers: Sequence[tuple[int, int]], cfg: Any, upconv: Callable[..., Any]
) -> Any:
    """G's up-convolutions, one per (filters, stride) in `layers`, then tanh.

    Every layer but the last is followed by `cfg.g_norm` and a ReLU. `upconv(x, filters, stride, name=,
    init=, gain=)` builds one up-convolution (the model binds its kernel size and up-sampling mode).
    """
    for i, (filters, stride) in enumerate(layers):
        last = i == len(layers) - 1
        name = f"upconv_{i}"
        # The last layer feeds tanh, the others a ReLU: He gain 2 for those, 1 for it.
        x = upconv(x, filters, stride, name=name, init=str(cfg.g_init), gain=1.0 if last else 2.0)
        if not last:
            x = g_feature_norm(x, cfg.g_norm, name)
            x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return keras.layers.Activation("tanh", name="tanh")(x)


def discriminator_conv_block(x: Any, conv: keras.layers.Layer, norm: str, index: int, slope: float) -> Any:
    """D's convolution `conv` (wrapped by `norm` where it acts on weights), its feature norm, LeakyReLU."""
    x = d_layer(conv, norm)(x)
    if index > 0:  # the references never normalise D's input layer (WaveGAN, DCGAN)
        x = d_feature_norm(x, norm, conv.name)
    return LeakyReLU(negative_slope=slope, name=f"{conv.name}_lrelu")(x)


def discriminator_logits(x: Any, norm: str) -> Any:
    """D's head: flatten, then one linear unit (the logit or critic value)."""
    x = keras.layers.Flatten(name="flatten")(x)
    return d_layer(keras.layers.Dense(1, name="output"), norm)(x)
