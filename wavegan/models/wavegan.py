"""WaveGAN generator and discriminator (Donahue, McAuley, Puckette, ICLR 2019).

Follows the reference code (chrisdonahue/wavegan, `wavegan.py` and `train_wavegan.py`) layer for layer.

Paper size, slice_len 16384 (d = `model.dim` = 64):

    G: z [100] -> dense 16*16d -> reshape [16, 16d] -> (BN) -> ReLU
       -> 5 x up-conv (kernel 25, stride 4, 'same'): 8d, 4d, 2d, d, 1; (BN) + ReLU between, tanh out
       -> optional post-processing filter (`model.post_proc_filt_len` > 0; 512 in the paper): one conv1d,
          1 filter, no bias, 'same', applied AFTER tanh as the reference does (so with it on, G's
          output is no longer bounded to [-1, 1]).
    D: x [16384, 1] -> 5 x conv1d (kernel 25, stride 4, 'same'): d, 2d, 4d, 8d, 16d, each LeakyReLU(0.2),
       (BN on all but the first), phase shuffle (radius `model.phase_shuffle`) after the first four
       (one shift per batch and layer, as the reference; see layers.py)
       -> flatten [16 * 16d] -> dense 1 (a linear logit).

    Parameters at d = 64 (with biases, zeros, nn or linear up-sampling alike): G 19,065,345; D 17,427,969.

Longer slices follow the reference's v2 layout (dim_mul starts at 32 instead of 16):

    32768 / 65536: G dense -> [16, 32d] -> up-convs 16d, 8d, 4d, 2d, d (stride 4) -> 1 (stride 2 for
    32768, 4 for 65536). D: d, 2d, 4d, 8d, 16d (stride 4) + an extra conv 32d (stride 2 / 4) -> [16, 32d],
    so D's feature maps at 32768 are 8192, 2048, 512, 128, 32, 16 long (the reference's downconv_0..5);
    phase shuffle after the first four convs only, as in the reference. At d = 64 both lengths have
    G 73,149,953 and D 69,875,201 parameters.

Smaller slices (this project's addition, for quick CPU studies): slice_len = 16 * 4^L with L in 1..4
(64, 256, 1024, 4096) keeps WaveGAN's design with L stride-4 layers instead of five: G reshapes to
[16, 2^(L-1) d] and its up-convs have widths 2^(L-2) d, ..., 2d, d, then 1; D mirrors it with widths
d, 2d, ..., 2^(L-1) d (so its flatten is [16, 2^(L-1) d]), phase shuffle after every conv but the last.
At L = 5 this rule gives exactly the paper model. Any other slice_len is a ConfigError.

Normalisation: `model.g_norm` (batch norm after the dense projection and every up-conv but the last) and
`model.d_norm` (batch or layer norm after every conv but the first, or spectral normalisation of every
layer), models/normalization.py. The reference's single `batchnorm` flag is g_norm=batch d_norm=batch; both
are off by default, as in the paper.
"""

from __future__ import annotations

import math
from typing import Any

import keras

from wavegan.errors import ConfigError
from wavegan.models.blocks import discriminator_conv_block, discriminator_logits, generator_upconv_stack
from wavegan.models.convolutions import Conv1D
from wavegan.models.layers import PhaseShuffle, upconv1d
from wavegan.models.normalization import g_feature_norm

LEAKY_SLOPE = 0.2  # the reference's lrelu(alpha=0.2)
SMALL_SLICE_LENS = (64, 256, 1024, 4096)
PAPER_SLICE_LEN = 16384
LONG_SLICE_LENS = (32768, 65536)
SUPPORTED_SLICE_LENS = (*SMALL_SLICE_LENS, PAPER_SLICE_LEN, *LONG_SLICE_LENS)


def _layout(slice_len: int) -> tuple[list[int], list[int], list[int], int]:
    """Layer layout for one slice length: (g_muls, strides, d_muls, n_shuffle).

    g_muls: G widths in units of d, first the reshape, then each up-conv (0 marks the output layer,
    whose width is the data's channel count). strides: G's up-conv strides (D uses them reversed).
    d_muls: D's conv widths in units of d. n_shuffle: how many of D's convs, from the first, are
    followed by phase shuffle.
    """
    if slice_len in LONG_SLICE_LENS:
        last_stride = 2 if slice_len == 32768 else 4
        g_muls = [32, 16, 8, 4, 2, 1, 0]
        strides = [4, 4, 4, 4, 4, last_stride]
        d_muls = [1, 2, 4, 8, 16, 32]
        return g_muls, strides, d_muls, 4
    n_layers = {16 * 4**k: k for k in range(1, 6)}.get(slice_len)
    if n_layers is None:
        raise ConfigError(
            f"data.slice_len={slice_len} is not supported by model=wavegan; supported values: "
            f"{', '.join(str(s) for s in SUPPORTED_SLICE_LENS)} (16384 is the paper's; 16*4^L for fewer "
            "layers, 32768/65536 as the reference's v2)"
        )
    g_muls = [2 ** (n_layers - 1 - k) for k in range(n_layers)] + [0]
    strides = [4] * n_layers
    d_muls = [2**k for k in range(n_layers)]
    return g_muls, strides, d_muls, n_layers - 1



def build_wavegan_generator(model_cfg: Any, data_shape: tuple[int, ...]) -> keras.Model:
    """z [B, latent_dim] -> waveform [B, slice_len, channels]."""
    cfg = model_cfg
    slice_len, channels = _check_shape(data_shape)
    g_muls, strides, _, _ = _layout(slice_len)
    dim = cfg.dim

    z = keras.Input((cfg.latent_dim,), name="z")
    x = keras.layers.Dense(16 * dim * g_muls[0], name="z_project")(z)
    x = keras.layers.Reshape((16, dim * g_muls[0]), name="z_reshape")(x)
    x = g_feature_norm(x, cfg.g_norm, "z_project")
    x = keras.layers.ReLU(name="z_project_relu")(x)
    filters = [dim * mul for mul in g_muls[1:-1]] + [channels]
    x = generator_upconv_stack(
        x,
        list(zip(filters, strides, strict=True)),
        cfg,
        lambda x, f, s, **kw: upconv1d(x, f, cfg.kernel_len, s, str(cfg.upsample), **kw),
    )
    if cfg.post_proc_filt_len > 0:
        # One learned FIR filter per output channel, as the reference's `pp_filt` (1 filter, no bias).
        x = Conv1D(
            channels, cfg.post_proc_filt_len, padding="same", use_bias=False, name="pp_filt"
        )(x)
    return keras.Model(z, x, name="wavegan_generator")


def build_wavegan_discriminator(model_cfg: Any, data_shape: tuple[int, ...]) -> keras.Model:
    """waveform [B, slice_len, channels] -> logits [B, 1] (linear)."""
    cfg = model_cfg
    slice_len, channels = _check_shape(data_shape)
    _, strides, d_muls, n_shuffle = _layout(slice_len)
    dim, norm = cfg.dim, cfg.d_norm

    # D down-samples with G's strides in G's order: the reference's downconv_0..4 have stride 4 and only
    # the last (downconv_5 of the v2 layouts) has stride 2 at 32768, so D's first layers stay wide.
    d_strides = list(strides)
    if n_shuffle > 0:
        # Reflect padding needs the shift to stay inside the feature map; the shortest shuffled one is
        # the output of the last shuffled conv (64 samples at slice_len 256, 64 at the paper's 16384).
        shortest = slice_len // math.prod(d_strides[:n_shuffle])
        if cfg.phase_shuffle >= shortest:
            raise ConfigError(
                f"model.phase_shuffle={cfg.phase_shuffle} is too large for data.slice_len={slice_len}: "
                f"it must be below {shortest}, the shortest phase-shuffled feature map (the paper uses 2)"
            )

    inp = keras.Input((slice_len, channels), name="x")
    x = inp
    for i, (mul, stride) in enumerate(zip(d_muls, d_strides, strict=True)):
        conv = Conv1D(dim * mul, cfg.kernel_len, strides=stride, padding="same", name=f"downconv_{i}")
        x = discriminator_conv_block(x, conv, norm, i, LEAKY_SLOPE)
        if i < n_shuffle and cfg.phase_shuffle > 0:
            x = PhaseShuffle(cfg.phase_shuffle, name=f"phase_shuffle_{i}")(x)
    return keras.Model(inp, discriminator_logits(x, norm), name="wavegan_discriminator")


def build_wavegan(model_cfg: Any, data_shape: tuple[int, ...]) -> tuple[keras.Model, keras.Model]:
    """(generator, discriminator) for waveforms of shape data_shape = (slice_len, channels)."""
    return build_wavegan_generator(model_cfg, data_shape), build_wavegan_discriminator(model_cfg, data_shape)


def _check_shape(data_shape: tuple[int, ...]) -> tuple[int, int]:
    if len(data_shape) != 2:
        raise ConfigError(
            f"model=wavegan needs waveform data of shape (slice_len, channels), got {tuple(data_shape)}; "
            "use model=dcgan or model=audiosynth for spectrograms"
        )
    slice_len, channels = int(data_shape[0]), int(data_shape[1])
    _layout(slice_len)  # raises the data.slice_len ConfigError early, before any layer is built
    return slice_len, channels
