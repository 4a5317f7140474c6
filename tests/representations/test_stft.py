"""The hand-written STFT and Griffin-Lim of wavegan/representations/stft.py against librosa.

They exist only for speed (benchmarks/representation_speed.py), so they must compute what librosa
computes: the STFT everywhere, Griffin-Lim wherever librosa's own is well defined. Test signals:
decaying tones over faint noise, peak about 0.5.
"""

import librosa
import numpy as np
import pytest

from wavegan.representations.stft import _frames_stft, _stft_window, griffin_lim

N_FFT, HOP, L = 256, 128, 8192
GL_ITERS = 8
GL_ATOL = 2e-5  # float32 rounding, amplified a little by the momentum over 8 iterations


@pytest.fixture(scope="module")
def tones() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(L) / 16000
    clips = [0.3 * np.sin(2 * np.pi * f * t) * np.exp(-3 * t) for f in (220.0, 330.0, 440.0, 660.0)]
    return (np.stack(clips) + 0.01 * rng.standard_normal((4, L))).astype(np.float32)


def librosa_magnitude(y: np.ndarray, center: bool) -> np.ndarray:
    """|STFT| [N, bins, frames] as librosa computes it (zero padding when centred, as ours)."""
    return np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, center=center, pad_mode="constant"))


@pytest.mark.parametrize("center", [False, True])
def test_stft_equals_librosa_stft_on_every_frame(tones, center):
    expected = np.swapaxes(librosa.stft(tones, n_fft=N_FFT, hop_length=HOP, center=center), 1, 2)
    ours = _frames_stft(tones, _stft_window("hann", N_FFT, N_FFT), N_FFT, HOP, center, expected.shape[1])
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6 * np.abs(expected).max())


def test_griffin_lim_equals_librosa_griffinlim_everywhere_when_centred(tones):
    # Centred, the samples librosa's normaliser cannot handle are padding that both crop: same result.
    magnitude = librosa_magnitude(tones, center=True)
    expected = librosa.griffinlim(
        magnitude, n_iter=GL_ITERS, hop_length=HOP, n_fft=N_FFT, center=True, length=L, init=None,
        pad_mode="constant",
    )  # fmt: skip
    ours = griffin_lim(np.swapaxes(magnitude, 1, 2), GL_ITERS, N_FFT, HOP, center=True, length=L, init=None)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=GL_ATOL)


def test_griffin_lim_equals_librosa_griffinlim_on_interior_samples_uncentred(tones):
    """Uncentred, librosa divides the first and last samples by a window sum near 0 (values of ~1000 on
    this audio); ours fades them instead. Each iteration carries that difference about one frame
    inwards, so the samples more than GL_ITERS frames from either end must agree."""
    magnitude = librosa_magnitude(tones, center=False)
    expected = librosa.griffinlim(
        magnitude, n_iter=GL_ITERS, hop_length=HOP, n_fft=N_FFT, center=False, length=L, init=None
    )
    ours = griffin_lim(np.swapaxes(magnitude, 1, 2), GL_ITERS, N_FFT, HOP, center=False, length=L, init=None)
    interior = slice(GL_ITERS * N_FFT, L - GL_ITERS * N_FFT)
    np.testing.assert_allclose(ours[:, interior], expected[:, interior], rtol=0, atol=GL_ATOL)
    # ... and why ours: librosa's edges blow up, ours stay at the audio's level.
    assert np.abs(expected).max() > 100 * np.abs(tones).max()
    assert np.abs(ours).max() < 1.5 * np.abs(tones).max()


def test_griffin_lim_rejects_an_unknown_init(tones):
    with pytest.raises(ValueError, match="init"):
        griffin_lim(np.ones((1, 3, N_FFT // 2 + 1), np.float32), 1, N_FFT, HOP, init="zeros")
