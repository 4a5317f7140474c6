"""The instrument families of the built-in notes: one synthesis recipe per family and its presets.

Each family is one synthesis technique with its own spectral envelope and amplitude envelope, so that a
small classifier on log-spectrograms tells them apart (which is how GAN mode coverage is measured):

    bass, guitar   Karplus-Strong plucked strings (a comb filter run by scipy.signal.lfilter)
    brass          sawtooth-like, brightness rising with velocity and with the attack (a filter "blat")
    flute          near-sine plus band-passed breath noise, delayed vibrato
    keyboard       piano-like: decaying, slightly inharmonic partials plus hammer noise
    mallet         FM bell: inharmonic sidebands, fast decay, noisy strike
    organ          additive drawbar registrations, steady envelope
    reed           odd harmonics (clarinet-like)
    string         sawtooth with body resonances, vibrato and a slow bowed attack
    synth_lead     two detuned pulse waves, filter wobbling in time with a 120 BPM tempo
    vocal          glottal pulse train through a cascade of formant resonators (vowels)

A recipe sets a quality only when it really does that thing (bright/dark from its own measure of its
upper harmonics, percussive for a strike, ...); the envelope qualities are measured on the rendered note
(notes.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from wavegan.data.schema import NSYNTH_FAMILIES
from wavegan.data.sources.builtin.synthesis import (
    LN1000,
    Note,
    adsr,
    harmonic_table,
    karplus_strong,
    noise_burst,
    num_harmonics,
    phase_cycles,
    read_table,
    resonator,
    sin_partials,
    t60_decay,
    vibrato,
)

# ----------------------------------------------------------------------------------------- recipes
# Each recipe: (note, preset) -> (audio, qualities). Presets are plain dicts of the recipe's parameters.

Preset = Mapping[str, Any]
Rendered = tuple[np.ndarray, set[str]]


def _brightness_qualities(brightness: float) -> set[str]:
    """bright / dark from a recipe's own 0..1 measure of how strong its upper harmonics are."""
    if brightness >= 0.7:
        return {"bright"}
    if brightness <= 0.3:
        return {"dark"}
    return set()


def _render_plucked(note: Note, p: Preset) -> Rendered:
    """Guitar and bass: Karplus-Strong; higher strings ring shorter, velocity brightens the pluck."""
    t60 = p["t60"] * (110.0 / note.f0) ** 0.3
    cutoff = p["cutoff"] * (0.4 + 0.9 * note.vel)
    audio = karplus_strong(note, t60, cutoff, p["pluck_pos"], p["noise"])
    qualities = set()
    if p.get("pick", 0.0) > 0:  # a pick's click: the non-harmonic onset NSynth calls percussive
        audio = audio / np.max(np.abs(audio)) + p["pick"] * note.vel * noise_burst(note, 0.004, 6000.0)
        qualities.add("percussive")
    return audio, qualities | _brightness_qualities(cutoff / 6000.0)


def _render_brass(note: Note, p: Preset) -> Rendered:
    """Brass: all harmonics, a spectral envelope whose cutoff rises with loudness (velocity and attack)."""
    env = adsr(note, attack=p["attack"], decay=0.12, sustain=0.8, release=0.08)
    freq = vibrato(note, rate_hz=5.0, depth_cents=p["vibrato"], delay_s=0.3)
    k = np.arange(1, num_harmonics(freq.max(), note) + 1)
    cutoff = p["cutoff"] * (0.3 + 1.0 * note.vel)  # Hz: the bell's cutoff, opened by blowing harder
    # Loud brass peaks around its 3rd harmonic rather than at the fundamental.
    bright = np.exp(-k * note.f0 / cutoff) * (1 + 0.8 * np.exp(-((k - 3.0) ** 2) / 4))
    dark = np.exp(-k * note.f0 / (0.25 * cutoff))
    cycles = phase_cycles(freq, note)
    morph = env**2  # the brightness follows the loudness: the "blat" of a brass attack
    audio = env * (
        (1 - morph) * read_table(harmonic_table(dark), cycles)
        + morph * read_table(harmonic_table(bright), cycles)
    )
    return audio, {"nonlinear_env"} | _brightness_qualities(cutoff / 3000.0)


def _render_reed(note: Note, p: Preset) -> Rendered:
    """Reed: a clarinet's closed-pipe spectrum, odd harmonics strong and even ones 22-30 dB down."""
    env = adsr(note, attack=p["attack"], decay=0.05, sustain=0.9, release=0.06)
    freq = vibrato(note, rate_hz=4.5, depth_cents=p["vibrato"], delay_s=0.35)
    k = np.arange(1, num_harmonics(freq.max(), note) + 1)
    cutoff = p["cutoff"] * (0.4 + 0.8 * note.vel)
    amps = np.exp(-k * note.f0 / cutoff) / k**0.5 * np.where(k % 2 == 1, 1.0, p["even"])
    audio = env * read_table(harmonic_table(amps), phase_cycles(freq, note))
    breath = 0.02 * env * resonator(note.rng.standard_normal(note.n), 1800.0, 1200.0, note.sr)
    return audio + breath, _brightness_qualities(cutoff / 3000.0)


def _render_flute(note: Note, p: Preset) -> Rendered:
    """Flute: nearly a sine (weak 2nd/3rd harmonics) plus breath noise, with a noisy 'chiff' onset."""
    env = adsr(note, attack=p["attack"], decay=0.1, sustain=0.85, release=0.1)
    freq = vibrato(note, rate_hz=5.0, depth_cents=p["vibrato"], delay_s=0.2)
    overtone = p["overtones"] * (0.3 + 0.7 * note.vel)
    amps = np.array([1.0, 0.3 * overtone, 0.12 * overtone, 0.05 * overtone])
    amps = amps[: num_harmonics(freq.max(), note)]
    tone = env * read_table(harmonic_table(amps), phase_cycles(freq, note))
    white = note.rng.standard_normal(note.n + 1)
    noise = resonator(np.diff(white), p["noise_hz"], 0.8 * p["noise_hz"], note.sr)  # diff: no rumble
    chiff = 1.0 + 3.0 * np.exp(-note.t / 0.04)  # the breath is loudest before the tone has built up
    breath = p["breath"] * (0.5 + 0.5 * note.vel) * env**0.5 * chiff * noise
    return tone + breath, _brightness_qualities(overtone / 2)


def _render_string(note: Note, p: Preset) -> Rendered:
    """Bowed string: sawtooth through body resonances, vibrato from the start, slow bowed attack."""
    env = adsr(note, attack=p["attack"], decay=0.1, sustain=0.9, release=p["release"])
    # An ensemble: slightly detuned players, each with their own vibrato, beat against each other.
    freqs = [vibrato(note, 6.0, p["vibrato"], delay_s=0.0) * 2 ** (cents / 1200) for cents in p["voices"]]
    k = np.arange(1, num_harmonics(max(f.max() for f in freqs), note) + 1)
    hz = k * note.f0
    body = sum(g / (1 + ((hz - f) / (0.3 * f)) ** 2) for f, g in ((280.0, 2.0), (450.0, 1.5), (2500.0, 2.5)))
    cutoff = p["cutoff"] * (0.5 + 0.7 * note.vel)
    table = harmonic_table((1.0 + body) / k * np.exp(-hz / cutoff))
    audio = sum(read_table(table, phase_cycles(freq, note)) for freq in freqs)
    return env * audio, _brightness_qualities(cutoff / 5000.0)


def _render_synth_lead(note: Note, p: Preset) -> Rendered:
    """Synth lead: two detuned pulse waves through a filter that opens at the attack and then wobbles
    in time with a 120 BPM tempo (an LFO synced to 8th or 16th notes), full sustain."""
    env = adsr(note, attack=0.005, decay=0.05, sustain=1.0, release=0.05)
    k = np.arange(1, num_harmonics(note.f0 * 2 ** (p["detune"] / 1200), note) + 1)
    pulse = np.sin(np.pi * k * p["width"]) / k  # a pulse of duty `width`: every 1/width-th harmonic missing
    cutoff = p["cutoff"] * (0.4 + 0.8 * note.vel)
    bright = harmonic_table(pulse * np.exp(-k * note.f0 / cutoff))
    dark = harmonic_table(pulse * np.exp(-k * note.f0 / (0.15 * cutoff)))
    lfo_hz = 2.0 * p["lfo_per_beat"]  # 120 BPM = 2 beats per second
    wobble = 0.5 + 0.5 * np.cos(2 * np.pi * lfo_hz * note.t)
    morph = np.maximum(np.exp(-note.t / 0.05), wobble)  # filter envelope, then the synced wobble
    audio = np.zeros(note.n)
    for cents in (-p["detune"], p["detune"]):
        cycles = phase_cycles(note.f0 * 2 ** (cents / 1200), note)
        audio += morph * read_table(bright, cycles) + (1 - morph) * read_table(dark, cycles)
    qualities = {"nonlinear_env", "tempo-synced"} | _brightness_qualities(cutoff / 4000.0)
    return env * audio, qualities


# Vowel formants (F1, F2, F3 in Hz), after Peterson & Barney's averages.
_VOWELS = {
    "a": (730, 1090, 2440),
    "e": (530, 1840, 2480),
    "i": (270, 2290, 3010),
    "o": (570, 840, 2410),
    "u": (300, 870, 2240),
}


def _render_vocal(note: Note, p: Preset) -> Rendered:
    """Voice: a band-limited glottal pulse train through a cascade of three formant resonators."""
    env = adsr(note, attack=0.08, decay=0.1, sustain=0.9, release=0.1)
    freq = vibrato(note, rate_hz=5.5, depth_cents=p["vibrato"], delay_s=0.15)
    k = np.arange(1, num_harmonics(freq.max(), note) + 1)
    tilt = 1.8 - 0.8 * note.vel  # pressed (louder) phonation has stronger upper harmonics
    voice = read_table(harmonic_table(k**-tilt), phase_cycles(freq, note))
    voice += 0.02 * note.rng.standard_normal(note.n)  # aspiration
    for formant, bandwidth in zip(_VOWELS[str(p["vowel"])], (70.0, 100.0, 150.0), strict=True):
        voice = resonator(voice, formant * p["formant_scale"], bandwidth, note.sr)
    return env * voice, _brightness_qualities(1.8 - tilt)


# Hammond drawbars in panel order (16', 5 1/3', 8', 4', 2 2/3', 2', 1 3/5', 1 1/3', 1') as multiples of
# half the fundamental: the 16' sounds an octave below the key, 8' at the key's pitch.
_DRAWBAR_HARMONICS = np.array([1, 3, 2, 4, 6, 8, 10, 12, 16])


def _render_organ(note: Note, p: Preset) -> Rendered:
    """Organ: additive drawbar sines at fixed levels (3 dB per drawbar step), a steady gated envelope."""
    levels = np.array([int(c) for c in str(p["drawbars"])], dtype=float)
    gains = np.where(levels > 0, 10 ** ((levels - 8) * 3 / 20), 0.0)
    gains[4:] *= 0.5 + 0.5 * note.vel  # velocity-sensitive upper drawbars, as on many digital organs
    keep = _DRAWBAR_HARMONICS * note.f0 / 2 < note.nyquist
    amps = np.zeros(_DRAWBAR_HARMONICS.max())
    amps[_DRAWBAR_HARMONICS[keep] - 1] = gains[keep]
    env = adsr(note, attack=0.008, decay=0.01, sustain=1.0, release=0.04)
    audio = env * read_table(harmonic_table(amps), phase_cycles(note.f0 / 2, note))
    upper = gains[4:].sum() / gains.sum()  # share of the 2 2/3' and higher drawbars
    return audio, _brightness_qualities(1.6 * upper)


def _render_keyboard(note: Note, p: Preset) -> Rendered:
    """Piano-like: stiff-string partials (f_k = k f0 sqrt(1 + B k^2)) that decay faster the higher
    they are, a two-stage decay (prompt sound, then aftersound), a damper at note-off, hammer noise."""
    k = np.arange(1, 17, dtype=np.float64)  # 16 partials carry the timbre; the hammer adds the highs
    partial_hz = k * note.f0 * np.sqrt(1 + p["inharmonicity"] * k**2)
    k, partial_hz = k[partial_hz < note.nyquist], partial_hz[partial_hz < note.nyquist]
    t60 = p["t60"] * (261.6 / note.f0) ** 0.5  # bass strings ring longer
    amps = k ** -(1.6 - 0.8 * note.vel) * note.rng.uniform(0.8, 1.2, len(k))
    partials = sin_partials(partial_hz, note)
    rates = (LN1000 / t60 * (1 + p["damping"] * (k - 1))).astype(np.float32)[:, None]
    t = note.t.astype(np.float32)
    decays = 0.8 * np.exp(-6 * rates * t) + 0.2 * np.exp(-rates * t)  # prompt sound, then aftersound
    audio = (amps.astype(np.float32) @ (partials * decays)).astype(np.float64)
    audio *= adsr(note, attack=0.002, decay=0.0, sustain=1.0, release=0.12)  # damper
    audio += p["hammer"] * (0.3 + 0.7 * note.vel) * noise_burst(note, 0.015, 3000.0)
    return audio, {"percussive"} | _brightness_qualities(note.vel)  # velocity sets the spectral tilt


def _render_mallet(note: Note, p: Preset) -> Rendered:
    """FM bell / mallet: carrier at f0, modulator at an inharmonic ratio, index and level decaying fast."""
    fm = p["ratio"] * note.f0
    # Sidebands beyond index+1 are negligible (Carson's rule): cap the index so they stay below Nyquist.
    max_index = max(0.0, (note.nyquist - note.f0) / fm - 1.0)
    index0 = min(p["index"] * (0.4 + 0.8 * note.vel), max_index)
    t60 = p["t60"] * (261.6 / note.f0) ** 0.3
    index = index0 * np.exp(-note.t / (0.15 * t60))
    modulator = np.sin(2 * np.pi * (fm * note.t + note.rng.uniform()))
    carrier = 2 * np.pi * (note.f0 * note.t + note.rng.uniform())
    audio = np.sin(carrier + index * modulator) * t60_decay(note, t60)
    audio += p["strike"] * (0.4 + 0.6 * note.vel) * noise_burst(note, 0.01, 5000.0)
    return audio, {"percussive"} | _brightness_qualities(index0 / 3.0)


# ----------------------------------------------------------------------------------------- family table


@dataclass(frozen=True)
class Family:
    render: Callable[[Note, Preset], Rendered]
    pitch_range: tuple[int, int]  # the instrument's natural MIDI range, intersected with the requested one
    presets: tuple[Preset, ...]


RECIPES: dict[str, Family] = {
    "bass": Family(
        _render_plucked,
        (28, 55),
        (
            {"t60": 4.0, "cutoff": 700.0, "pluck_pos": 0.2, "noise": 0.3},  # fingered electric: long, round
            {"t60": 3.0, "cutoff": 1100.0, "pluck_pos": 0.12, "noise": 0.5},  # picked
            {"t60": 2.5, "cutoff": 450.0, "pluck_pos": 0.3, "noise": 0.2},  # upright, very dark
        ),
    ),
    "brass": Family(
        _render_brass,
        (40, 82),
        (
            {"attack": 0.04, "cutoff": 2200.0, "vibrato": 8.0},  # trumpet
            {"attack": 0.06, "cutoff": 1400.0, "vibrato": 5.0},  # trombone
            {"attack": 0.08, "cutoff": 1000.0, "vibrato": 0.0},  # horn
        ),
    ),
    "flute": Family(
        _render_flute,
        (60, 96),
        (
            {"attack": 0.08, "vibrato": 15.0, "overtones": 1.0, "breath": 0.10, "noise_hz": 2500.0},
            {
                "attack": 0.12,
                "vibrato": 25.0,
                "overtones": 0.6,
                "breath": 0.15,
                "noise_hz": 1800.0,
            },  # breathy
            {
                "attack": 0.06,
                "vibrato": 10.0,
                "overtones": 1.6,
                "breath": 0.06,
                "noise_hz": 3500.0,
            },  # piccolo
        ),
    ),
    "guitar": Family(
        _render_plucked,
        (40, 84),
        (
            {"t60": 0.9, "cutoff": 5000.0, "pluck_pos": 0.15, "noise": 1.0, "pick": 0.4},  # steel, picked
            {"t60": 0.6, "cutoff": 3000.0, "pluck_pos": 0.25, "noise": 0.6, "pick": 0.0},  # nylon, fingered
            {"t60": 1.1, "cutoff": 7000.0, "pluck_pos": 0.1, "noise": 1.5, "pick": 0.6},  # bright electric
        ),
    ),
    "keyboard": Family(
        _render_keyboard,
        (21, 108),
        (
            {"t60": 3.0, "inharmonicity": 4e-4, "damping": 0.35, "hammer": 0.25},  # grand
            {"t60": 2.0, "inharmonicity": 8e-4, "damping": 0.5, "hammer": 0.4},  # upright
            {"t60": 4.0, "inharmonicity": 2e-4, "damping": 0.25, "hammer": 0.15},  # mellow
        ),
    ),
    "mallet": Family(
        _render_mallet,
        (48, 96),
        (
            {"ratio": 3.5, "index": 3.0, "t60": 0.5, "strike": 0.5},  # bell
            {"ratio": 2.76, "index": 2.0, "t60": 0.35, "strike": 0.7},  # glockenspiel-ish
            {"ratio": 4.2, "index": 1.5, "t60": 0.25, "strike": 0.9},  # marimba-ish, woody and short
        ),
    ),
    "organ": Family(
        _render_organ,
        (24, 96),
        (
            # Registrations keep the 16' (sub-octave) below the 8', so the key's pitch is the one heard.
            {"drawbars": "008800000"},  # mellow flutes
            {"drawbars": "408806000"},
            {"drawbars": "008888000"},  # full
            {"drawbars": "008500888"},  # bright
        ),
    ),
    "reed": Family(
        _render_reed,
        (45, 91),
        (
            {"attack": 0.03, "cutoff": 2500.0, "even": 0.03, "vibrato": 0.0},  # clarinet
            {"attack": 0.05, "cutoff": 1500.0, "even": 0.05, "vibrato": 6.0},  # bass clarinet-ish
            {"attack": 0.03, "cutoff": 4000.0, "even": 0.08, "vibrato": 10.0},  # bright
        ),
    ),
    "string": Family(
        _render_string,
        (36, 96),
        (
            {"attack": 0.25, "release": 0.2, "cutoff": 4000.0, "vibrato": 25.0, "voices": (0.0,)},  # solo
            {
                "attack": 0.35,
                "release": 0.3,
                "cutoff": 3000.0,
                "vibrato": 20.0,
                "voices": (-6.0, 6.0),
            },  # section
            {
                "attack": 0.15,
                "release": 0.15,
                "cutoff": 6000.0,
                "vibrato": 30.0,
                "voices": (0.0,),
            },  # bright solo
        ),
    ),
    "synth_lead": Family(
        _render_synth_lead,
        (36, 96),
        (
            {"width": 0.5, "detune": 8.0, "cutoff": 3000.0, "lfo_per_beat": 2},  # square, 8th-note wobble
            {"width": 0.25, "detune": 12.0, "cutoff": 4000.0, "lfo_per_beat": 4},  # 16th notes
            {"width": 0.12, "detune": 6.0, "cutoff": 5000.0, "lfo_per_beat": 2},  # thin pulse
        ),
    ),
    "vocal": Family(
        _render_vocal,
        (43, 79),
        tuple(
            {"vowel": vowel, "vibrato": 30.0, "formant_scale": scale}
            for vowel, scale in (("a", 1.0), ("o", 1.0), ("e", 1.15), ("i", 1.15), ("u", 1.0))
        ),
    ),
}

FAMILIES: tuple[str, ...] = tuple(name for name in NSYNTH_FAMILIES if name in RECIPES)
