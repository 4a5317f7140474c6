"""The seed's "AudioSynthGan" sketch as a config (`model=audiosynth`), for 128x128x1 spectrograms.

As in the seed (d = `model.dim`, 64 in the seed; widths scale with it):

    G: z [latent_dim] -> dense 256 -> LeakyReLU -> reshape [16, 16, 1]
       -> transposed conv 2d (4x4, stride 2, 'same') -> LeakyReLU -> transposed conv d -> LeakyReLU
       -> transposed conv 1 filter (4x4, stride 2, 'same') -> tanh            => [128, 128, 1]
    D: x -> conv d, 2d, 4d (4x4, stride 2, 'same'), each LeakyReLU -> flatten -> dense 1 (a linear logit)

The seed's inconsistency and how it is resolved: its D was declared for 64x64x1 inputs while its G
produces 128x128x1, so the two could never be trained together. Here D's input follows the data, the
128x128 spectrogram that G produces, with the same three conv layers (so D's flatten is 16x16x4d,
65,536 features at d = 64, instead of the seed's 8x8x256). The alternative considered, down-sampling the
data (and G's output) to 64x64, was rejected: it throws away half of the time frames and frequency
bins that Griffin-Lim needs to turn the spectrogram back into audio.

Not in the seed sketch but needed for a sound comparison: D outputs raw logits (the losses apply any
sigmoid), and the LeakyReLU slope, which the seed left unstated, is `model.leaky_relu_slope` (default
0.2, the DCGAN/WaveGAN value; Keras's own default is 0.3). The seed's loss (Wasserstein with a gradient
penalty) is chosen separately with `loss=wgan_gp`.
"""

from __future__ import annotations

from typing import Any

import keras

from wavegan.errors import ConfigError
from wavegan.models.blocks import discriminator_conv_block, discriminator_logits
from wavegan.models.convolutions import Conv2D, Conv2DTranspose
from wavegan.models.normalization import g_feature_norm

DATA_SHAPE = (128, 128, 1)



def _check_shape(data_shape: tuple[int, ...]) -> None:
    if tuple(int(s) for s in data_shape) != DATA_SHAPE:
        raise ConfigError(
            f"model=audiosynth only accepts 128x128x1 spectrograms (data shape {DATA_SHAPE}), got "
            f"{tuple(data_shape)}; use model=dcgan for other square sizes or model=wavegan for waveforms"
        )


def build_audiosynth_generator(model_cfg: Any, data_shape: tuple[int, ...]) -> keras.Model:
    """z [B, latent_dim] -> spectrogram [B, 128, 128, 1] in [-1, 1]."""
    cfg = model_cfg
    _check_shape(data_shape)
    dim, k, slope = cfg.dim, cfg.kernel_size, cfg.leaky_relu_slope

    z = keras.Input((cfg.latent_dim,), name="z")
    x = keras.layers.Dense(256, name="z_project")(z)
    x = keras.layers.LeakyReLU(negative_slope=slope, name="z_project_lrelu")(x)
    x = keras.layers.Reshape((16, 16, 1), name="z_reshape")(x)
    for i, filters in enumerate((2 * dim, dim)):
        x = Conv2DTranspose(filters, k, strides=2, padding="same", name=f"upconv_{i}")(x)
        x = g_feature_norm(x, cfg.g_norm, f"upconv_{i}")
        x = keras.layers.LeakyReLU(negative_slope=slope, name=f"upconv_{i}_lrelu")(x)
    x = Conv2DTranspose(1, k, strides=2, padding="same", name="upconv_2")(x)
    x = keras.layers.Activation("tanh", name="tanh")(x)
    return keras.Model(z, x, name="audiosynth_generator")


def build_audiosynth_discriminator(model_cfg: Any, data_shape: tuple[int, ...]) -> keras.Model:
    """spectrogram [B, 128, 128, 1] -> logits [B, 1] (linear)."""
    cfg = model_cfg
    _check_shape(data_shape)
    dim, k, slope, norm = cfg.dim, cfg.kernel_size, cfg.leaky_relu_slope, cfg.d_norm

    inp = keras.Input(DATA_SHAPE, name="x")
    x = inp
    for i, filters in enumerate((dim, 2 * dim, 4 * dim)):
        conv = Conv2D(filters, k, strides=2, padding="same", name=f"downconv_{i}")
        x = discriminator_conv_block(x, conv, norm, i, slope)
    return keras.Model(inp, discriminator_logits(x, norm), name="audiosynth_discriminator")


def build_audiosynth(model_cfg: Any, data_shape: tuple[int, ...]) -> tuple[keras.Model, keras.Model]:
    """(generator, discriminator) for 128x128x1 spectrograms."""
    return (
        build_audiosynth_generator(model_cfg, data_shape),
        build_audiosynth_discriminator(model_cfg, data_shape),
    )
