"""`data=audio_dir`: any folder of audio files, read recursively, as clips of `data.slice_len` samples.

Files are decoded with soundfile (wav, flac, ogg, aiff, mp3 with libsndfile >= 1.1), mixed to mono,
resampled to `data.sample_rate`, optionally peak-normalised, and cut into slices; the first-level
sub-folder name is the label (`DIR/kick/a.wav` -> "kick"), files directly in DIR have none. A file
that cannot be used is skipped with the reason; the caller reports it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from wavegan.data.schema import Clip, Skipped, fit_length, problem_with
from wavegan.errors import DataError

log = logging.getLogger(__name__)


def list_audio_files(root: Path, extensions: list[str]) -> list[Path]:
    exts = {"." + e.lower().lstrip(".") for e in extensions}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts)


def folder_fingerprint(root: Path, extensions: list[str]) -> list[tuple[str, int, int]]:
    """What identifies the folder's content cheaply: a changed file means a rebuilt store."""
    return [
        (str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in list_audio_files(root, extensions)
    ]


def decode(path: Path, sample_rate: int) -> np.ndarray:
    """Mono float32 at `sample_rate`; raises ValueError with a readable reason."""
    if path.stat().st_size == 0:
        raise ValueError("empty file (0 bytes)")
    try:
        audio, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises several types for corrupt or foreign files
        detail = str(exc).replace(f"'{path}'", "").replace(str(path), "").strip()
        raise ValueError(f"not readable as audio ({detail[:120]})") from None
    audio = audio.mean(axis=1)
    if audio.size and file_rate != sample_rate and np.all(np.isfinite(audio)):
        audio = librosa.resample(audio, orig_sr=file_rate, target_sr=sample_rate)
    return audio.astype(np.float32, copy=False)


def slice_starts(num_samples: int, slice_len: int, overlap: float, min_samples: int) -> list[int]:
    """Slice start offsets; a tail shorter than `min_samples` is dropped rather than mostly padding."""
    hop = max(1, int(round(slice_len * (1.0 - overlap))))
    starts = [0]
    while starts[-1] + slice_len < num_samples and num_samples - (starts[-1] + hop) >= min_samples:
        starts.append(starts[-1] + hop)
    return starts


def iter_audio_dir(cfg) -> Iterator[Clip | Skipped]:
    root = Path(str(cfg.path)).expanduser()
    if not root.is_dir():
        raise DataError(f"data.path={cfg.path} is not a folder. Fix: pass data.path=<folder of audio files>.")
    files = list_audio_files(root, list(cfg.extensions))
    if not files:
        raise DataError(
            f"no audio files ({', '.join(cfg.extensions)}) under data.path={root}. "
            "Fix: point data.path at a folder with audio files, or extend data.extensions."
        )
    sr, slice_len = int(cfg.sample_rate), int(cfg.slice_len)
    min_samples = int(float(cfg.min_duration_s) * sr)
    for path in files:
        rel = path.relative_to(root)
        label = rel.parts[0] if len(rel.parts) > 1 and cfg.label_from_subfolder else ""
        try:
            audio = decode(path, sr)
        except ValueError as exc:
            yield Skipped(str(rel), str(exc))
            continue
        reason = problem_with(audio, sr, float(cfg.min_duration_s), float(cfg.silence_peak))
        if reason:
            yield Skipped(str(rel), reason)
            continue
        if cfg.peak_normalize:
            audio = audio / np.max(np.abs(audio)) * float(cfg.peak_level)
        starts = slice_starts(audio.shape[0], slice_len, float(cfg.slice_overlap), min_samples)
        if cfg.max_slices_per_file:
            starts = starts[: int(cfg.max_slices_per_file)]
        for i, start in enumerate(starts):
            piece = fit_length(audio[start : start + slice_len], slice_len)
            if np.max(np.abs(piece)) < float(cfg.silence_peak):
                yield Skipped(f"{rel}#{i}", "silent slice")
                continue
            yield Clip(
                audio=piece,
                note_id=f"{rel.as_posix()}#{i}",
                meta={"label": label},
                group=rel.as_posix(),
            )
