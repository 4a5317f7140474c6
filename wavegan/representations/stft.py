"""The STFT front end shared by the spectrogram representations: magnitude and log-magnitude
spectrograms, Griffin-Lim, and the spectral convergence that measures a round trip.

Hand-written Griffin-Lim (vectorised over a batch of clips, its STFT time-major end to end) rather
than `librosa.griffinlim`: 2.5-3.8x faster on 256-1024 clips (benchmarks/representation_speed.py;
with librosa's STFT inside, copied time-major, it would be 1.6x slower), and its edges do not blow
up (see `griffin_lim`); tests/representations/test_stft.py checks the STFT against `librosa.stft`
on every frame and Griffin-Lim against `librosa.griffinlim` on interior samples (everywhere when
centred).
"""

from __future__ import annotations

from typing import Any

import librosa
import numpy as np
import scipy.fft
import scipy.signal

# Bounds peak memory of STFT / Griffin-Lim on large batches (2048 clips of complex STFTs would
# otherwise need several GB at once); each chunk is still processed as one vectorised batch.
CHUNK = 256

# Griffin-Lim starts from random phases; a fixed seed makes inverse() deterministic.
GRIFFIN_LIM_SEED = 0


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
    for start in range(0, flat.shape[0], CHUNK):
        stft = librosa.stft(
            flat[start : start + CHUNK],
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
    log_eps: float = 1e-6,
    drop_nyquist: bool = False,
    **stft_options: Any,
) -> np.ndarray:
    """log(|STFT| + log_eps) of ``waveforms`` [..., samples] as float32 [..., frames, bins].

    Time x frequency orientation, same as the spectrogram features. ``drop_nyquist`` removes the
    last bin, which SpecGAN drops to make the frequency axis a power of two. ``stft_options``:
    `magnitude_spectrogram`'s (win_length, window, center).
    """
    mag = magnitude_spectrogram(waveforms, n_fft, hop_length, **stft_options)
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
    init: str | None = "random",
    random_state: int = GRIFFIN_LIM_SEED,
) -> np.ndarray:
    """Fast Griffin-Lim (Perraudin et al. 2013, as in librosa) on magnitudes [N, frames, bins].

    ``magnitude`` must be the |STFT| librosa.stft would give with the same parameters (time-major,
    all n_fft//2+1 bins). Returns float32 [N, length]; like any Griffin-Lim output it may exceed
    [-1, 1] slightly, since only magnitudes, not peaks, are matched. ``init`` as in librosa: "random"
    (phases drawn from ``random_state``) or None (zero phase).

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
    if init == "random":
        rng = np.random.default_rng(random_state)
        initial_angles = np.exp(2j * np.pi * rng.random(mag.shape[1:])).astype(np.complex64)
    elif init is None:
        initial_angles = np.ones(mag.shape[1:], np.complex64)
    else:
        raise ValueError(f"init={init!r}: expected 'random' or None")
    out = []
    for start in range(0, n, CHUNK):
        s = mag[start : start + CHUNK]
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
