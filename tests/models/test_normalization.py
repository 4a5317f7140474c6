"""Normalisation of G and D (model.g_norm, model.d_norm) for every model, and spectral normalisation's
estimate of the largest singular value against numpy's."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from wavegan.cli.app import compose
from wavegan.models import build_models
from wavegan.models.normalization import SpectralNorm

SHAPES = {"wavegan": (1024, 1), "dcgan": (32, 32, 1), "audiosynth": (128, 128, 1)}
# Parameter counts before the levers existed (measured on the previous code at these shapes and dim 4):
# with every lever off they must not move.
COUNTS_OFF = {"wavegan": (29_969, 4_385), "dcgan": (29_969, 4_385), "audiosynth": (26_573, 6_749)}


def model_cfg(name: str, **overrides: object):
    return OmegaConf.merge(compose([f"model={name}"]).model, {"dim": 4, **overrides})


def layer_types(model: keras.Model) -> set[type]:
    return {type(layer) for layer in model.layers}


@pytest.mark.parametrize("name", SHAPES)
def test_levers_off_keep_todays_parameter_counts(name: str) -> None:
    g, d = build_models(model_cfg(name), SHAPES[name])
    assert (g.count_params(), d.count_params()) == COUNTS_OFF[name]
    assert not {keras.layers.BatchNormalization, keras.layers.GroupNormalization, SpectralNorm} & (
        layer_types(g) | layer_types(d)
    )


@pytest.mark.parametrize("name", SHAPES)
@pytest.mark.parametrize("d_norm", ["batch", "layer", "spectral"])
def test_every_d_norm_builds_and_runs_for_every_model(name: str, d_norm: str) -> None:
    g, d = build_models(model_cfg(name, d_norm=d_norm), SHAPES[name])
    expected = {"batch": keras.layers.BatchNormalization, "layer": keras.layers.GroupNormalization}.get(
        d_norm, SpectralNorm
    )
    assert expected in layer_types(d) and expected not in layer_types(g)
    x = g(tf.random.uniform((2, g.input_shape[-1]), -1, 1))
    for training in (True, False):
        assert np.all(np.isfinite(d(x, training=training).numpy()))
    if d_norm == "spectral":  # every conv and the output layer, and no extra trainable parameter
        convs = [layer for layer in d.layers if isinstance(layer, SpectralNorm)]
        assert convs[-1].layer.name == "output" and len(convs) >= 4
        assert sum(np.prod(w.shape) for w in d.trainable_weights) == COUNTS_OFF[name][1]


@pytest.mark.parametrize("name", SHAPES)
def test_g_batch_norm_builds_for_every_model(name: str) -> None:
    g, d = build_models(model_cfg(name, g_norm="batch"), SHAPES[name])
    assert keras.layers.BatchNormalization in layer_types(g)
    assert keras.layers.BatchNormalization not in layer_types(d)


def test_layer_norm_normalises_each_example_over_positions_and_channels() -> None:
    _, d = build_models(model_cfg("wavegan", d_norm="layer"), (1024, 1))
    norm = next(layer for layer in d.layers if isinstance(layer, keras.layers.GroupNormalization))
    x = tf.random.normal((3, *norm.input.shape[1:])) * 5.0 + 2.0
    y = norm(x).numpy().reshape(3, -1)
    np.testing.assert_allclose(y.mean(axis=1), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=1), 1.0, atol=1e-2)
    assert norm.gamma.shape == (x.shape[-1],)  # a scale per channel, as TF's layer_norm


@pytest.mark.parametrize(
    "layer", [keras.layers.Dense(7), keras.layers.Conv1D(6, 5), keras.layers.Conv2D(4, 3)]
)
def test_spectral_norm_estimate_matches_numpys_largest_singular_value(layer) -> None:
    shapes = {keras.layers.Dense: (2, 9), keras.layers.Conv1D: (2, 16, 3), keras.layers.Conv2D: (2, 8, 8, 3)}
    x = tf.random.normal(shapes[type(layer)])
    sn = SpectralNorm(layer)
    sn(x, training=False)
    kernel = layer.kernel.numpy()
    sigma = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
    for _ in range(60):  # one power iteration per training call, with the persistent vector u
        sn(x, training=True)
    np.testing.assert_allclose(float(sn.sigma()), sigma, rtol=1e-3)
    # the forward pass uses W / sigma(W): the layer's own kernel is left as it is (unlike Keras's wrapper)
    np.testing.assert_array_equal(layer.kernel.numpy(), kernel)
    normalised = np.linalg.svd((kernel / float(sn.sigma())).reshape(-1, kernel.shape[-1]), compute_uv=False)[
        0
    ]
    assert normalised == pytest.approx(1.0, rel=1e-3)


def test_spectral_norm_gradient_flows_through_the_division() -> None:
    """SN-GAN differentiates W / sigma(W) (u, v held constant): scaling W leaves the output unchanged, so
    the gradient along W itself is 0 (it would not be if sigma were a constant)."""
    layer = keras.layers.Dense(3, use_bias=False)
    sn = SpectralNorm(layer)
    x = tf.random.normal((4, 5))
    sn(x, training=False)
    for _ in range(50):
        sn(x, training=True)
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(sn(x, training=False) ** 2)
    grad = tape.gradient(out, layer.kernel).numpy()
    assert abs(float(np.sum(grad * layer.kernel.numpy()))) < 1e-3 * np.abs(grad).sum()
