"""Log-magnitude STFT representations (the seed's MinMaxScaler spectrogram and SpecGAN's), inverted
with Griffin-Lim."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.signal
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import MinMaxScaler

from wavegan.errors import ConfigError
from wavegan.representations.base import (
    Representation,
    at_least,
    waveform_batch,
)
from wavegan.representations.stft import griffin_lim, log_magnitude_spectrogram


class _StftRepresentation(Representation):
    """Shared STFT front end: log-magnitude [time, freq] features, Griffin-Lim inverse.

    Subclasses supply only the per-frequency-bin normaliser (``_fit_normaliser``, ``normalize``,
    ``denormalize``).
    """


    def __init__(self, params: Mapping[str, Any], slice_len: int, sample_rate: int) -> None:
        super().__init__(params, slice_len, sample_rate)
        p = self.params
        self.n_fft = at_least(p, "n_fft", 2, "Fix: use a power of two such as 256.")
        self.hop_length = at_least(p, "hop_length", 1, "Fix: use n_fft / 2 (128 for n_fft 256).")
        self.win_length = at_least(p, "win_length", 1, "Fix: set it equal to n_fft.")
        if self.win_length > self.n_fft:
            raise ConfigError(
                f"preprocessing.win_length={self.win_length} exceeds preprocessing.n_fft={self.n_fft}. "
                "Fix: set win_length <= n_fft (usually equal)."
            )
        self.window = p["window"]
        try:
            scipy.signal.get_window(self.window, self.win_length)
        except (ValueError, TypeError) as err:
            raise ConfigError(
                f"preprocessing.window={self.window!r} is not a window scipy knows ({err}). Fix: use 'hann'."
            ) from None
        self.center = p["center"]
        self.drop_nyquist = p["drop_nyquist"]
        self.n_frames = at_least(
            p, "n_frames", 1, "Fix: set it to the STFT frame count, e.g. 128 for 16384 samples at hop 128."
        )
        self.log_eps = at_least(p, "log_eps", 0, "Fix: use 1e-6 (SpecGAN).", strict=True)
        self.griffin_lim_iters = at_least(p, "griffin_lim_iters", 1, "Fix: use 16 (SpecGAN) or 32.")
        if not self.center and slice_len < self.n_fft:
            raise ConfigError(
                f"preprocessing.n_fft={self.n_fft} is longer than slice_len={slice_len}, so not even one "
                "STFT frame fits. Fix: lower preprocessing.n_fft (and win_length) or raise slice_len."
            )
        # Frames the STFT really produces; the rest up to n_frames is padding.
        if self.center:
            self.natural_frames = 1 + slice_len // self.hop_length
        else:
            self.natural_frames = 1 + (slice_len - self.n_fft) // self.hop_length
        self.n_bins = self.n_fft // 2 + (0 if self.drop_nyquist else 1)
        self.log_floor = float(np.log(np.float32(self.log_eps)))

    # -- front end --------------------------------------------------------------------------------

    def feature_shape(self) -> tuple[int, ...]:
        return (self.n_frames, self.n_bins, 1)

    def log_magnitude(self, waveforms: np.ndarray) -> np.ndarray:
        """Unnormalised log-magnitudes [N, n_frames, n_bins], padded with log(log_eps) or cropped."""
        y = waveform_batch(waveforms, self.slice_len)
        logmag = log_magnitude_spectrogram(
            y,
            self.n_fft,
            self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=self.center,
            log_eps=self.log_eps,
            drop_nyquist=self.drop_nyquist,
        )
        frames = logmag.shape[1]
        if frames >= self.n_frames:
            return np.ascontiguousarray(logmag[:, : self.n_frames])
        # Padding with the log floor means "silence", the same value a silent frame would have.
        pad = np.full((logmag.shape[0], self.n_frames - frames, logmag.shape[2]), self.log_floor, np.float32)
        return np.concatenate([logmag, pad], axis=1)

    def _training_frames(self, waveforms: np.ndarray) -> np.ndarray:
        """All real (non-padding) frames of all clips as [frames, bins] rows for the normaliser."""
        logmag = self.log_magnitude(waveforms)[:, : min(self.natural_frames, self.n_frames)]
        return logmag.reshape(-1, self.n_bins)

    def magnitude_to_waveform(self, magnitude: np.ndarray) -> np.ndarray:
        """Griffin-Lim on linear magnitudes [N, frames, n_bins] -> float32 [N, slice_len]."""
        mag = np.asarray(magnitude, dtype=np.float32)
        # Padding frames carried no signal; giving them to Griffin-Lim would only add energy past
        # the end of the clip (or beyond what the STFT of slice_len samples can have).
        mag = mag[:, : min(self.natural_frames, mag.shape[1])]
        if self.drop_nyquist:
            mag = np.concatenate([mag, np.zeros(mag.shape[:2] + (1,), np.float32)], axis=2)
        return griffin_lim(
            mag,
            n_iter=self.griffin_lim_iters,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=self.center,
            length=self.slice_len,
        )

    # -- normaliser hooks -------------------------------------------------------------------------

    def _fit_normaliser(self, frames: np.ndarray) -> None:
        raise NotImplementedError

    def normalize(self, log_magnitude: np.ndarray) -> np.ndarray:
        """[..., n_bins] log-magnitudes -> normalised values (NOT clipped)."""
        raise NotImplementedError

    def denormalize(self, features: np.ndarray) -> np.ndarray:
        """Exact inverse of ``normalize`` (clipping is not undone, it cannot be)."""
        raise NotImplementedError

    def _require_fitted(self, what: str) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"{self.name} representation: call fit() on the training waveforms before {what}() "
                f"(or Representation.load() a saved one); its per-frequency normaliser is not fitted."
            )

    # -- interface --------------------------------------------------------------------------------

    def fit(self, waveforms: np.ndarray) -> Representation:
        frames = self._training_frames(waveforms)
        if frames.shape[0] == 0:
            raise ValueError(f"{self.name}.fit needs at least one training clip")
        self._fit_normaliser(frames)
        return self

    def transform(self, waveforms: np.ndarray) -> np.ndarray:
        self._require_fitted("transform")
        logmag = self.log_magnitude(waveforms)
        feats = np.clip(self.normalize(logmag), -1.0, 1.0).astype(np.float32, copy=False)
        return feats[..., None]

    def inverse(self, features: np.ndarray) -> np.ndarray:
        self._require_fitted("inverse")
        x = np.asarray(features, dtype=np.float32)
        if x.ndim == 4 and x.shape[-1] == 1:
            x = x[..., 0]
        if x.ndim != 3 or x.shape[2] != self.n_bins:
            raise ValueError(f"expected features of shape [N, frames, {self.n_bins}, 1], got {x.shape}")
        logmag = self.denormalize(x)
        # exp(log(|X| + eps)) - eps recovers |X|; clamp because a generator can emit values below
        # the log floor, which would give negative magnitudes.
        mag = np.maximum(np.exp(logmag) - np.float32(self.log_eps), 0.0).astype(np.float32, copy=False)
        return self.magnitude_to_waveform(mag)


class SpectrogramRepresentation(_StftRepresentation):
    """Log-magnitude STFT scaled per frequency bin to [-1, 1] by sklearn's MinMaxScaler (seed notes)."""

    name = "spectrogram"

    _STATE_KEYS = ("min_", "scale_", "data_min_", "data_max_", "data_range_", "n_samples_seen_")

    def __init__(self, params: Mapping[str, Any], slice_len: int, sample_rate: int) -> None:
        super().__init__(params, slice_len, sample_rate)
        self.scaler: MinMaxScaler | None = None

    @property
    def is_fitted(self) -> bool:
        return self.scaler is not None

    def _new_scaler(self) -> MinMaxScaler:
        return MinMaxScaler(feature_range=(-1.0, 1.0))

    def _fit_normaliser(self, frames: np.ndarray) -> None:
        # Fitted on float64 so the scaler's attributes don't depend on float32 summation order.
        self.scaler = self._new_scaler().fit(frames.astype(np.float64))

    def normalize(self, log_magnitude: np.ndarray) -> np.ndarray:
        self._require_fitted("normalize")
        x = np.asarray(log_magnitude)
        flat = self.scaler.transform(x.reshape(-1, self.n_bins).astype(np.float64))
        return flat.reshape(x.shape).astype(np.float32)

    def denormalize(self, features: np.ndarray) -> np.ndarray:
        self._require_fitted("denormalize")
        x = np.asarray(features)
        flat = self.scaler.inverse_transform(x.reshape(-1, self.n_bins).astype(np.float64))
        return flat.reshape(x.shape).astype(np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(getattr(self.scaler, k)) for k in self._STATE_KEYS}

    def _set_state(self, state: Mapping[str, np.ndarray]) -> None:
        missing = [k for k in self._STATE_KEYS if k not in state]
        if missing:
            raise ValueError(f"saved spectrogram scaler state lacks {missing}")
        scaler = self._new_scaler()
        for key in self._STATE_KEYS:
            value = state[key]
            setattr(scaler, key, value.item() if value.ndim == 0 else value)
        scaler.n_features_in_ = int(state["min_"].shape[0])
        if scaler.n_features_in_ != self.n_bins:
            raise ValueError(
                f"saved scaler has {scaler.n_features_in_} bins, representation has {self.n_bins}"
            )
        self.scaler = scaler


class SpecGANRepresentation(_StftRepresentation):
    """SpecGAN: per-bin (x - mean) / std / clip_stds, clipped to [-1, 1] (Donahue et al. 2019)."""

    name = "specgan"

    def __init__(self, params: Mapping[str, Any], slice_len: int, sample_rate: int) -> None:
        super().__init__(params, slice_len, sample_rate)
        self.clip_stds = at_least(self.params, "clip_stds", 0, "Fix: use 3 (SpecGAN).", strict=True)
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    @property
    def is_fitted(self) -> bool:
        return self.mean is not None and self.std is not None

    def _fit_normaliser(self, frames: np.ndarray) -> None:
        f64 = frames.astype(np.float64)
        self.mean = f64.mean(axis=0)
        std = f64.std(axis=0)
        # A bin that never varies (e.g. all-silent training data) would divide by zero.
        self.std = np.where(std > 1e-8, std, 1.0)

    def normalize(self, log_magnitude: np.ndarray) -> np.ndarray:
        self._require_fitted("normalize")
        x = np.asarray(log_magnitude, dtype=np.float64)
        return ((x - self.mean) / (self.std * self.clip_stds)).astype(np.float32)

    def denormalize(self, features: np.ndarray) -> np.ndarray:
        self._require_fitted("denormalize")
        x = np.asarray(features, dtype=np.float64)
        return (x * (self.std * self.clip_stds) + self.mean).astype(np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "std": self.std}

    def _set_state(self, state: Mapping[str, np.ndarray]) -> None:
        if "mean" not in state or "std" not in state:
            raise ValueError("saved specgan state lacks mean/std")
        mean, std = np.asarray(state["mean"], np.float64), np.asarray(state["std"], np.float64)
        if mean.shape != (self.n_bins,) or std.shape != (self.n_bins,):
            raise ValueError(
                f"saved specgan moments have shape {mean.shape}, representation has {self.n_bins} bins"
            )
        self.mean, self.std = mean, std


