"""The audio features every metric is computed on: log-mel spectrograms, standardised per mel band.

Three views of one log-mel spectrogram [frames, n_mels] per clip:

* the whole (standardised) spectrogram is the classifier's input (wavegan/metrics/classifier.py);
* `mel_statistics`: mean and standard deviation over time of each band, 2 x n_mels numbers that
  describe timbre and loudness without labels (the label-free Fréchet distance);
* `spectral_vectors`: the spectrogram averaged into `time_segments` stretches of time and flattened
  (n_mels x time_segments), divided by sqrt(its length), for NDB's k-means and the nearest-neighbour
  distances: a Euclidean distance there is the root-mean-square difference per feature, in units of
  the training set's per-band standard deviation.

Computed in numpy with one FFT per batch of frames (librosa's mel filters): 1.4-2.2x faster than
librosa.feature.melspectrogram on 256-1024 clips (one evaluation scores 256), as
benchmarks/representation_speed.py measures on 2 shared cores; every evaluation during training pays
for it. tests/metrics/test_features.py checks it against librosa's on every frame.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import librosa
import numpy as np
import scipy.fft

from wavegan.representations.base import waveform_batch

__all__ = ["BandNormaliser", "MelFeatures", "align_onsets", "mel_statistics", "spectral_vectors"]

_LOG_FLOOR = 1e-6  # log(power + 1e-6): silence sits at -13.8, far below any real note
_CHUNK = 128  # clips per FFT batch: bounds memory of the framed copies


@dataclass(frozen=True)
class MelFeatures:
    """Log-mel settings for one data set; the STFT shrinks for very short slices so it always fits."""

    sample_rate: int
    slice_len: int
    n_fft: int = 512
    hop_length: int = 256
    n_mels: int = 64
    time_segments: int = 16
    align_onset: bool = True

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None, sample_rate: int, slice_len: int) -> MelFeatures:
        cfg = dict(cfg or {})
        n_fft = min(int(cfg.get("n_fft", 512)), _largest_power_of_two(slice_len))
        hop = min(int(cfg.get("hop_length", 256)), max(1, n_fft // 2))
        return cls(
            sample_rate=int(sample_rate),
            slice_len=int(slice_len),
            n_fft=n_fft,
            hop_length=hop,
            n_mels=int(cfg.get("n_mels", 64)),
            time_segments=int(cfg.get("time_segments", 16)),
            align_onset=bool(cfg.get("align_onset", True)),
        )

    @property
    def n_frames(self) -> int:
        return 1 + (self.slice_len - self.n_fft) // self.hop_length

    def _filters(self) -> np.ndarray:
        with warnings.catch_warnings():  # short FFTs leave some of many mel bands empty: harmless here
            warnings.simplefilter("ignore", UserWarning)
            return librosa.filters.mel(sr=self.sample_rate, n_fft=self.n_fft, n_mels=self.n_mels).astype(
                np.float32
            )

    def log_mel(self, waveforms: np.ndarray) -> np.ndarray:
        """log(mel power + 1e-6) of waveforms [N, slice_len] as float32 [N, frames, n_mels]."""
        y = waveform_batch(waveforms, self.slice_len)
        window = librosa.filters.get_window("hann", self.n_fft, fftbins=True).astype(np.float32)
        filters_t = self._filters().T
        out = np.empty((len(y), self.n_frames, self.n_mels), np.float32)
        for start in range(0, len(y), _CHUNK):
            frames = np.lib.stride_tricks.sliding_window_view(y[start : start + _CHUNK], self.n_fft, axis=-1)
            frames = frames[:, :: self.hop_length][:, : self.n_frames]
            spectrum = scipy.fft.rfft(frames * window, axis=-1)
            power = np.square(spectrum.real) + np.square(spectrum.imag)
            out[start : start + _CHUNK] = np.log(power @ filters_t + np.float32(_LOG_FLOOR))
        return align_onsets(out) if self.align_onset else out


def align_onsets(log_mels: np.ndarray, margin: int = 2) -> np.ndarray:
    """Shift each clip's log-mel [N, frames, n_mels] left so that its onset sits `margin` frames from
    the start; the frames shifted in at the end are silence (the log floor).

    The onset is the first frame whose mean log-mel crosses half-way from the clip's quietest to its
    loudest frame. Why: a word in a recording, or a note a generator places late, is the same sound
    wherever it starts. Without this, a spectrogram classifier on a small folder of words with random
    lead-ins learns the lead-in (5-fold accuracy 0.69 on 140 eSpeak words with a linear model on the
    time-segment vectors; 0.85 aligned), and NDB bins and nearest-neighbour distances split one sound
    into many by its start time. Clips that start at once (the built-in notes) are left as they are.
    """
    x = np.asarray(log_mels, dtype=np.float32)
    if x.ndim != 3 or x.shape[1] < 2:
        return x
    loudness = x.mean(axis=2)  # [N, frames]
    low, high = loudness.min(axis=1, keepdims=True), loudness.max(axis=1, keepdims=True)
    onset = np.argmax(loudness > low + 0.5 * (high - low), axis=1)  # flat clips: 0
    shift = np.maximum(onset - margin, 0)
    source = np.arange(x.shape[1])[None, :] + shift[:, None]  # [N, frames]
    inside = source < x.shape[1]
    shifted = np.take_along_axis(x, np.minimum(source, x.shape[1] - 1)[..., None], axis=1)
    return np.where(inside[..., None], shifted, np.float32(np.log(_LOG_FLOOR))).astype(np.float32)


@dataclass
class BandNormaliser:
    """Per-mel-band mean and standard deviation of the training split's log-mels."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, log_mels: np.ndarray) -> BandNormaliser:
        flat = np.asarray(log_mels, np.float64).reshape(-1, log_mels.shape[-1])
        std = flat.std(axis=0)
        return cls(flat.mean(axis=0).astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32))

    def __call__(self, log_mels: np.ndarray) -> np.ndarray:
        return ((log_mels - self.mean) / self.std).astype(np.float32, copy=False)


def mel_statistics(normalised: np.ndarray) -> np.ndarray:
    """[N, 2 * n_mels]: each band's mean and standard deviation over time."""
    return np.concatenate([normalised.mean(axis=1), normalised.std(axis=1)], axis=1).astype(np.float32)


def spectral_vectors(normalised: np.ndarray, time_segments: int) -> np.ndarray:
    """[N, segments * n_mels]: time averaged into (at most) `time_segments` stretches, flattened and
    divided by sqrt(length), so Euclidean distances are RMS differences per feature."""
    n, frames, mels = normalised.shape
    segments = max(1, min(int(time_segments), frames))
    edges = np.linspace(0, frames, segments + 1).round().astype(int)
    pooled = np.stack(
        [normalised[:, a:b].mean(axis=1) for a, b in zip(edges[:-1], edges[1:], strict=True)], 1
    )
    flat = pooled.reshape(n, -1)
    return (flat / np.sqrt(flat.shape[1])).astype(np.float32)


def _largest_power_of_two(n: int) -> int:
    return 1 << (max(1, int(n)).bit_length() - 1)
