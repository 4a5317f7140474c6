"""The features every metric sees: log-mels as librosa computes them; onset alignment makes a sound the
same wherever it starts."""

import warnings

import librosa
import numpy as np
import pytest

from wavegan.metrics.features import MelFeatures, align_onsets, spectral_vectors

SR, N = 16000, 16384


def burst(start_s: float, freq: float = 440.0, length_s: float = 0.4) -> np.ndarray:
    """A decaying harmonic note with a 10 ms attack and a smooth end (no clicks), over faint noise."""
    t = np.arange(N) / SR - start_s
    attack, fade = np.clip(t / 0.01, 0, 1), np.clip((length_s - t) / 0.05, 0, 1)
    envelope = attack * np.exp(-4 * np.clip(t, 0, None)) * fade
    tone = sum(np.sin(2 * np.pi * k * freq * t) / k for k in range(1, 9))
    noise = 1e-4 * np.random.default_rng(0).standard_normal(N)
    return (0.3 * envelope * tone + noise).astype(np.float32)


def test_a_sound_that_starts_later_has_the_same_aligned_features():
    clips = np.stack([burst(0.0), burst(0.27), burst(0.0, freq=880.0)])
    aligned = spectral_vectors(MelFeatures(SR, N).log_mel(clips), 16)
    raw = spectral_vectors(MelFeatures(SR, N, align_onset=False).log_mel(clips), 16)
    later = np.linalg.norm(aligned[0] - aligned[1])
    other_pitch = np.linalg.norm(aligned[0] - aligned[2])
    assert later < 0.5 * other_pitch  # same sound: close; a different sound stays far
    assert np.linalg.norm(raw[0] - raw[1]) > 2 * later  # without alignment the start time dominates


def test_clips_that_start_at_once_and_flat_clips_are_left_as_they_are():
    mel = MelFeatures(SR, N, align_onset=False)
    log_mels = mel.log_mel(np.stack([burst(0.0), np.full(N, 0.1, np.float32)]))
    np.testing.assert_array_equal(align_onsets(log_mels), log_mels)


def test_shifted_in_frames_are_silence():
    log_mels = MelFeatures(SR, N, align_onset=False).log_mel(burst(0.5)[None])
    aligned = align_onsets(log_mels)
    assert aligned.shape == log_mels.shape
    assert np.allclose(aligned[0, -20:], np.log(1e-6))
    assert aligned[0, 2:6].mean() > log_mels[0, :20].mean() + 5  # the onset now starts the clip


@pytest.mark.parametrize(("slice_len", "n_mels"), [(N, 64), (4096, 40), (300, 64)])
def test_log_mel_equals_librosa_melspectrogram(slice_len, n_mels):
    """Every frame (uncentred, so there are no padded edges to differ on), in several chunks of clips,
    to 1e-3 in log units, i.e. 0.1 % of the mel power (float32 rounding in quiet bands reaches 2e-4).
    300 samples: n_fft shrinks to 256 and some bands come out empty."""
    clips = np.stack([burst(0.0, f)[:slice_len] for f in np.geomspace(60.0, 4000.0, 300)])
    mel = MelFeatures.from_config({"n_mels": n_mels}, SR, slice_len)
    with warnings.catch_warnings():  # short FFTs leave some bands empty: librosa warns
        warnings.simplefilter("ignore", UserWarning)
        power = librosa.feature.melspectrogram(
            y=clips, sr=SR, n_fft=mel.n_fft, hop_length=mel.hop_length, n_mels=n_mels, center=False
        )
    expected = np.log(np.swapaxes(power, 1, 2) + 1e-6)
    ours = MelFeatures(SR, slice_len, mel.n_fft, mel.hop_length, n_mels, align_onset=False).log_mel(clips)
    assert ours.shape == expected.shape == (300, mel.n_frames, n_mels)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-3)
