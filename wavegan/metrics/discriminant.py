"""The quality classifier for small labelled folders: shrinkage LDA on a fixed summary of each clip.

A folder of 100-500 clips gives a dozen to a few dozen examples per label: too few to train a CNN's
filters (benchmarks/classifier_small_data.py), enough to estimate class means and one shared covariance.
Each clip's standardised, onset-aligned log-mel [frames, n_mels] is summarised by fixed features
(`ClipSummary`):

* the onset patch: the first `patch_frames` frames, averaged over 2 x 2 (frames x bands) cells: how the
  sound starts and unfolds (a word's phonemes, a note's attack);
* each mel band's mean and standard deviation over time: spectral shape and its variation;
* the first `n_mfcc` cepstral coefficients (DCT-II over the bands of each frame) and their frame-to-frame
  change, each as mean and standard deviation over time: the spectral envelope, which a pitch shift moves
  less than it moves the bands themselves;
* the spectral pattern: the magnitude of each frame's Fourier transform across its bands (bins 1 to
  n_mels / 2), mean and standard deviation over time: the spacing of partials and formants wherever they
  sit, which a pitch shift (nearly a shift across the upper mel bands) leaves alone. It added 3-5 points
  on the subsampled notes, whose pitches span four octaves, and nothing lost on the words.

On these (standardised by the fitted rows) a linear discriminant analysis with Ledoit-Wolf shrinkage of
the within-class covariance (scikit-learn, solver "eigen"; Ledoit & Wolf 2004) gives the class posteriors,
in closed form: no epochs, no early stopping, no seeds. Measured against logistic regression, an SVM, an
MLP and the CNN (with augmentation) on spoken words and subsampled notes, it was the most accurate or
within a few clips of it on every folder (README, "How the classifier is trained").

The result is a Keras model with the CNN's interface, normalised log-mel [B, frames, n_mels, 1] ->
(embedding, logits), with fixed weights:

    embedding   the discriminant coordinates (min(classes - 1, features) of them): the projection in
                which LDA's classes are separated, scaled so that the (shrunk) within-class covariance is
                the identity. A Fréchet distance there is in units of within-class spread; it reads a
                collapse onto a few classes, a shift between classes, and audio unlike any class.
    logits      LDA's linear decision function (softmax: its posterior, with the fitted class priors).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import keras
import numpy as np
import scipy.fft

from wavegan.metrics.classifier import SummarySettings

__all__ = ["ClipSummary", "fit_discriminant"]

# A class absent from the fitted rows (a cross-validation fold can lack a rare class): never predicted.
_ABSENT_CLASS_LOGIT = -1e4


@keras.saving.register_keras_serializable(package="wavegan")
class ClipSummary(keras.layers.Layer):
    """[B, frames, n_mels, 1] -> [B, features]: onset patch, band statistics, cepstral statistics and the
    spectral pattern (see the module's docstring)."""

    def __init__(self, patch_frames: int = 32, patch_pool: int = 2, n_mfcc: int = 20, **kwargs) -> None:
        super().__init__(**kwargs)
        self.patch_frames, self.patch_pool, self.n_mfcc = int(patch_frames), int(patch_pool), int(n_mfcc)

    def build(self, input_shape: Sequence[int]) -> None:
        n_mels = int(input_shape[2])
        self._coefficients = min(self.n_mfcc, n_mels)
        dct = scipy.fft.dct(np.eye(n_mels), axis=1, norm="ortho")[:, : self._coefficients]
        self._dct = keras.ops.convert_to_tensor(dct.astype(np.float32))
        dft = np.fft.rfft(np.eye(n_mels), axis=1)[:, 1 : n_mels // 2 + 1]  # without the mean (bin 0)
        self._dft_real = keras.ops.convert_to_tensor(dft.real.astype(np.float32))
        self._dft_imag = keras.ops.convert_to_tensor(dft.imag.astype(np.float32))

    def _sizes(self, frames: int, n_mels: int) -> tuple[int, int]:
        patch = min(frames, self.patch_frames)
        return patch, _ceil_div(patch, self.patch_pool) * _ceil_div(n_mels, self.patch_pool)

    def compute_output_shape(self, input_shape: Sequence[int]) -> tuple:
        frames, n_mels = int(input_shape[1]), int(input_shape[2])
        coefficients = min(self.n_mfcc, n_mels)
        patch = self._sizes(frames, n_mels)[1]
        return (input_shape[0], patch + 2 * n_mels + 4 * coefficients + 2 * (n_mels // 2))

    def call(self, x):
        ops = keras.ops
        x = x[..., 0]  # [B, frames, n_mels]
        frames, n_mels = int(x.shape[1]), int(x.shape[2])
        patch_frames, _ = self._sizes(frames, n_mels)
        pool = (self.patch_pool, self.patch_pool)
        patch = ops.average_pool(x[:, :patch_frames, :, None], pool, pool, padding="same")
        cepstrum = ops.matmul(x, self._dct)  # [B, frames, coefficients]
        # a one-frame clip has no frame-to-frame change: zeros, as a constant clip would have
        change = cepstrum[:, 1:] - cepstrum[:, :-1] if frames > 1 else ops.zeros_like(cepstrum)
        pattern = ops.sqrt(
            ops.square(ops.matmul(x, self._dft_real)) + ops.square(ops.matmul(x, self._dft_imag))
        )
        parts = [
            ops.reshape(patch, (ops.shape(x)[0], -1)),
            ops.mean(x, axis=1),
            ops.std(x, axis=1),
            ops.mean(cepstrum, axis=1),
            ops.std(cepstrum, axis=1),
            ops.mean(change, axis=1),
            ops.std(change, axis=1),
            ops.mean(pattern, axis=1),
            ops.std(pattern, axis=1),
        ]
        return ops.concatenate(parts, axis=1)

    def get_config(self) -> dict:
        return super().get_config() | {
            "patch_frames": self.patch_frames,
            "patch_pool": self.patch_pool,
            "n_mfcc": self.n_mfcc,
        }


def _ceil_div(a: int, b: int) -> int:
    return -(-int(a) // int(b))


def fit_discriminant(
    x: np.ndarray, y: np.ndarray, num_classes: int, settings: SummarySettings
) -> keras.Model:
    """Shrinkage LDA on the clip summaries of x [N, frames, n_mels, 1] with labels y in 0..num_classes-1,
    as a Keras model x -> (embedding [B, min(num_classes - 1, features)], logits [B, num_classes])."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    f32 = {"dtype": "float32"}  # whatever the global policy (see cnn.build_cnn)
    x_in = keras.Input(tuple(x.shape[1:]), name="log_mel", dtype="float32")
    summary = ClipSummary(settings.patch_frames, settings.patch_pool, settings.n_mfcc, name="summary", **f32)(
        x_in
    )
    features = np.asarray(keras.Model(x_in, summary)(np.asarray(x, np.float32)), np.float64)
    mean, std = features.mean(axis=0), features.std(axis=0)
    std = np.where(std > 1e-6, std, 1.0)  # a constant feature (silence shifted in) carries nothing
    present = np.unique(y)
    if len(present) < 2:
        raise ValueError(f"the discriminant model needs at least 2 classes in its rows, got {len(present)}")
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto")
    with warnings.catch_warnings():  # collinear summaries: shrinkage is there for exactly that
        warnings.simplefilter("ignore", UserWarning)
        lda.fit((features - mean) / std, y)
    # The class posteriors from LDA's linear decision function (softmax of [0, d] for two classes is
    # sklearn's sigmoid of d); the embedding from the discriminant directions, Sw-orthonormal (scipy's
    # generalised eigh).
    dims = min(len(present) - 1, features.shape[1])
    coef = np.zeros((num_classes, features.shape[1]))
    intercept = np.full(num_classes, _ABSENT_CLASS_LOGIT)
    if len(present) == 2:  # sklearn keeps one row, the second class's logit minus the first's
        coef[present[1]], intercept[present] = lda.coef_[0], (0.0, lda.intercept_[0])
    else:
        coef[present], intercept[present] = lda.coef_, lda.intercept_
    # standardisation folded into both heads: h = (f - mean) / std, so W h = (W / std) f - W (mean / std)
    scaled_coef = coef / std
    scalings = lda.scalings_[:, :dims] / std[:, None]
    embedding = keras.layers.Dense(dims, name="embedding", trainable=False, **f32)(summary)
    logits = keras.layers.Dense(num_classes, name="logits", trainable=False, **f32)(summary)
    model = keras.Model(x_in, [embedding, logits], name="quality_classifier_discriminant")
    model.get_layer("embedding").set_weights(
        [scalings.astype(np.float32), (-(mean / std) @ lda.scalings_[:, :dims]).astype(np.float32)]
    )
    model.get_layer("logits").set_weights(
        [scaled_coef.T.astype(np.float32), (intercept - scaled_coef @ mean).astype(np.float32)]
    )
    return model
