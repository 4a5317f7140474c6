"""`data=builtin`: an NSynth-like data set of musical notes, synthesised procedurally (numpy/scipy only).

Why it exists: the default data set must need no network and no downloads, yet still have what the GAN
metrics need, namely classes that differ clearly in timbre and labels that are true. Every label here is
what was synthesised: the family is the synthesis recipe, the pitch sets the fundamental, the velocity
sets loudness and brightness, and a quality is set only when the recipe really does that thing.

    synthesis.py    DSP building blocks: wavetables, envelopes, filters, Karplus-Strong
    instruments.py  one recipe per instrument family, and its parameter presets
    notes.py        one note, the data set's sequence of notes, their metadata

An "instrument" is a family-specific parameter preset (several per family), id = family index * 100 +
preset. Every note is made by synthesis algorithms, so its NSynth source is "synthetic" whatever it
imitates: NSynth defines synthetic as sounds produced by (software) synthesizers.
"""

from wavegan.data.schema import NSYNTH_QUALITIES, NSYNTH_SOURCES
from wavegan.data.sources.builtin.instruments import FAMILIES
from wavegan.data.sources.builtin.notes import (
    NSYNTH_FAMILY_INDEX,
    family_pitch_range,
    iter_builtin_notes,
    note_meta,
    synthesize_note,
)

__all__ = [
    "FAMILIES",
    "NSYNTH_FAMILY_INDEX",
    "NSYNTH_QUALITIES",
    "NSYNTH_SOURCES",
    "family_pitch_range",
    "iter_builtin_notes",
    "note_meta",
    "synthesize_note",
]
