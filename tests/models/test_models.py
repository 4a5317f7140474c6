"""Model shapes, ranges, parameter counts and phase shuffle."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from wavegan.cli.app import compose
from wavegan.errors import ConfigError
from wavegan.models import PhaseShuffle, build_models, phase_shuffle, sample_latent
from wavegan.models.layers import leaky_relu


def model_cfg(name: str, **overrides: object) -> OmegaConf:
    """The shipped config for `name`, with overrides (so the tests also exercise the yaml files)."""
    return OmegaConf.merge(compose([f"model={name}"]).model, overrides)


def check_pair(g: keras.Model, d: keras.Model, data_shape: tuple[int, ...], batch: int = 2) -> None:
    z = sample_latent(batch, g.input_shape[-1], seed=0)
    x = g(z, training=True)
    assert tuple(x.shape) == (batch, *data_shape)
    x_eval = g(z, training=False).numpy()
    assert np.all(np.abs(x_eval) <= 1.0) and np.all(np.isfinite(x_eval))
    for training in (True, False):
        logits = d(x, training=training)
        assert tuple(logits.shape) == (batch, 1)
        assert np.all(np.isfinite(logits.numpy()))


# --------------------------------------------------------------------------------------------- WaveGAN


@pytest.mark.parametrize("slice_len", [1024, 4096, 16384])
def test_wavegan_shapes_and_range(slice_len: int) -> None:
    g, d = build_models(model_cfg("wavegan", dim=4), (slice_len, 1))
    check_pair(g, d, (slice_len, 1))


@pytest.mark.parametrize("slice_len", [32768, 65536])
def test_wavegan_long_slices_build(slice_len: int) -> None:
    g, d = build_models(model_cfg("wavegan", dim=2), (slice_len, 1))
    assert g.output_shape == (None, slice_len, 1)
    assert d.output_shape == (None, 1)
    # The reference's v2 ends D at [16, 32d] before the logit.
    assert d.get_layer("flatten").output.shape[-1] == 16 * 32 * 2


# D's feature-map lengths, layer by layer, in the reference (chrisdonahue/wavegan): downconv_0..4 have
# stride 4; only the v2 layouts' downconv_5 has stride 2 (32768) or 4 (65536).
REFERENCE_D_LENGTHS = {
    16384: [4096, 1024, 256, 64, 16],
    32768: [8192, 2048, 512, 128, 32, 16],
    65536: [16384, 4096, 1024, 256, 64, 16],
}
REFERENCE_G_LENGTHS = {
    16384: [64, 256, 1024, 4096, 16384],
    32768: [64, 256, 1024, 4096, 16384, 32768],
    65536: [64, 256, 1024, 4096, 16384, 65536],
}


@pytest.mark.parametrize("slice_len", sorted(REFERENCE_D_LENGTHS))
def test_wavegan_per_layer_lengths_match_reference(slice_len: int) -> None:
    g, d = build_models(model_cfg("wavegan", dim=2), (slice_len, 1))
    n_d, n_g = len(REFERENCE_D_LENGTHS[slice_len]), len(REFERENCE_G_LENGTHS[slice_len])
    d_lengths = [d.get_layer(f"downconv_{i}").output.shape[1] for i in range(n_d)]
    assert d_lengths == REFERENCE_D_LENGTHS[slice_len]
    g_lengths = [g.get_layer(f"upconv_{i}").output.shape[1] for i in range(n_g)]
    assert g_lengths == REFERENCE_G_LENGTHS[slice_len]


def test_wavegan_paper_parameter_counts() -> None:
    # Exact counts of the reference layout at d=64, 16384 samples (with biases): the paper's
    # 19.07 M / 17.43 M.
    g, d = build_models(model_cfg("wavegan", dim=64), (16384, 1))
    assert g.count_params() == 19_065_345
    assert d.count_params() == 17_427_969
    assert abs(g.count_params() - 19.07e6) / 19.07e6 < 1e-3
    assert abs(d.count_params() - 17.43e6) / 17.43e6 < 1e-3


def test_wavegan_zeros_nn_and_linear_upsampling() -> None:
    counts = {}
    for upsample in ("zeros", "nn", "linear"):
        g, d = build_models(model_cfg("wavegan", dim=4, upsample=upsample), (1024, 1))
        check_pair(g, d, (1024, 1))
        counts[upsample] = g.count_params()
    assert counts["zeros"] == counts["nn"] == counts["linear"]  # same kernels, only the up-sampling differs


@pytest.mark.parametrize("dims", [1, 2])
def test_linear_upsampling_interpolates_between_samples(dims: int) -> None:
    """Linear (bilinear in 2-D) interpolation by 4: a ramp stays a ramp at 4x the rate inside (Keras's
    half-pixel centres: output j sits at input (j + 0.5) / 4 - 0.5), edges held; nearest neighbour would
    give a staircase."""
    from wavegan.models.layers import linear_upsampling

    ramp = np.arange(8, dtype=np.float32)
    x = ramp.reshape((1, 8, 1)) if dims == 1 else np.tile(ramp.reshape((1, 8, 1, 1)), (1, 1, 8, 1))
    inputs = keras.Input(x.shape[1:])
    y = keras.Model(inputs, linear_upsampling(dims, inputs, 4, "up"))(x).numpy()
    line = y[0, :, 0] if dims == 1 else y[0, :, 5, 0]
    assert line.shape == (32,)
    expected = np.clip((np.arange(32) + 0.5) / 4 - 0.5, 0, 7)
    np.testing.assert_allclose(line, expected, atol=1e-6)
    if dims == 2:  # a ramp along the rows is constant along the columns
        np.testing.assert_allclose(y[0, 9, :, 0], y[0, 9, 0, 0], atol=1e-6)


def test_wavegan_post_processing_filter_adds_512_weights() -> None:
    g0, _ = build_models(model_cfg("wavegan", dim=4), (1024, 1))
    g1, _ = build_models(model_cfg("wavegan", dim=4, post_proc_filt_len=512), (1024, 1))
    assert g1.count_params() - g0.count_params() == 512 * 1
    pp = g1.get_layer("pp_filt")
    assert not pp.use_bias and pp.kernel.shape == (512, 1, 1)
    assert g1(sample_latent(2, 100, seed=1)).shape == (2, 1024, 1)


def test_wavegan_batch_norm_in_both_networks_builds() -> None:
    g, d = build_models(model_cfg("wavegan", dim=4, g_norm="batch", d_norm="batch"), (1024, 1))
    check_pair(g, d, (1024, 1))
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in d.layers)


def test_wavegan_phase_shuffle_layers() -> None:
    _, d = build_models(model_cfg("wavegan", dim=4), (16384, 1))
    shuffles = [layer for layer in d.layers if isinstance(layer, PhaseShuffle)]
    assert len(shuffles) == 4 and all(layer.radius == 2 for layer in shuffles)
    _, d0 = build_models(model_cfg("wavegan", dim=4, phase_shuffle=0), (16384, 1))
    assert not any(isinstance(layer, PhaseShuffle) for layer in d0.layers)


@pytest.mark.parametrize("slice_len", [1000, 8192, 16385])
def test_wavegan_bad_slice_len(slice_len: int) -> None:
    with pytest.raises(ConfigError, match=r"data\.slice_len") as err:
        build_models(model_cfg("wavegan"), (slice_len, 1))
    assert "16384" in str(err.value) and "1024" in str(err.value)


def test_bad_model_values() -> None:
    with pytest.raises(ConfigError, match=r"model\.name"):
        build_models({"name": "nope"}, (1024, 1))
    with pytest.raises(ConfigError, match=r"model\.upsample"):
        build_models({"name": "wavegan", "upsample": "cubic"}, (1024, 1))
    with pytest.raises(ConfigError, match=r"model\.dim"):
        build_models(model_cfg("wavegan", dim=0), (1024, 1))
    with pytest.raises(ConfigError, match=r"model\.phase_shuffle"):
        build_models(model_cfg("wavegan", phase_shuffle=64), (256, 1))


# ------------------------------------------------------------------------------------ DCGAN / SpecGAN


def test_dcgan_shapes_and_range() -> None:
    g, d = build_models(model_cfg("dcgan", dim=4), (128, 128, 1))
    check_pair(g, d, (128, 128, 1))
    # BN in neither network by default, as SpecGAN (conf/model/dcgan.yaml says why for G)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in g.layers)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in d.layers)
    g_bn, _ = build_models(model_cfg("dcgan", dim=4, g_norm="batch"), (128, 128, 1))
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in g_bn.layers)


def test_dcgan_other_sizes_and_options() -> None:
    g, d = build_models(model_cfg("dcgan", dim=4, upsample="nn", d_norm="batch"), (32, 32, 1))
    check_pair(g, d, (32, 32, 1))
    g_linear, _ = build_models(model_cfg("dcgan", dim=4, upsample="linear"), (32, 32, 1))
    check_pair(g_linear, d, (32, 32, 1))
    assert g_linear.count_params() == g.count_params()
    # 32 = 4 * 2^3: three stride-2 layers each.
    assert len([layer for layer in d.layers if isinstance(layer, keras.layers.Conv2D)]) == 3


def test_specgan_paper_parameter_counts() -> None:
    # 5x5 kernels have WaveGAN's 25 taps, so SpecGAN without BN has exactly WaveGAN's counts.
    g, d = build_models(model_cfg("dcgan", dim=64, g_norm="none"), (128, 128, 1))
    assert g.count_params() == 19_065_345
    assert d.count_params() == 17_427_969


@pytest.mark.parametrize("shape", [(128, 64, 1), (100, 100, 1), (128, 128), (4, 4, 1)])
def test_dcgan_bad_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError, match="4\\*2\\^L"):
        build_models(model_cfg("dcgan"), shape)


# -------------------------------------------------------------------------------------- AudioSynth


def test_audiosynth_shapes_and_counts() -> None:
    g, d = build_models(model_cfg("audiosynth"), (128, 128, 1))
    check_pair(g, d, (128, 128, 1))
    # D follows the 128x128 data (the seed said 64x64): flatten is 16x16x256.
    assert d.get_layer("flatten").output.shape[-1] == 16 * 16 * 256
    assert g.count_params() == 160_193
    assert d.count_params() == 722_369


def test_audiosynth_rejects_other_shapes() -> None:
    with pytest.raises(ConfigError, match="128x128x1"):
        build_models(model_cfg("audiosynth"), (64, 64, 1))


# ------------------------------------------------------------------------------------- phase shuffle


def test_phase_shuffle_reflect_fixed_shift() -> None:
    x = tf.reshape(tf.range(6, dtype=tf.float32), (1, 6, 1))
    # +2: later by two, the left edge mirrored about sample 0 (reflect, edge not repeated).
    np.testing.assert_array_equal(phase_shuffle(x, 2)[0, :, 0].numpy(), [2, 1, 0, 1, 2, 3])
    # -2: earlier by two, the right edge mirrored about the last sample.
    np.testing.assert_array_equal(phase_shuffle(x, -2)[0, :, 0].numpy(), [2, 3, 4, 5, 4, 3])
    # Same as numpy's reflect pad-then-crop, as the reference does with tf.pad(mode='reflect').
    np.testing.assert_array_equal(
        phase_shuffle(x, 2)[0, :, 0].numpy(), np.pad(np.arange(6), (2, 0), mode="reflect")[:6]
    )
    np.testing.assert_array_equal(phase_shuffle(x, 0)[0, :, 0].numpy(), np.arange(6))


def test_phase_shuffle_layer_training_only_and_shape() -> None:
    x = tf.random.normal((16, 64, 3))
    layer = PhaseShuffle(2, seed=0)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())  # inference by default
    np.testing.assert_array_equal(PhaseShuffle(0)(x, training=True).numpy(), x.numpy())
    seen = set()
    for _ in range(20):
        y = layer(x, training=True).numpy()
        assert y.shape == x.shape
        # The whole batch is one of the 5 shifts of itself (one shift per batch, as the reference).
        matches = [s for s in range(-2, 3) if np.array_equal(y, phase_shuffle(x, s).numpy())]
        assert matches, "output is not a shift in [-2, 2]"
        seen.add(matches[0])
    assert len(seen) > 2, f"shifts do not vary between calls: {seen}"


def test_phase_shuffle_has_gradient() -> None:
    x = tf.random.normal((4, 32, 2))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(PhaseShuffle(2, seed=1)(x, training=True))
    assert np.all(np.isfinite(tape.gradient(y, x).numpy()))


@pytest.mark.parametrize("slope", [0.0, 0.2])
def test_leaky_relu_values_and_derivatives_match_tensorflows(slope: float) -> None:
    """D's LeakyReLU (no dead second-order path): values, gradients and a gradient penalty's gradient (a
    second derivative through a weight) as tf.nn.leaky_relu's, bit for bit."""
    x = tf.constant([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    w = tf.Variable([[1.5, -1.0, 2.0, -0.5, 0.25]])

    def penalty_and_grads(activation):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = tf.reduce_sum(activation(w * x) * w)
            dx = inner.gradient(y, x)
            penalty = tf.reduce_sum(tf.square(dx)) + y
        return [t.numpy() for t in (y, dx, outer.gradient(penalty, w))]

    ours = penalty_and_grads(lambda v: leaky_relu(v, slope))
    theirs = penalty_and_grads(lambda v: tf.nn.leaky_relu(v, alpha=slope))
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------------------- latent


def test_sample_latent() -> None:
    z = sample_latent(256, 100, seed=3).numpy()
    assert z.shape == (256, 100) and z.dtype == np.float32
    assert z.min() >= -1.0 and z.max() <= 1.0 and z.min() < -0.9 and z.max() > 0.9
    np.testing.assert_array_equal(z, sample_latent(256, 100, seed=3).numpy())
    gen = tf.random.Generator.from_seed(7)
    a, b = sample_latent(4, 100, gen).numpy(), sample_latent(4, 100, gen).numpy()
    assert not np.array_equal(a, b)
    assert sample_latent(2, 5).shape == (2, 5)


@pytest.mark.parametrize("init", ["glorot", "stride_aware"])
def test_untrained_wavegan_output_level_by_initialiser(init: str) -> None:
    """The reference's glorot init loses ~6 dB per stride-4 up-conv: an untrained G whispers at RMS ~0.002,
    40 dB under the data (RMS 0.03-0.35), so every latent maps to the same near-silence. stride_aware
    keeps the signal's scale through the stack; parameter counts are the same either way."""
    keras.utils.set_random_seed(0)
    # transposed convolutions (upsample=zeros), the reference's layers, which the claim is about
    g, _ = build_models(model_cfg("wavegan", dim=8, g_init=init, upsample="zeros"), (16384, 1))
    x = g(sample_latent(8, 100, seed=1), training=False).numpy()[..., 0]
    rms = float(np.sqrt(np.mean(x**2)))
    if init == "glorot":
        assert rms < 0.01
    else:
        assert 0.03 < rms < 0.5
        # different latents give different sounds
        assert float(np.sqrt(np.mean((x[0] - x[1]) ** 2))) > 0.3 * rms
    glorot, _ = build_models(model_cfg("wavegan", dim=8, g_init="glorot"), (16384, 1))
    assert g.count_params() == glorot.count_params()
