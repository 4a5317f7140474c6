"""DCGAN / SpecGAN generator and discriminator for square spectrograms (`model=dcgan`).

SpecGAN (Donahue et al. 2019; reference chrisdonahue/wavegan `specgan.py`) at 128x128 (d = `model.dim`):

    G: z [100] -> dense 4*4*16d -> reshape [4, 4, 16d] -> (BN) -> ReLU
       -> 5 x up-conv (5x5, stride 2, 'same'): 8d, 4d, 2d, d, 1; (BN) + ReLU between, tanh out
    D: x [128, 128, 1] -> 5 x conv (5x5, stride 2, 'same'): d, 2d, 4d, 8d, 16d, LeakyReLU(0.2), (BN on all
       but the first) -> flatten [4 * 4 * 16d] -> dense 1 (a linear logit)

    Parameters at d = 64 (with biases): G 19,065,345 with BN off (19,073,281 with `g_norm=batch`, counting
    BN's moving statistics), D 17,427,969 -- the same as WaveGAN, since 5x5 = 25 taps.

The stable-DCGAN guidelines (Radford et al. 2016) this follows: strided convolutions in D and
fractional-strided ones in G instead of pooling; no fully connected hidden layers (the dense layers
are only G's projection of z and D's logit); ReLU in G with a tanh output; LeakyReLU in D; batch norm
in G (`model.g_norm=batch`, default off as in SpecGAN: see conf/model/dcgan.yaml) and, switchable, in
D (`model.d_norm`: batch, layer or spectral; default none: the large study of Kurach et al. 2019 found BN
in D harmful, and it mixes the examples of a batch, which breaks a per-example gradient penalty). As in
DCGAN, normalisation never touches G's output layer or D's input layer (spectral normalisation, which
rescales weights rather than features, covers every layer of D). SpecGAN's reference itself uses BN in
neither network by default.

Other square power-of-two shapes work too: side = 4 * 2^L gives L stride-2 layers, G reshaping to
[4, 4, 2^(L-1) d] and D mirroring it with widths d, ..., 2^(L-1) d (L = 5 at 128x128 is the paper model).
`model.upsample` picks `zeros` (transposed convolution, default) or `nn` (nearest-neighbour resize then
convolution), the reference's two main options, or `linear` (bilinear resize then convolution).
"""

from __future__ import annotations

from typing import Any

import keras

from wavegan.errors import ConfigError
from wavegan.models.blocks import discriminator_conv_block, discriminator_logits, generator_upconv_stack
from wavegan.models.convolutions import Conv2D
from wavegan.models.layers import upconv2d
from wavegan.models.normalization import g_feature_norm

LEAKY_SLOPE = 0.2


def _n_layers(data_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(number of stride-2 layers L, side, channels) for data of shape (side, side, channels)."""
    shape = tuple(int(s) for s in data_shape)
    if len(shape) == 3 and shape[0] == shape[1]:
        side = shape[0]
        for n in range(1, 12):
            if side == 4 * 2**n:
                return n, side, shape[2]
    raise ConfigError(
        f"model=dcgan needs square spectrograms of shape (side, side, channels) with side = 4*2^L "
        f"(8, 16, 32, 64, 128 (SpecGAN), 256, ...); got data shape {shape}. Check the preprocessing's "
        "spectrogram size, or use model=wavegan for waveforms"
    )



def build_dcgan_generator(model_cfg: Any, data_shape: tuple[int, ...]) -> keras.Model:
    """z [B, latent_dim] -> spectrogram [B, side, side, channels] in [-1, 1]."""
    cfg = model_cfg
    n_layers, _, channels = _n_layers(data_shape)
    dim = cfg.dim

    z = keras.Input((cfg.latent_dim,), name="z")
    width = dim * 2 ** (n_layers - 1)
    x = keras.layers.Dense(4 * 4 * width, name="z_project")(z)
    x = keras.layers.Reshape((4, 4, width), name="z_reshape")(x)
    x = g_feature_norm(x, cfg.g_norm, "z_project")
    x = keras.layers.ReLU(name="z_project_relu")(x)
    filters = [dim * 2 ** (n_layers - 2 - i) for i in range(n_layers - 1)] + [channels]
    x = generator_upconv_stack(
        x,
        [(f, 2) for f in filters],
        cfg,
        lambda x, f, s, **kw: upconv2d(x, f, cfg.kernel_size, s, str(cfg.upsample), **kw),
    )
    return keras.Model(z, x, name="dcgan_generator")


def build_dcgan_discriminator(model_cfg: Any, data_shape: tuple[int, ...]) -> keras.Model:
    """spectrogram [B, side, side, channels] -> logits [B, 1] (linear)."""
    cfg = model_cfg
    n_layers, side, channels = _n_layers(data_shape)
    dim, norm = cfg.dim, cfg.d_norm

    inp = keras.Input((side, side, channels), name="x")
    x = inp
    for i in range(n_layers):
        conv = Conv2D(dim * 2**i, cfg.kernel_size, strides=2, padding="same", name=f"downconv_{i}")
        x = discriminator_conv_block(x, conv, norm, i, LEAKY_SLOPE)
    return keras.Model(inp, discriminator_logits(x, norm), name="dcgan_discriminator")


def build_dcgan(model_cfg: Any, data_shape: tuple[int, ...]) -> tuple[keras.Model, keras.Model]:
    """(generator, discriminator) for spectrograms of shape data_shape = (side, side, channels)."""
    return build_dcgan_generator(model_cfg, data_shape), build_dcgan_discriminator(model_cfg, data_shape)
