"""The NSynth column layout every data source is ingested into, and the checks a clip must pass.

Training, metrics and reports read only the local store, so whatever the source (built-in notes,
NSynth through deeplake, a folder of audio files) the rows look the same: NSynth's fields, plus a
`label` (the class the metrics count modes by) and a `split`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

NSYNTH_FAMILIES = (
    "bass",
    "brass",
    "flute",
    "guitar",
    "keyboard",
    "mallet",
    "organ",
    "reed",
    "string",
    "synth_lead",
    "vocal",
)
NSYNTH_SOURCES = ("acoustic", "electronic", "synthetic")
NSYNTH_QUALITIES = (
    "bright",
    "dark",
    "distortion",
    "fast_decay",
    "long_release",
    "multiphonic",
    "nonlinear_env",
    "percussive",
    "reverb",
    "tempo-synced",
)
SPLITS = ("train", "valid", "test")

# Integer fields use -1 for "unknown" (an audio folder has no pitch or velocity).
INT_FIELDS = ("sample_rate", "pitch", "velocity", "instrument", "instrument_family", "instrument_source")
TEXT_FIELDS = ("note_id", "instrument_family_str", "instrument_source_str", "label", "split")


@dataclass
class Clip:
    """One mono clip of exactly `slice_len` samples with its NSynth-style metadata."""

    audio: np.ndarray
    note_id: str
    meta: dict = field(default_factory=dict)
    # Clips cut from one recording share a group, so they land in the same split (no leakage).
    group: str = ""

    def row(self, sample_rate: int, split: str) -> dict:
        m = self.meta
        row = {name: int(m.get(name, -1)) for name in INT_FIELDS}
        row["sample_rate"] = int(sample_rate)
        row.update(
            note_id=self.note_id,
            instrument_family_str=str(m.get("instrument_family_str", "")),
            instrument_source_str=str(m.get("instrument_source_str", "")),
            label=str(m.get("label", "")),
            split=split,
            qualities=np.asarray(m.get("qualities", [0] * len(NSYNTH_QUALITIES)), dtype=np.int32),
            audio=self.audio.astype(np.float32, copy=False),
        )
        return row


@dataclass
class Skipped:
    """An input that was not used, and why (reported to the user, never silently dropped)."""

    source: str
    reason: str


def problem_with(
    audio: np.ndarray, sample_rate: int, min_duration_s: float, silence_peak: float
) -> str | None:
    """Why this decoded audio is unusable, or None when it is fine."""
    if audio.size == 0:
        return "empty (no samples)"
    if not np.all(np.isfinite(audio)):
        return "contains NaN or infinite samples"
    duration = audio.shape[-1] / sample_rate
    if duration < min_duration_s:
        return f"too short ({duration:.3f} s < data.min_duration_s={min_duration_s})"
    peak = float(np.max(np.abs(audio)))
    if peak < silence_peak:
        return f"silent (peak {peak:.2e} < data.silence_peak={silence_peak})"
    return None


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Crop or zero-pad at the end to `length` samples (the onset stays at sample 0)."""
    if audio.shape[-1] >= length:
        return audio[:length]
    return np.pad(audio, (0, length - audio.shape[-1]))


def assign_split(key: str, valid_fraction: float, test_fraction: float) -> str:
    """A split that depends only on the key, so re-ingesting never moves a clip between splits."""
    u = (zlib.crc32(key.encode()) % 100_000) / 100_000
    if u < valid_fraction:
        return "valid"
    if u < valid_fraction + test_fraction:
        return "test"
    return "train"
