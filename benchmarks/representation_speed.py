"""Speed of the hand-written STFT, Griffin-Lim and log-mel against librosa's own functions.

    .venv/bin/python benchmarks/representation_speed.py [--clips N] [--slice-len N] [--iters N]
                                                        [--repeats N] [--out FILE]

The hand-written versions (wavegan/representations/stft.py, wavegan/metrics/features.py) exist only
for the speed they buy on the batches training and evaluation feed them; their agreement with librosa
is tested in tests/representations/test_stft.py and tests/metrics/test_features.py. Per transform, on
one batch of `--clips` noisy decaying tones of `--slice-len` samples at 16 kHz (the representations'
defaults: n_fft 256, hop 128, no centring; the metrics' log-mel: n_fft 512, hop 256, 64 bands):

    stft         wavegan.representations.stft._frames_stft vs librosa.stft in its own layout
    stft_time_major  the same, librosa's result copied into the time-major layout [N, frames, bins]
                 that Griffin-Lim works in (which is why stft.py keeps its own STFT)
    griffin_lim  wavegan.representations.stft.griffin_lim vs librosa.griffinlim, `--iters` iterations,
                 both on the whole batch at once (librosa takes [N, bins, frames])
    log_mel      MelFeatures.log_mel vs log(librosa.feature.melspectrogram + 1e-6)

Seconds per batch are the best of `--repeats` runs after one warm-up run, with BLAS and OpenMP at one
thread as the Evaluator runs them (wavegan.metrics.quality.one_thread; on a few shared cores extra
threads mostly wait for each other), ours and librosa's alike. Prints a table; the last line
is one JSON object (also written to --out).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import librosa
import numpy as np
from common import report  # benchmarks/ is on sys.path when a script there runs

from wavegan.metrics.features import MelFeatures
from wavegan.metrics.quality import one_thread
from wavegan.representations.stft import _frames_stft, _stft_window, griffin_lim

RESULTS = Path(__file__).parent / "results"
SAMPLE_RATE = 16000
N_FFT, HOP = 256, 128


def test_clips(clips: int, slice_len: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(slice_len) / SAMPLE_RATE
    freqs = rng.uniform(80, 2000, size=(clips, 1))
    tones = 0.3 * np.sin(2 * np.pi * freqs * t) * np.exp(-3 * t)
    return (tones + 0.01 * rng.standard_normal((clips, slice_len))).astype(np.float32)


def best_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: caches, FFT plans, lazy imports
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=256, help="eval.num_samples is 256")
    parser.add_argument("--slice-len", type=int, default=16384)
    parser.add_argument("--iters", type=int, default=16, help="Griffin-Lim iterations (SpecGAN: 16)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "representation_speed.json")
    args = parser.parse_args(argv)

    y = test_clips(args.clips, args.slice_len)
    frames = 1 + (args.slice_len - N_FFT) // HOP
    window = _stft_window("hann", N_FFT, N_FFT)
    magnitude = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, center=False))  # [N, bins, frames]
    magnitude_time_major = np.ascontiguousarray(np.swapaxes(magnitude, 1, 2))
    mel = MelFeatures(SAMPLE_RATE, args.slice_len, align_onset=False)

    pairs: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "stft": (
            lambda: _frames_stft(y, window, N_FFT, HOP, False, frames),
            lambda: librosa.stft(y, n_fft=N_FFT, hop_length=HOP, center=False),
        ),
        "stft_time_major": (
            lambda: _frames_stft(y, window, N_FFT, HOP, False, frames),
            lambda: np.ascontiguousarray(
                np.swapaxes(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, center=False), 1, 2)
            ),
        ),
        "griffin_lim": (
            lambda: griffin_lim(magnitude_time_major, args.iters, N_FFT, HOP, length=args.slice_len),
            lambda: librosa.griffinlim(
                magnitude,
                n_iter=args.iters,
                hop_length=HOP,
                n_fft=N_FFT,
                center=False,
                length=args.slice_len,
                random_state=0,
            ),
        ),
        "log_mel": (
            lambda: mel.log_mel(y),
            lambda: np.log(
                librosa.feature.melspectrogram(
                    y=y,
                    sr=SAMPLE_RATE,
                    n_fft=mel.n_fft,
                    hop_length=mel.hop_length,
                    n_mels=mel.n_mels,
                    center=False,
                )
                + 1e-6
            ),
        ),
    }
    rows = {}
    for name, (ours, theirs) in pairs.items():
        with one_thread():
            ours_s, librosa_s = best_time(ours, args.repeats), best_time(theirs, args.repeats)
        rows[name] = {"ours_s": round(ours_s, 4), "librosa_s": round(librosa_s, 4),
                      "speedup": round(librosa_s / ours_s, 2)}  # fmt: skip

    print(f"{args.clips} clips x {args.slice_len} samples, Griffin-Lim {args.iters} iterations, "
          f"best of {args.repeats}")  # fmt: skip
    print(f"{'transform':<16} {'ours s/batch':>13} {'librosa s/batch':>16} {'speed-up':>9}")
    for name, row in rows.items():
        print(f"{name:<16} {row['ours_s']:>13.4f} {row['librosa_s']:>16.4f} {row['speedup']:>8.2f}x")
    result = {
        "settings": {
            "clips": args.clips,
            "slice_len": args.slice_len,
            "griffin_lim_iters": args.iters,
            "repeats": args.repeats,
            "n_fft": N_FFT,
            "hop_length": HOP,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "librosa": librosa.__version__,
        },
        "seconds_per_batch": rows,
    }
    return report(result, args.out, table=False)


if __name__ == "__main__":
    main()
