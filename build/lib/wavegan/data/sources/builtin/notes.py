"""Notes of the built-in data set: one note from its (family, preset, pitch, velocity), the data set's
deterministic sequence of notes, and their NSynth-style metadata.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from wavegan.data.schema import NSYNTH_FAMILIES, NSYNTH_QUALITIES, NSYNTH_SOURCES
from wavegan.data.sources.builtin.instruments import FAMILIES, RECIPES, Rendered
from wavegan.data.sources.builtin.synthesis import END_FADE_S, NOTE_OFF, Note, midi_to_hz
from wavegan.errors import ConfigError

NSYNTH_FAMILY_INDEX: dict[str, int] = {name: i for i, name in enumerate(NSYNTH_FAMILIES)}
_SOURCE = NSYNTH_SOURCES.index("synthetic")


def _envelope_qualities(audio: np.ndarray, note: Note) -> set[str]:
    """fast_decay and long_release, measured on the rendered note (any recipe can earn them):

    fast_decay    the level just before the note-off is >= 20 dB below the loudest frame;
    long_release  the note is still sounding (within 40 dB of the loudest frame) at the slice end,
                  a quarter of the slice after the note-off.
    """
    frame = max(1, min(int(0.032 * note.sr), note.n // 8))
    power = np.mean(audio[: note.n // frame * frame].reshape(-1, frame) ** 2, axis=1)
    peak = power.max()
    off = max(frame, int(NOTE_OFF * note.n))
    before_off = np.mean(audio[off - frame : off] ** 2)
    at_end = np.mean(audio[note.n - frame :] ** 2)
    out = set()
    if before_off < peak * 10 ** (-20 / 10):
        out.add("fast_decay")
    if at_end > peak * 10 ** (-40 / 10):
        out.add("long_release")
    return out


def _velocity_peak(velocity: int) -> float:
    """Peak level for a velocity: linear from ~0.057 (velocity 1) to 0.99 (velocity 127)."""
    return 0.05 + 0.94 * velocity / 127


def _check_note_args(family: str, pitch: int, velocity: int, sample_rate: int, num_samples: int) -> None:
    if family not in RECIPES:
        raise ConfigError(f"unknown built-in family {family!r}. Fix: use one of {list(FAMILIES)}.")
    if not 1 <= velocity <= 127:
        raise ConfigError(f"velocity {velocity} is outside 1..127. Fix: use a MIDI velocity in 1..127.")
    if sample_rate < 4000 or num_samples < 64:
        raise ConfigError(
            f"sample_rate={sample_rate}, slice_len={num_samples} too small. Fix: sample_rate >= 4000, "
            "slice_len >= 64."
        )
    # 1.03: room for vibrato and detuned voices, which raise a note's top frequency by up to 2.5%.
    if not 0 <= pitch <= 127 or midi_to_hz(pitch) >= 0.45 * sample_rate / 1.03:
        raise ConfigError(
            f"pitch {pitch} is not a MIDI note whose fundamental fits below Nyquist at {sample_rate} Hz. "
            "Fix: lower the pitch (or pitch_range) or raise the sample rate."
        )


def _render(
    family: str,
    preset: int,
    pitch: int,
    velocity: int,
    sample_rate: int,
    num_samples: int,
    rng: np.random.Generator,
) -> Rendered:
    """Synthesise, fade the very end, peak-normalise to the velocity's level; float32."""
    _check_note_args(family, pitch, velocity, sample_rate, num_samples)
    recipe = RECIPES[family]
    if not 0 <= preset < len(recipe.presets):
        raise ConfigError(f"{family} has presets 0..{len(recipe.presets) - 1}, not {preset}.")
    note = Note(midi_to_hz(pitch), velocity / 127, sample_rate, num_samples, rng)
    audio, qualities = recipe.render(note, recipe.presets[preset])
    fade = min(num_samples // 4, int(END_FADE_S * sample_rate))
    audio[num_samples - fade :] *= np.linspace(1.0, 0.0, fade)
    peak = float(np.max(np.abs(audio)))
    if not np.isfinite(peak) or peak <= 0:  # cannot happen for valid arguments; guard the invariant
        raise RuntimeError(f"built-in {family} note (pitch {pitch}, velocity {velocity}) came out silent")
    audio = (audio * (_velocity_peak(velocity) / peak)).astype(np.float32)
    return audio, qualities | _envelope_qualities(audio, note)


def synthesize_note(
    family: str,
    pitch: int,
    velocity: int,
    sample_rate: int,
    num_samples: int,
    rng: np.random.Generator,
    *,
    preset: int | None = None,
) -> np.ndarray:
    """One mono note, float32, shape (num_samples,), onset at sample 0, peak = a velocity-dependent level
    in (0.05, 0.99], finite, not silent. `preset` picks the family's parameter preset (the "instrument");
    None draws one from `rng`."""
    if preset is None:
        preset = int(rng.integers(len(RECIPES[family].presets))) if family in RECIPES else 0
    return _render(family, preset, pitch, velocity, sample_rate, num_samples, rng)[0]


def family_pitch_range(family: str, pitch_range: Sequence[int] = (36, 84)) -> tuple[int, int]:
    """The family's natural range within the requested one (bass low, flute high). When they do not
    overlap, the requested range wins: it is the data set's overall range."""
    lo, hi = int(pitch_range[0]), int(pitch_range[1])
    nat_lo, nat_hi = RECIPES[family].pitch_range
    if max(lo, nat_lo) <= min(hi, nat_hi):
        return max(lo, nat_lo), min(hi, nat_hi)
    return lo, hi


def _check_iter_args(
    families: Sequence[str],
    pitch_range: Sequence[int],
    velocities: Sequence[int],
    num_samples: int,
    seed: int,
    sample_rate: int,
    slice_len: int,
) -> None:
    """Fail before the first note, naming the setting to fix, rather than part-way through a data set."""
    unknown = [f for f in families if f not in RECIPES]
    if unknown or not families or len(set(families)) != len(families):
        raise ConfigError(
            f"data.families={list(families)} must be distinct names from {list(FAMILIES)}. Fix: list each "
            "built-in family at most once (null: all of them)."
        )
    if len(pitch_range) != 2 or not 0 <= int(pitch_range[0]) <= int(pitch_range[1]) <= 127:
        raise ConfigError(
            f"data.pitch_range={list(pitch_range)} is not [low, high] MIDI notes. "
            "Fix: 0 <= low <= high <= 127."
        )
    if not velocities or not all(1 <= int(v) <= 127 for v in velocities):
        raise ConfigError(f"velocities={list(velocities)} must be MIDI velocities in 1..127.")
    if num_samples < 0 or seed < 0:
        raise ConfigError(f"data.num_samples={num_samples} and seed={seed} must be >= 0.")
    for family in families:  # the highest note of each family must fit below Nyquist
        _check_note_args(family, family_pitch_range(family, pitch_range)[1], 127, sample_rate, slice_len)


def note_meta(index: int, family: str, preset: int, pitch: int, velocity: int, qualities: set[str]) -> dict:
    """NSynth-style metadata of one built-in note (the `label` is its family)."""
    family_index = NSYNTH_FAMILY_INDEX[family]
    return {
        "note_id": f"builtin-{family}-{pitch:03d}-{velocity:03d}-{index:05d}",
        "pitch": int(pitch),
        "velocity": int(velocity),
        "instrument": family_index * 100 + preset,
        "instrument_family": family_index,
        "instrument_family_str": family,
        "instrument_source": _SOURCE,
        "instrument_source_str": NSYNTH_SOURCES[_SOURCE],
        "qualities": [int(q in qualities) for q in NSYNTH_QUALITIES],
        "label": family,
    }


def iter_builtin_notes(
    num_samples: int,
    sample_rate: int = 16000,
    slice_len: int = 16384,
    seed: int = 0,
    families: Sequence[str] | None = None,
    pitch_range: tuple[int, int] = (36, 84),
    velocities: Sequence[int] = (25, 50, 75, 100, 127),
) -> Iterator[tuple[np.ndarray, dict]]:
    """Yields `num_samples` (audio, meta) pairs, deterministic for a given seed.

    Families are cycled in order (counts differ by at most 1, and any prefix is balanced too); each note's
    preset, pitch (within the family's range inside `pitch_range`) and velocity come from an RNG seeded by
    (seed, note index), so note i is the same whatever `num_samples` is. Audio: float32 [slice_len].
    """
    families = list(FAMILIES if families is None else families)
    _check_iter_args(families, pitch_range, velocities, num_samples, seed, sample_rate, slice_len)
    velocities = [int(v) for v in velocities]
    return _generate(num_samples, sample_rate, slice_len, seed, families, pitch_range, velocities)


def _generate(
    num_samples: int,
    sample_rate: int,
    slice_len: int,
    seed: int,
    families: list[str],
    pitch_range: Sequence[int],
    velocities: list[int],
) -> Iterator[tuple[np.ndarray, dict]]:
    for index in range(num_samples):
        family = families[index % len(families)]
        rng = np.random.default_rng([seed, index])
        preset = int(rng.integers(len(RECIPES[family].presets)))
        lo, hi = family_pitch_range(family, pitch_range)
        pitch = int(rng.integers(lo, hi + 1))
        velocity = velocities[int(rng.integers(len(velocities)))]
        audio, qualities = _render(family, preset, pitch, velocity, sample_rate, slice_len, rng)
        yield audio, note_meta(index, family, preset, pitch, velocity, qualities)
