"""Audio representations a GAN trains on, and their inverses back to waveforms.

Three representations, selected by the `preprocessing.name` config key:

* ``waveform``    -- raw audio, features [slice_len, 1] (WaveGAN).
* ``spectrogram`` -- log-magnitude STFT scaled to [-1, 1] per frequency bin by scikit-learn's
  MinMaxScaler (the project's seed notes), inverted with Griffin-Lim.
* ``specgan``     -- the same log-magnitude STFT, standardised per frequency bin, divided by
  ``clip_stds`` (3) and clipped to [-1, 1] (SpecGAN, Donahue et al. 2019), inverted with Griffin-Lim.

Spectrogram features are oriented **[time, frequency, 1]** like SpecGAN: axis 0 is STFT frames
(``n_frames``), axis 1 is frequency bins (low to high, Nyquist dropped by default). At the defaults
(16384 samples, n_fft 256, hop 128) that is 128 x 128 x 1.

This module deliberately does not import TensorFlow: it runs in data-preparation and evaluation
processes that should not pay for (or depend on) a TF import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import librosa
import numpy as np
import scipy.fft
import scipy.signal
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import MinMaxScaler

from wavegan.errors import ConfigError

__all__ = [
    "Representation",
    "WaveformRepresentation",
    "SpectrogramRepresentation",
    "SpecGANRepresentation",
    "build_representation",
    "spectral_convergence",
    "griffin_lim",
    "magnitude_spectrogram",
    "log_magnitude_spectrogram",
    "REPRESENTATIONS",
]

# File names inside a save directory. Prefixed so they can share a folder with checkpoints.
_META_FILE = "preprocessing.json"
_STATE_FILE = "preprocessing_state.npz"
# Settings that may differ between a saved representation and the config that loads it.
_FREE_ON_LOAD = frozenset({"griffin_lim_iters"})

# Bounds peak memory of STFT / Griffin-Lim on large batches (2048 clips of complex STFTs would
# otherwise need several GB at once); each chunk is still processed as one vectorised batch.
_CHUNK = 256

# Griffin-Lim starts from random phases; a fixed seed makes inverse() deterministic.
_GRIFFIN_LIM_SEED = 0


# --------------------------------------------------------------------------------------------------
# Shared STFT helpers
# --------------------------------------------------------------------------------------------------


def magnitude_spectrogram(
    waveforms: np.ndarray,
    n_fft: int = 256,
    hop_length: int = 128,
    *,
    win_length: int | None = None,
    window: str = "hann",
    center: bool = False,
) -> np.ndarray:
    """|STFT| of ``waveforms`` [..., samples] as float32 [..., frames, bins] (time x frequency)."""
    y = np.asarray(waveforms, dtype=np.float32)
    out = []
    flat = y.reshape(-1, y.shape[-1])
    for start in range(0, flat.shape[0], _CHUNK):
        stft = librosa.stft(
            flat[start : start + _CHUNK],
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window=window,
            center=center,
        )
        out.append(np.abs(stft).astype(np.float32, copy=False))
    mag = np.concatenate(out, axis=0) if out else np.zeros((0, n_fft // 2 + 1, 0), np.float32)
    # librosa gives [.., freq, time]; models and SpecGAN use [.., time, freq].
    mag = np.swapaxes(mag, -1, -2)
    return mag.reshape(*y.shape[:-1], *mag.shape[-2:])


def log_magnitude_spectrogram(
    waveforms: np.ndarray,
    n_fft: int = 256,
    hop_length: int = 128,
    *,
    win_length: int | None = None,
    window: str = "hann",
    center: bool = False,
    log_eps: float = 1e-6,
    drop_nyquist: bool = False,
) -> np.ndarray:
    """log(|STFT| + log_eps) of ``waveforms`` [..., samples] as float32 [..., frames, bins].

    Time x frequency orientation, same as the spectrogram features. ``drop_nyquist`` removes the
    last bin, which SpecGAN drops to make the frequency axis a power of two.
    """
    mag = magnitude_spectrogram(
        waveforms, n_fft, hop_length, win_length=win_length, window=window, center=center
    )
    if drop_nyquist:
        mag = mag[..., :-1]
    return np.log(mag + np.float32(log_eps)).astype(np.float32, copy=False)


def _stft_window(window: str, win_length: int, n_fft: int) -> np.ndarray:
    # Same construction as librosa.stft, so our frames match librosa's bit for bit in layout.
    return librosa.util.pad_center(
        librosa.filters.get_window(window, win_length, fftbins=True), size=n_fft
    ).astype(np.float32)


def _frames_stft(
    y: np.ndarray, fft_window: np.ndarray, n_fft: int, hop_length: int, center: bool, frames: int
) -> np.ndarray:
    """STFT of [N, samples] as complex64 [N, frames, bins] (time-major, unlike librosa).

    Griffin-Lim runs dozens of STFT/ISTFT pairs; keeping its arrays time-major end to end saves
    the transposing copies that librosa's [.., freq, time] layout would cost on every iteration.
    """
    if center:
        # librosa >= 0.10 pads with zeros ("constant") by default; match it.
        y = np.pad(y, ((0, 0), (n_fft // 2, n_fft // 2)))
    framed = np.lib.stride_tricks.sliding_window_view(y, n_fft, axis=-1)[:, ::hop_length][:, :frames]
    return scipy.fft.rfft(framed * fft_window, axis=-1, workers=-1)


def _overlap_add_istft(
    spec: np.ndarray, fft_window: np.ndarray, denom: np.ndarray, n_fft: int, hop_length: int
) -> np.ndarray:
    """Inverse of ``_frames_stft``: [N, frames, bins] -> [N, n_fft + hop * (frames - 1)] (uncentred)."""
    n, frames, _ = spec.shape
    seg = scipy.fft.irfft(spec, n=n_fft, axis=-1, workers=-1) * fft_window  # [N, frames, n_fft]
    out = np.zeros((n, n_fft + hop_length * (frames - 1)), np.float32)
    if n_fft % hop_length == 0:
        # Block j (one hop long) of every frame lands on one contiguous run of the output, so
        # overlap-add is n_fft/hop vectorised adds instead of a Python loop over frames.
        k = n_fft // hop_length
        blocks = seg.reshape(n, frames, k, hop_length)
        for j in range(k):
            out[:, j * hop_length : j * hop_length + frames * hop_length] += blocks[:, :, j].reshape(n, -1)
    else:
        for t in range(frames):
            out[:, t * hop_length : t * hop_length + n_fft] += seg[:, t]
    out /= denom
    return out


def griffin_lim(
    magnitude: np.ndarray,
    n_iter: int,
    n_fft: int = 256,
    hop_length: int = 128,
    *,
    win_length: int | None = None,
    window: str = "hann",
    center: bool = False,
    length: int | None = None,
    momentum: float = 0.99,
    random_state: int = _GRIFFIN_LIM_SEED,
) -> np.ndarray:
    """Fast Griffin-Lim (Perraudin et al. 2013, as in librosa) on magnitudes [N, frames, bins].

    ``magnitude`` must be the |STFT| librosa.stft would give with the same parameters (time-major,
    all n_fft//2+1 bins). Returns float32 [N, length]; like any Griffin-Lim output it may exceed
    [-1, 1] slightly, since only magnitudes, not peaks, are matched.

    Why not ``librosa.griffinlim``: its inverse STFT divides every sample by that sample's window
    sum-of-squares, which with ``center=False`` tends to zero at the clip's first and last samples;
    the magnitudes hardly constrain those samples, so Griffin-Lim's inconsistent estimates get
    amplified there (peaks of ~100 on [-1, 1] audio and spectral convergence > 1, measured on test
    tones). Here the normaliser is the interior (hop-periodic) sum of squared windows, as
    TensorFlow's ``inverse_stft_window_fn`` (used by the SpecGAN reference) does: exact in the
    interior, a fade over the first/last hop instead of a blow-up. With ``center=True`` the faded
    samples are padding and get cropped, so it is exact everywhere.
    """
    mag = np.asarray(magnitude, dtype=np.float32)
    if mag.ndim != 3 or mag.shape[2] != n_fft // 2 + 1:
        raise ValueError(f"expected magnitudes [N, frames, {n_fft // 2 + 1}], got {mag.shape}")
    n, frames, _ = mag.shape
    win_length = n_fft if win_length is None else win_length
    fft_window = _stft_window(window, win_length, n_fft)
    periodic = np.zeros(hop_length, np.float64)
    for start in range(0, n_fft, hop_length):
        block = fft_window[start : start + hop_length].astype(np.float64) ** 2
        periodic[: block.shape[0]] += block
    full_len = n_fft + hop_length * (frames - 1)
    denom = np.resize(periodic, full_len)
    # Where no window reaches (hop > win_length) there is nothing to normalise; avoid 0/0.
    denom = np.where(denom > 1e-10, denom, 1.0).astype(np.float32)
    offset = n_fft // 2 if center else 0
    if length is None:
        length = full_len - 2 * offset

    def istft(spec: np.ndarray) -> np.ndarray:
        y = _overlap_add_istft(spec, fft_window, denom, n_fft, hop_length)[:, offset : offset + length]
        if y.shape[1] < length:
            y = np.pad(y, ((0, 0), (0, length - y.shape[1])))
        return y

    # One random initial phase pattern shared by every clip: a clip's result then does not depend
    # on which batch or chunk it arrives in, so evaluations are reproducible clip by clip.
    rng = np.random.default_rng(random_state)
    initial_angles = np.exp(2j * np.pi * rng.random(mag.shape[1:])).astype(np.complex64)
    out = []
    for start in range(0, n, _CHUNK):
        s = mag[start : start + _CHUNK]
        angles = np.broadcast_to(initial_angles, s.shape)
        previous = None
        for _ in range(n_iter):
            rebuilt = _frames_stft(istft(s * angles), fft_window, n_fft, hop_length, center, frames)
            if previous is None:
                angles = rebuilt.copy()
            else:
                # angles = rebuilt - momentum/(1+momentum) * previous, in place in previous's
                # buffer: element-wise passes over complex arrays are a large share of run time.
                np.multiply(previous, np.float32(-momentum / (1 + momentum)), out=previous)
                previous += rebuilt
                angles = previous
            magnitude_now = np.abs(angles)
            magnitude_now += np.float32(1e-16)
            angles /= magnitude_now
            previous = rebuilt
        out.append(istft(s * angles))
    if not out:
        return np.zeros((0, length), np.float32)
    return np.concatenate(out, axis=0)


def spectral_convergence(
    reference: np.ndarray,
    estimate: np.ndarray,
    n_fft: int = 256,
    hop_length: int = 128,
) -> float:
    """Mean over examples of ||S_ref - S_est||_F / ||S_ref||_F on STFT magnitudes.

    0 is a perfect magnitude match (phase is ignored); 1 is as far off as predicting silence.
    Uses a centred STFT so the first and last samples get full window weight.
    """
    ref = np.asarray(reference, dtype=np.float32)
    est = np.asarray(estimate, dtype=np.float32)
    if ref.shape != est.shape:
        raise ValueError(f"reference shape {ref.shape} != estimate shape {est.shape}")
    if ref.ndim == 1:
        ref, est = ref[None], est[None]
    s_ref = magnitude_spectrogram(ref, n_fft, hop_length, center=True).astype(np.float64)
    s_est = magnitude_spectrogram(est, n_fft, hop_length, center=True).astype(np.float64)
    s_ref = s_ref.reshape(s_ref.shape[0], -1)
    s_est = s_est.reshape(s_est.shape[0], -1)
    num = np.linalg.norm(s_ref - s_est, axis=1)
    # A silent reference would divide by zero; tiny floor keeps the metric finite.
    den = np.maximum(np.linalg.norm(s_ref, axis=1), 1e-12)
    return float(np.mean(num / den))


# --------------------------------------------------------------------------------------------------
# Config helpers
# --------------------------------------------------------------------------------------------------


def _as_dict(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    if cfg is None:
        return {}
    try:  # DictConfig -> plain dict with interpolations resolved
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return dict(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    return dict(cfg)


def _int_param(params: Mapping[str, Any], key: str, minimum: int, fix: str) -> int:
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"preprocessing.{key}={value!r} is invalid: must be an integer >= {minimum}. {fix}")
    return int(value)


def _float_param(params: Mapping[str, Any], key: str, fix: str) -> float:
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"preprocessing.{key}={value!r} is invalid: must be a number > 0. {fix}")
    return float(value)


def _bool_param(params: Mapping[str, Any], key: str) -> bool:
    value = params[key]
    if not isinstance(value, bool):
        raise ConfigError(f"preprocessing.{key}={value!r} is invalid: must be true or false.")
    return value


def _check_keys(name: str, params: Mapping[str, Any], allowed: Mapping[str, Any]) -> None:
    # A typo (e.g. `hop_lenght`) would otherwise silently fall back to a default.
    unknown = sorted(set(params) - set(allowed) - {"name"})
    if unknown:
        raise ConfigError(
            f"preprocessing.{unknown[0]} is not a setting of the '{name}' representation "
            f"(unknown keys: {unknown}). Valid keys: {sorted(allowed)}. Fix: remove or rename it."
        )


def _waveform_batch(waveforms: np.ndarray, slice_len: int) -> np.ndarray:
    """Accepts [N, slice_len] or [N, slice_len, 1]; returns float32 [N, slice_len]."""
    y = np.asarray(waveforms, dtype=np.float32)
    if y.ndim == 3 and y.shape[-1] == 1:
        y = y[..., 0]
    if y.ndim != 2 or y.shape[1] != slice_len:
        raise ValueError(
            f"expected waveforms of shape [N, {slice_len}] (or [N, {slice_len}, 1]), got {y.shape}"
        )
    return y


# --------------------------------------------------------------------------------------------------
# Representations
# --------------------------------------------------------------------------------------------------


class Representation:
    """What a GAN sees: ``transform`` waveforms into features in [-1, 1], ``inverse`` back to audio.

    Lifecycle: build (``build_representation``) -> ``fit`` on the training split -> ``transform`` /
    ``inverse`` -> ``save``; later ``load`` restores the fitted state without the training data.
    """

    name: ClassVar[str] = ""
    #: Config keys this representation accepts, with their defaults.
    defaults: ClassVar[dict[str, Any]] = {}
    #: Whether inverse(transform(x)) gives x back; if not, real clips are scored after that round trip
    #: (the ceiling a model on this representation can reach).
    is_identity: ClassVar[bool] = False

    def __init__(self, params: Mapping[str, Any], slice_len: int, sample_rate: int) -> None:
        self.params = dict(params)
        self.slice_len = slice_len
        self.sample_rate = sample_rate

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None, slice_len: int, sample_rate: int) -> Representation:
        raw = _as_dict(cfg)
        _check_keys(cls.name, raw, cls.defaults)
        params = {**cls.defaults, **{k: v for k, v in raw.items() if k != "name"}}
        if isinstance(slice_len, bool) or not isinstance(slice_len, int | np.integer) or slice_len < 1:
            raise ConfigError(f"slice_len={slice_len!r} is invalid: must be a positive integer.")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or sample_rate < 1:
            raise ConfigError(f"sample_rate={sample_rate!r} is invalid: must be a positive integer.")
        return cls(params, int(slice_len), int(sample_rate))

    # -- interface --------------------------------------------------------------------------------

    def fit(self, waveforms: np.ndarray) -> Representation:
        return self

    def transform(self, waveforms: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def inverse(self, features: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def feature_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def is_fitted(self) -> bool:
        return True

    # -- persistence ------------------------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": self.params,
            "slice_len": self.slice_len,
            "sample_rate": self.sample_rate,
        }

    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _set_state(self, state: Mapping[str, np.ndarray]) -> None:
        pass

    def save(self, directory: Path) -> None:
        """Writes the config and fitted state (plain JSON + .npz, no pickle) into ``directory``."""
        if not self.is_fitted:
            raise NotFittedError(
                f"{self.name} representation: call fit() on the training split before save()"
            )
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / _META_FILE).write_text(json.dumps(self._meta(), indent=2, sort_keys=True) + "\n")
        state = self._state()
        if state:
            np.savez(directory / _STATE_FILE, **state)

    @classmethod
    def load(
        cls, directory: Path, cfg: Mapping[str, Any] | None, slice_len: int, sample_rate: int
    ) -> Representation:
        """Restores a saved representation.

        ``cfg`` may be None to take the saved settings as they are; otherwise it must agree with
        them, because a model trained on one STFT cannot be decoded with another.
        """
        directory = Path(directory)
        meta_path = directory / _META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"no saved representation in {directory} (missing {_META_FILE})")
        meta = json.loads(meta_path.read_text())
        if cfg is None:
            cfg = {"name": meta["name"], **meta["params"]}
        rep = build_representation(cfg, slice_len, sample_rate)
        if cls is not Representation and not isinstance(rep, cls):
            raise ConfigError(
                f"preprocessing.name={rep.name!r} but {cls.__name__}.load was asked for '{cls.name}'. "
                f"Fix: set preprocessing.name={cls.name} or call Representation.load."
            )
        saved = Representation._meta_of(meta)
        current = Representation._meta_of(rep._meta())
        mismatched: dict[str, tuple[Any, Any]] = {}
        if saved.get("name") != current["name"]:
            mismatched["preprocessing.name"] = (saved.get("name"), current["name"])
        if saved.get("slice_len") != current["slice_len"]:
            mismatched["slice_len"] = (saved.get("slice_len"), current["slice_len"])
        saved_params = saved.get("params", {})
        for key in sorted(set(saved_params) | set(current["params"])):
            # Griffin-Lim iterations only affect inverse(), never the features the model saw, so
            # a loaded representation may decode with more or fewer. Sample rate is not compared
            # for the same reason (it changes no feature).
            if key not in _FREE_ON_LOAD and saved_params.get(key) != current["params"].get(key):
                mismatched[f"preprocessing.{key}"] = (saved_params.get(key), current["params"].get(key))
        if mismatched:
            label, (was, now) = next(iter(mismatched.items()))
            raise ConfigError(
                f"saved representation in {directory} does not match the config: {label} was {was!r}, "
                f"config has {now!r} (all differences, saved vs config: {mismatched}). Fix: use the "
                f"config the representation was fitted with, or pass cfg=None to take the saved one."
            )
        state_path = directory / _STATE_FILE
        if state_path.is_file():
            with np.load(state_path, allow_pickle=False) as data:
                rep._set_state({k: data[k] for k in data.files})
        if not rep.is_fitted:
            raise FileNotFoundError(
                f"{rep.name} representation in {directory} has no fitted state ({_STATE_FILE})"
            )
        return rep

    @staticmethod
    def _meta_of(meta: Mapping[str, Any]) -> dict[str, Any]:
        # JSON turns tuples into lists etc.; compare on the same footing as a fresh _meta().
        return json.loads(json.dumps(dict(meta)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(slice_len={self.slice_len}, params={self.params})"


class WaveformRepresentation(Representation):
    """Raw audio: features [slice_len, 1] in [-1, 1]; inverse drops the channel axis."""

    name = "waveform"
    defaults: ClassVar[dict[str, Any]] = {}
    is_identity: ClassVar[bool] = True  # audio in [-1, 1] comes back unchanged

    def transform(self, waveforms: np.ndarray) -> np.ndarray:
        y = _waveform_batch(waveforms, self.slice_len)
        # Clipping keeps the tanh-output contract even for slightly hot recordings.
        return np.clip(y, -1.0, 1.0)[..., None]

    def inverse(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float32)
        if x.ndim == 3 and x.shape[-1] == 1:
            x = x[..., 0]
        if x.ndim != 2 or x.shape[1] != self.slice_len:
            raise ValueError(f"expected features of shape [N, {self.slice_len}, 1], got {x.shape}")
        return x

    def feature_shape(self) -> tuple[int, ...]:
        return (self.slice_len, 1)


class _StftRepresentation(Representation):
    """Shared STFT front end: log-magnitude [time, freq] features, Griffin-Lim inverse.

    Subclasses supply only the per-frequency-bin normaliser (``_fit_normaliser``, ``normalize``,
    ``denormalize``).
    """

    defaults: ClassVar[dict[str, Any]] = {
        "n_fft": 256,
        "hop_length": 128,
        "win_length": 256,
        "window": "hann",
        "center": False,
        "drop_nyquist": True,
        "n_frames": 128,
        "log_eps": 1e-6,
        "griffin_lim_iters": 32,
    }

    def __init__(self, params: Mapping[str, Any], slice_len: int, sample_rate: int) -> None:
        super().__init__(params, slice_len, sample_rate)
        p = self.params
        self.n_fft = _int_param(p, "n_fft", 2, "Fix: use a power of two such as 256.")
        self.hop_length = _int_param(p, "hop_length", 1, "Fix: use n_fft / 2 (128 for n_fft 256).")
        self.win_length = _int_param(p, "win_length", 1, "Fix: set it equal to n_fft.")
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
        self.center = _bool_param(p, "center")
        self.drop_nyquist = _bool_param(p, "drop_nyquist")
        self.n_frames = _int_param(
            p, "n_frames", 1, "Fix: set it to the STFT frame count, e.g. 128 for 16384 samples at hop 128."
        )
        self.log_eps = _float_param(p, "log_eps", "Fix: use 1e-6 (SpecGAN).")
        self.griffin_lim_iters = _int_param(p, "griffin_lim_iters", 1, "Fix: use 16 (SpecGAN) or 32.")
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
        y = _waveform_batch(waveforms, self.slice_len)
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
    defaults: ClassVar[dict[str, Any]] = {**_StftRepresentation.defaults, "griffin_lim_iters": 32}

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
    defaults: ClassVar[dict[str, Any]] = {
        **_StftRepresentation.defaults,
        "griffin_lim_iters": 16,
        "clip_stds": 3.0,
    }

    def __init__(self, params: Mapping[str, Any], slice_len: int, sample_rate: int) -> None:
        super().__init__(params, slice_len, sample_rate)
        self.clip_stds = _float_param(self.params, "clip_stds", "Fix: use 3 (SpecGAN).")
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


REPRESENTATIONS: dict[str, type[Representation]] = {
    cls.name: cls for cls in (WaveformRepresentation, SpectrogramRepresentation, SpecGANRepresentation)
}


def build_representation(cfg: Mapping[str, Any], slice_len: int, sample_rate: int) -> Representation:
    """Builds the (unfitted) representation named by ``cfg.name`` (the `preprocessing` config group)."""
    params = _as_dict(cfg)
    name = params.get("name")
    if name not in REPRESENTATIONS:
        raise ConfigError(
            f"preprocessing.name={name!r} is not a known representation. "
            f"Fix: use one of {sorted(REPRESENTATIONS)} (conf/preprocessing/<name>.yaml)."
        )
    return REPRESENTATIONS[name].from_config(params, slice_len, sample_rate)
