"""Figures shared by the data summary, training previews and reports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: commands run on servers and in CI

import librosa  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def spectrogram_grid(
    waveforms: np.ndarray,
    sample_rate: int,
    titles: Sequence[str] | None = None,
    columns: int = 4,
    n_fft: int = 512,
    hop_length: int = 128,
) -> plt.Figure:
    """Log-magnitude spectrograms (dB, frequency up) of a batch of waveforms, one panel each."""
    n = len(waveforms)
    columns = max(1, min(columns, n))
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    duration = waveforms.shape[-1] / sample_rate
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        mag = np.abs(
            librosa.stft(np.asarray(waveforms[i], dtype=np.float32), n_fft=n_fft, hop_length=hop_length)
        )
        db = librosa.amplitude_to_db(mag, ref=np.max(mag) if mag.max() > 0 else 1.0, top_db=80)
        ax.imshow(
            db,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=-80,
            vmax=0,
            extent=(0, duration, 0, sample_rate / 2000),
        )
        ax.set_title(titles[i] if titles else f"#{i}", fontsize=9)
        ax.set_xlabel("s", fontsize=8)
        ax.set_ylabel("kHz", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
