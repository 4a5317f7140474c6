"""`data=audio_dir`: any folder of audio files, read recursively, as clips of `data.slice_len` samples.

Files are decoded with soundfile (wav, flac, ogg, aiff, mp3 with libsndfile >= 1.1), mixed to mono,
resampled to `data.sample_rate`, optionally peak-normalised, and cut into slices; the first-level
sub-folder name is the label (`DIR/kick/a.wav` -> "kick"), files directly in DIR have none. A file
that cannot be used is skipped with the reason; the caller reports it.

Memory stays bounded whatever a file's header says: a file of more than WHOLE_FILE_SAMPLES samples
(frames x channels, e.g. hours at 192 kHz in 8 channels) is read in blocks twice, once for its peak and
once for its slices, resampled as a stream (soxr), never decoded whole. Symbolic links to folders are
not followed (pathlib's rglob), so a link loop in a data folder cannot make the walk endless.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import soxr

from wavegan.data.schema import Clip, Skipped, fit_length, problem_with
from wavegan.errors import DataError

log = logging.getLogger(__name__)

WHOLE_FILE_SAMPLES = 1 << 26  # samples decoded at once (256 MB as float32); larger files stream
BLOCK_FRAMES = 1 << 18  # frames per block when streaming
MIN_RATE, MAX_RATE = 1000, 768_000  # sample rates of audio files (telephone to 768 kHz studio)


def list_audio_files(root: Path, extensions: list[str]) -> list[Path]:
    exts = {"." + e.lower().lstrip(".") for e in extensions}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts)


def folder_fingerprint(root: Path, extensions: list[str]) -> list[tuple[str, int, int]]:
    """What identifies the folder's content cheaply: a changed file means a rebuilt store."""
    return [
        (str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in list_audio_files(root, extensions)
    ]


def _unreadable(path: Path, exc: Exception) -> ValueError:
    detail = str(exc).replace(f"'{path}'", "").replace(str(path), "").strip()
    return ValueError(f"not readable as audio ({detail[:120]})")


def audio_info(path: Path):
    """soundfile's header information; raises ValueError with a readable reason."""
    if path.stat().st_size == 0:
        raise ValueError("empty file (0 bytes)")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises several types for corrupt or foreign files
        raise _unreadable(path, exc) from None
    if info.channels < 1:
        raise ValueError(f"not readable as audio ({info.channels} channels)")
    if not MIN_RATE <= info.samplerate <= MAX_RATE:  # a 1 Hz header would resample to 16000x the samples
        raise ValueError(f"unsupported sample rate {info.samplerate} Hz (audio is {MIN_RATE}-{MAX_RATE} Hz)")
    return info


def _too_large_at_once(info, frames: int, sample_rate: int) -> bool:
    """Whether decoding `frames` at once (all channels, or the resampled mono) would exceed the budget."""
    return max(info.channels, sample_rate / info.samplerate) * frames > WHOLE_FILE_SAMPLES


def decode(path: Path, sample_rate: int, max_seconds: float | None = None) -> np.ndarray:
    """Mono float32 at `sample_rate` (at most the first `max_seconds`); raises ValueError with a readable
    reason, also for a file too large to decode at once (iter_audio_dir streams those)."""
    info = audio_info(path)
    frames = info.frames if max_seconds is None else min(info.frames, int(max_seconds * info.samplerate) + 1)
    if _too_large_at_once(info, frames, sample_rate):
        raise ValueError(
            f"too large to decode at once ({info.frames} frames x {info.channels} channels at "
            f"{info.samplerate} Hz)"
        )
    try:
        audio, file_rate = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    except Exception as exc:
        raise _unreadable(path, exc) from None
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
            info = audio_info(path)
            if _too_large_at_once(info, info.frames, sr):
                yield from _long_file_clips(path, rel, label, info, cfg)
                continue
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


def _blocks(path: Path) -> Iterator[np.ndarray]:
    """The file as mono float32 blocks of BLOCK_FRAMES frames."""
    try:
        for block in sf.blocks(str(path), blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
            yield block.mean(axis=1)
    except Exception as exc:  # a header that promises more than the file holds, a decoding error
        raise _unreadable(path, exc) from None


def _long_file_clips(path: Path, rel: Path, label: str, info, cfg) -> Iterator[Clip | Skipped]:
    """iter_audio_dir for a file too large to decode at once: the same checks, normalisation and slices,
    from two passes over its blocks (the first finds the peak), resampled as a stream."""
    sr, slice_len = int(cfg.sample_rate), int(cfg.slice_len)
    peak, frames = 0.0, 0
    for block in _blocks(path):
        if not np.all(np.isfinite(block)):
            yield Skipped(str(rel), "contains NaN or infinite samples")
            return
        peak, frames = max(peak, float(np.max(np.abs(block), initial=0.0))), frames + len(block)
    if peak < float(cfg.silence_peak):  # problem_with's other reasons cannot apply to a file this long
        yield Skipped(str(rel), problem_with(np.array([peak], np.float32), sr, 0.0, float(cfg.silence_peak)))
        return
    log.info("%s: %.0f s in %d channels, read in blocks", rel, frames / info.samplerate, info.channels)

    def stream() -> Iterator[np.ndarray]:
        resampler = None if info.samplerate == sr else soxr.ResampleStream(info.samplerate, sr, 1, "float32")
        for block in _blocks(path):
            if cfg.peak_normalize:  # as iter_audio_dir normalises a whole file, to the same bits
                block = block / np.float32(peak) * float(cfg.peak_level)
            yield block if resampler is None else resampler.resample_chunk(block)
        if resampler is not None:
            yield resampler.resample_chunk(np.zeros(0, np.float32), last=True)

    hop = max(1, int(round(slice_len * (1.0 - float(cfg.slice_overlap)))))
    min_samples = int(float(cfg.min_duration_s) * sr)
    pieces = stream_slices(stream(), slice_len, hop, min_samples)
    for i, piece in enumerate(pieces):
        if cfg.max_slices_per_file and i >= int(cfg.max_slices_per_file):
            return
        if np.max(np.abs(piece)) < float(cfg.silence_peak):
            yield Skipped(f"{rel}#{i}", "silent slice")
            continue
        yield Clip(audio=piece, note_id=f"{rel.as_posix()}#{i}", meta={"label": label}, group=rel.as_posix())


def stream_slices(
    chunks: Iterator[np.ndarray], slice_len: int, hop: int, min_samples: int
) -> Iterator[np.ndarray]:
    """The slices `slice_starts` and `fit_length` cut from the concatenated chunks, holding about one slice
    and one chunk: the next start is taken once enough samples show that it exists."""
    buffer, offset, start, done = np.zeros(0, np.float32), 0, 0, False
    chunks = iter(chunks)
    while True:
        end = offset + len(buffer)  # samples seen so far (all of them once `done`)
        if not done and end < max(start + slice_len + 1, start + hop + min_samples):
            chunk = next(chunks, None)
            if chunk is None:
                done = True
            else:
                buffer = np.concatenate([buffer, np.asarray(chunk, np.float32)])
            continue
        yield fit_length(buffer[start - offset : start - offset + slice_len], slice_len)
        if not (start + slice_len < end and end - (start + hop) >= min_samples):
            return
        start += hop
        buffer, offset = buffer[start - offset :], start
