"""`data=nsynth`: NSynth notes read through deeplake, as the project's seed sketch did.

`data.path` is a deeplake URL (`hub://activeloop/nsynth-train`, `-valid`, `-test`; needs the network
and, for private copies, `data.token` or ACTIVELOOP_TOKEN) or a local deeplake data set with NSynth's
columns. The first `data.num_samples` notes from `data.offset` are taken; each becomes a dict of
audio and metadata, then a clip of the first `data.slice_len` samples (the onset and sustain).
Column names are configurable (`data.columns.*`) because copies of NSynth name them differently.
"""

from __future__ import annotations

from collections.abc import Iterator

import deeplake
import librosa
import numpy as np

from wavegan.data.schema import NSYNTH_FAMILIES, NSYNTH_SOURCES, Clip, Skipped, fit_length, problem_with
from wavegan.errors import DataError

READ_CHUNK = 256  # rows per column read: deeplake is fast on ranges, slow row by row


def open_nsynth(path: str, token: str | None):
    """A read-only handle on the data set; v3-format hub data sets are read through a query."""
    try:
        return deeplake.open_read_only(path, token=token)
    except Exception as first:
        if path.startswith(("hub://", "al://")):
            try:  # deeplake 4 reads v3-format data sets (the public NSynth copies) only via TQL
                return deeplake.query(f'SELECT * FROM "{path}"', token=token)
            except Exception:
                pass
        raise DataError(
            f"cannot open the NSynth data set at data.path={path}: {first.__class__.__name__}: "
            f"{str(first).strip()[:200]}. Fix: check the path (a local deeplake folder, or a hub URL with "
            "network access and data.token / ACTIVELOOP_TOKEN set)."
        ) from None


def _column_names(ds) -> set[str]:
    try:
        return {c.name for c in ds.schema.columns}
    except AttributeError:
        return set(ds.schema)


def read_notes(cfg) -> Iterator[dict]:
    """Yields one dict per note: `audio` plus every configured metadata column that exists."""
    ds = open_nsynth(str(cfg.path), cfg.get("token"))
    names = _column_names(ds)
    columns = {field: name for field, name in cfg.columns.items() if name}
    audio_col = columns.pop("audio")
    if audio_col not in names:
        raise DataError(
            f"the data set at {cfg.path} has no audio column data.columns.audio={audio_col}; it has "
            f"{sorted(names)}. Fix: set data.columns.audio to one of those."
        )
    columns = {field: name for field, name in columns.items() if name in names}
    start = int(cfg.offset)
    stop = len(ds) if cfg.num_samples is None else min(len(ds), start + int(cfg.num_samples))
    for lo in range(start, stop, READ_CHUNK):
        hi = min(stop, lo + READ_CHUNK)
        audio = ds[audio_col][lo:hi]
        meta = {field: ds[name][lo:hi] for field, name in columns.items()}
        for i in range(hi - lo):
            note = {field: values[i] for field, values in meta.items()}
            note["audio"] = np.asarray(audio[i], dtype=np.float32)
            note["index"] = lo + i
            yield note


def _mono(audio: np.ndarray) -> np.ndarray:
    if audio.ndim == 2:  # (samples, channels) or (channels, samples): average the short axis
        audio = audio.mean(axis=int(np.argmin(audio.shape)))
    return audio.reshape(-1)


def _as_int(value, default: int = -1) -> int:
    try:
        return int(np.asarray(value).reshape(-1)[0])
    except (IndexError, TypeError, ValueError):
        return default


def note_to_clip(note: dict, cfg) -> Clip | Skipped:
    sr = int(cfg.sample_rate)
    note_id = str(note.get("note", f"nsynth-{note['index']}"))
    audio = _mono(note["audio"])
    note_rate = _as_int(note.get("sample_rate"), sr)
    if audio.size and note_rate > 0 and note_rate != sr and np.all(np.isfinite(audio)):
        audio = librosa.resample(audio, orig_sr=note_rate, target_sr=sr)
    reason = problem_with(audio, sr, float(cfg.min_duration_s), float(cfg.silence_peak))
    if reason:
        return Skipped(note_id, reason)
    family = _as_int(note.get("instrument_family"))
    source = _as_int(note.get("instrument_source"))
    family_str = str(note.get("instrument_family_str", "")) or (
        NSYNTH_FAMILIES[family] if 0 <= family < len(NSYNTH_FAMILIES) else ""
    )
    source_str = str(note.get("instrument_source_str", "")) or (
        NSYNTH_SOURCES[source] if 0 <= source < len(NSYNTH_SOURCES) else ""
    )
    qualities = np.asarray(note.get("qualities", np.zeros(10)), dtype=np.int32).reshape(-1)[:10]
    meta = {
        "pitch": _as_int(note.get("pitch")),
        "velocity": _as_int(note.get("velocity")),
        "instrument": _as_int(note.get("instrument")),
        "instrument_family": family,
        "instrument_family_str": family_str,
        "instrument_source": source,
        "instrument_source_str": source_str,
        "qualities": np.pad(qualities, (0, 10 - qualities.size)),
        "label": family_str,
    }
    return Clip(audio=fit_length(audio, int(cfg.slice_len)), note_id=note_id, meta=meta, group=note_id)


def iter_nsynth(cfg) -> Iterator[Clip | Skipped]:
    for note in read_notes(cfg):
        yield note_to_clip(note, cfg)
