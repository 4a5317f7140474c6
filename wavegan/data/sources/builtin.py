"""`data=builtin`: an NSynth-like data set of musical notes, synthesised procedurally (numpy/scipy only).

Why it exists: the default data set must need no network and no downloads, yet still have what the GAN
metrics need, namely classes that differ clearly in timbre and labels that are true. Every label here is
what was synthesised: the family is the synthesis recipe, the pitch sets the fundamental, the velocity
sets loudness and brightness, and a quality is set only when the recipe really does that thing.

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

Speed: no per-sample Python loops. Harmonic tones read band-limited wavetables (one period built by an
inverse FFT with no harmonic at or above 0.95 x Nyquist, so nothing aliases); inharmonic partials use
float32 sines (numpy's float32 sin is ~10x faster than float64 here); filters are scipy.signal.lfilter.

An "instrument" is a family-specific parameter preset (several per family), id = family index * 100 +
preset. Every note is made by synthesis algorithms, so its NSynth source is "synthetic" whatever it
imitates: NSynth defines synthetic as sounds produced by (software) synthesizers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.signal import lfilter

from wavegan.data.schema import NSYNTH_FAMILIES, NSYNTH_QUALITIES, NSYNTH_SOURCES
from wavegan.errors import ConfigError

__all__ = [
    "FAMILIES",
    "NSYNTH_FAMILY_INDEX",
    "NSYNTH_QUALITIES",
    "NSYNTH_SOURCES",
    "iter_builtin_notes",
    "synthesize_note",
]

NSYNTH_FAMILY_INDEX: dict[str, int] = {name: i for i, name in enumerate(NSYNTH_FAMILIES)}
_SOURCE = NSYNTH_SOURCES.index("synthetic")

# Wavetable length: > 2x the most harmonics a note can have (a 41 Hz fundamental at 16 kHz has ~185),
# and large enough that linear interpolation's images stay ~60 dB down.
_TABLE_SIZE = 4096
_NYQUIST_GUARD = 0.95  # harmonics stay below 0.95 x Nyquist: the table interpolation adds a little width
_NOTE_OFF = 0.75  # sustained notes are released at 3/4 of the slice, as NSynth releases at 3 s of 4 s
_END_FADE_S = 0.005  # a short fade at the slice end so a truncated note does not end in a click
_LN1000 = math.log(1000.0)  # for t60 decays: exp(-_LN1000 * t / t60) is -60 dB at t60


# ----------------------------------------------------------------------------------------- note context


@dataclass(frozen=True)
class _Note:
    """What every recipe needs: the fundamental, the velocity as 0..1, the timing and the RNG."""

    f0: float
    vel: float
    sr: int
    n: int
    rng: np.random.Generator

    @property
    def t(self) -> np.ndarray:
        return _time_axis(self.n, self.sr)

    @property
    def dur(self) -> float:
        return self.n / self.sr

    @property
    def nyquist(self) -> float:
        return _NYQUIST_GUARD * self.sr / 2


@functools.lru_cache(maxsize=8)
def _time_axis(n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    t.flags.writeable = False  # shared between notes through the cache
    return t


def _midi_to_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


# ----------------------------------------------------------------------------------------- building blocks


def _harmonic_table(amps: np.ndarray) -> np.ndarray:
    """One period of sum_k amps[k-1] * sin(2 pi k x) at _TABLE_SIZE points (+2 guard samples for reading)."""
    spectrum = np.zeros(_TABLE_SIZE // 2 + 1, dtype=np.complex128)
    spectrum[1 : len(amps) + 1] = -0.5j * _TABLE_SIZE * np.asarray(amps, dtype=np.float64)
    table = np.fft.irfft(spectrum, _TABLE_SIZE)
    return np.concatenate([table, table[:2]])


def _num_harmonics(f_max: float, note: _Note, cap: int = _TABLE_SIZE // 2 - 1) -> int:
    """How many harmonics of a tone whose fundamental reaches `f_max` stay below the guarded Nyquist."""
    return max(1, min(cap, int(note.nyquist // f_max)))


def _phase_cycles(freq: np.ndarray | float, note: _Note) -> np.ndarray:
    """Running phase in cycles for an instantaneous frequency, from a random start phase."""
    start = note.rng.uniform()
    if np.ndim(freq) == 0:
        return start + float(freq) * note.t
    cycles = np.cumsum(freq) / note.sr
    return start + cycles - cycles[0]


def _read_table(table: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    """Linear-interpolated wavetable lookup: O(n) whatever the number of harmonics."""
    pos = (cycles - np.floor(cycles)) * _TABLE_SIZE
    idx = pos.astype(np.intp)
    frac = pos - idx
    lo = table[idx]
    return lo + frac * (table[idx + 1] - lo)


def _sin_partials(freqs_hz: np.ndarray, note: _Note) -> np.ndarray:
    """float32 [len(freqs), n]: sin(2 pi (f t + random start)) for fixed-frequency partials.

    The phase f*n/sr must be reduced mod 1 in float64 (float32 loses it after a few thousand cycles),
    but float64 work on the whole [K, n] array costs more than the float32 sines themselves. Splitting the
    sample index n = B*i + j reduces the two small [K, n/B] and [K, B] phase tables in float64, so the big
    array needs only one float32 add before the sine.
    """
    block = 128
    cycles = np.asarray(freqs_hz, dtype=np.float64)[:, None] / note.sr
    coarse = cycles * (block * np.arange(-(-note.n // block))) + note.rng.uniform(size=cycles.shape)
    fine = cycles * np.arange(block)
    coarse = (coarse - np.floor(coarse)).astype(np.float32)
    fine = (fine - np.floor(fine)).astype(np.float32)
    phase = (coarse[:, :, None] + fine[:, None, :]).reshape(len(cycles), -1)[:, : note.n]
    return np.sin(np.float32(2 * np.pi) * phase)


def _adsr(note: _Note, attack: float, decay: float, sustain: float, release: float) -> np.ndarray:
    """Piecewise-linear ADSR with the note-off at _NOTE_OFF of the slice (times in seconds)."""
    attack = min(attack, 0.5 * note.dur)
    off = max(_NOTE_OFF * note.dur, attack + decay)
    times = [0.0, attack, attack + decay + 1e-9, off + 2e-9, off + release + 3e-9]
    return np.interp(note.t, times, [0.0, 1.0, sustain, sustain, 0.0])


def _decay(note: _Note, t60: float) -> np.ndarray:
    """Exponential decay reaching -60 dB at `t60` seconds."""
    return np.exp(-_LN1000 / t60 * note.t)


def _vibrato(note: _Note, rate_hz: float, depth_cents: float, delay_s: float) -> np.ndarray:
    """Instantaneous frequency with a vibrato that fades in after `delay_s` (as players do)."""
    fade_in = np.clip((note.t - delay_s) / 0.25, 0.0, 1.0)
    rate = rate_hz * note.rng.uniform(0.9, 1.1)
    lfo = np.sin((2 * np.pi * rate * note.t + note.rng.uniform(0, 2 * np.pi)).astype(np.float32))  # fast
    return note.f0 * np.exp2(depth_cents / 1200 * fade_in * lfo)


def _one_pole_lowpass(x: np.ndarray, cutoff_hz: float, sr: int) -> np.ndarray:
    a = math.exp(-2 * math.pi * min(cutoff_hz, 0.45 * sr) / sr)
    return lfilter([1 - a], [1, -a], x)


def _resonator(x: np.ndarray, freq_hz: float, bandwidth_hz: float, sr: int) -> np.ndarray:
    """Two-pole resonance (a formant) normalised to unit gain at DC, so cascades keep their level."""
    r = math.exp(-math.pi * bandwidth_hz / sr)
    c = 2 * r * math.cos(2 * math.pi * min(freq_hz, 0.45 * sr) / sr)
    return lfilter([1 - c + r * r], [1, -c, r * r], x)


def _noise_burst(note: _Note, t60: float, cutoff_hz: float) -> np.ndarray:
    """Low-passed noise decaying fast: the non-harmonic strike of a hammer, mallet or pick."""
    length = min(note.n, int(t60 * note.sr) + 1)
    burst = _one_pole_lowpass(note.rng.standard_normal(length), cutoff_hz, note.sr)
    out = np.zeros(note.n)
    out[:length] = burst * _decay(note, t60)[:length]
    return out


def _brightness_qualities(brightness: float) -> set[str]:
    """bright / dark from a recipe's own 0..1 measure of how strong its upper harmonics are."""
    if brightness >= 0.7:
        return {"bright"}
    if brightness <= 0.3:
        return {"dark"}
    return set()


def _envelope_qualities(audio: np.ndarray, note: _Note) -> set[str]:
    """fast_decay and long_release, measured on the rendered note (any recipe can earn them):

    fast_decay    the level just before the note-off is >= 20 dB below the loudest frame;
    long_release  the note is still sounding (within 40 dB of the loudest frame) at the slice end,
                  a quarter of the slice after the note-off.
    """
    frame = max(1, min(int(0.032 * note.sr), note.n // 8))
    power = np.mean(audio[: note.n // frame * frame].reshape(-1, frame) ** 2, axis=1)
    peak = power.max()
    off = max(frame, int(_NOTE_OFF * note.n))
    before_off = np.mean(audio[off - frame : off] ** 2)
    at_end = np.mean(audio[note.n - frame :] ** 2)
    out = set()
    if before_off < peak * 10 ** (-20 / 10):
        out.add("fast_decay")
    if at_end > peak * 10 ** (-40 / 10):
        out.add("long_release")
    return out


# ----------------------------------------------------------------------------------------- recipes
# Each recipe: (note, preset) -> (audio, qualities). Presets are plain dicts of the recipe's parameters.

Preset = Mapping[str, Any]
Rendered = tuple[np.ndarray, set[str]]


def _karplus_strong(
    note: _Note, t60: float, excite_cutoff_hz: float, pluck_pos: float, noise: float
) -> np.ndarray:
    """Plucked string: one period of excitation circulating in a damped delay loop.

    The loop y[n] = x[n] + g * (c0 y[n-N] + c1 y[n-N-1] + c2 y[n-N-2]) combines KS's two-point average
    (the string's frequency-dependent loss) with linear interpolation for the fractional part of the
    period, so the pitch is right to a few cents; it is all one IIR filter, i.e. one lfilter call.
    The excitation is the triangle a string is pulled into at the plucking point (harmonics ~
    sin(pi k pos) / k^2, so the fundamental is strong, unlike classic all-noise KS where any harmonic
    may come out weak by chance) plus low-passed noise for the attack's brightness.
    """
    period = note.sr / note.f0
    delay = int(math.floor(period - 0.5))  # the averaging + interpolation add 0.5 + frac samples
    frac = period - 0.5 - delay
    x = np.linspace(0.0, 1.0, delay + 2, endpoint=False)
    exc = np.where(x < pluck_pos, x / pluck_pos, (1 - x) / (1 - pluck_pos))
    exc = exc + noise * _one_pole_lowpass(note.rng.standard_normal(len(x)), excite_cutoff_hz, note.sr)
    exc -= exc.mean()  # a DC offset would circulate as long as the note
    signal = np.zeros(note.n)
    signal[: len(exc)] = exc[: note.n]
    g = 10.0 ** (-3.0 / (note.f0 * t60))  # per-period loop gain for -60 dB after t60 seconds
    den = np.zeros(delay + 3)
    den[0] = 1.0
    den[delay:] -= 0.5 * g * np.array([1 - frac, 1.0, frac])
    return lfilter([1.0], den, signal)


def _render_plucked(note: _Note, p: Preset) -> Rendered:
    """Guitar and bass: Karplus-Strong; higher strings ring shorter, velocity brightens the pluck."""
    t60 = p["t60"] * (110.0 / note.f0) ** 0.3
    cutoff = p["cutoff"] * (0.4 + 0.9 * note.vel)
    audio = _karplus_strong(note, t60, cutoff, p["pluck_pos"], p["noise"])
    qualities = set()
    if p.get("pick", 0.0) > 0:  # a pick's click: the non-harmonic onset NSynth calls percussive
        audio = audio / np.max(np.abs(audio)) + p["pick"] * note.vel * _noise_burst(note, 0.004, 6000.0)
        qualities.add("percussive")
    return audio, qualities | _brightness_qualities(cutoff / 6000.0)


def _render_brass(note: _Note, p: Preset) -> Rendered:
    """Brass: all harmonics, a spectral envelope whose cutoff rises with loudness (velocity and attack)."""
    env = _adsr(note, attack=p["attack"], decay=0.12, sustain=0.8, release=0.08)
    freq = _vibrato(note, rate_hz=5.0, depth_cents=p["vibrato"], delay_s=0.3)
    k = np.arange(1, _num_harmonics(freq.max(), note) + 1)
    cutoff = p["cutoff"] * (0.3 + 1.0 * note.vel)  # Hz: the bell's cutoff, opened by blowing harder
    # Loud brass peaks around its 3rd harmonic rather than at the fundamental.
    bright = np.exp(-k * note.f0 / cutoff) * (1 + 0.8 * np.exp(-((k - 3.0) ** 2) / 4))
    dark = np.exp(-k * note.f0 / (0.25 * cutoff))
    cycles = _phase_cycles(freq, note)
    morph = env**2  # the brightness follows the loudness: the "blat" of a brass attack
    audio = env * (
        (1 - morph) * _read_table(_harmonic_table(dark), cycles)
        + morph * _read_table(_harmonic_table(bright), cycles)
    )
    return audio, {"nonlinear_env"} | _brightness_qualities(cutoff / 3000.0)


def _render_reed(note: _Note, p: Preset) -> Rendered:
    """Reed: a clarinet's closed-pipe spectrum, odd harmonics strong and even ones 22-30 dB down."""
    env = _adsr(note, attack=p["attack"], decay=0.05, sustain=0.9, release=0.06)
    freq = _vibrato(note, rate_hz=4.5, depth_cents=p["vibrato"], delay_s=0.35)
    k = np.arange(1, _num_harmonics(freq.max(), note) + 1)
    cutoff = p["cutoff"] * (0.4 + 0.8 * note.vel)
    amps = np.exp(-k * note.f0 / cutoff) / k**0.5 * np.where(k % 2 == 1, 1.0, p["even"])
    audio = env * _read_table(_harmonic_table(amps), _phase_cycles(freq, note))
    breath = 0.02 * env * _resonator(note.rng.standard_normal(note.n), 1800.0, 1200.0, note.sr)
    return audio + breath, _brightness_qualities(cutoff / 3000.0)


def _render_flute(note: _Note, p: Preset) -> Rendered:
    """Flute: nearly a sine (weak 2nd/3rd harmonics) plus breath noise, with a noisy 'chiff' onset."""
    env = _adsr(note, attack=p["attack"], decay=0.1, sustain=0.85, release=0.1)
    freq = _vibrato(note, rate_hz=5.0, depth_cents=p["vibrato"], delay_s=0.2)
    overtone = p["overtones"] * (0.3 + 0.7 * note.vel)
    amps = np.array([1.0, 0.3 * overtone, 0.12 * overtone, 0.05 * overtone])
    amps = amps[: _num_harmonics(freq.max(), note)]
    tone = env * _read_table(_harmonic_table(amps), _phase_cycles(freq, note))
    white = note.rng.standard_normal(note.n + 1)
    noise = _resonator(np.diff(white), p["noise_hz"], 0.8 * p["noise_hz"], note.sr)  # diff: no rumble
    chiff = 1.0 + 3.0 * np.exp(-note.t / 0.04)  # the breath is loudest before the tone has built up
    breath = p["breath"] * (0.5 + 0.5 * note.vel) * env**0.5 * chiff * noise
    return tone + breath, _brightness_qualities(overtone / 2)


def _render_string(note: _Note, p: Preset) -> Rendered:
    """Bowed string: sawtooth through body resonances, vibrato from the start, slow bowed attack."""
    env = _adsr(note, attack=p["attack"], decay=0.1, sustain=0.9, release=p["release"])
    # An ensemble: slightly detuned players, each with their own vibrato, beat against each other.
    freqs = [_vibrato(note, 6.0, p["vibrato"], delay_s=0.0) * 2 ** (cents / 1200) for cents in p["voices"]]
    k = np.arange(1, _num_harmonics(max(f.max() for f in freqs), note) + 1)
    hz = k * note.f0
    body = sum(g / (1 + ((hz - f) / (0.3 * f)) ** 2) for f, g in ((280.0, 2.0), (450.0, 1.5), (2500.0, 2.5)))
    cutoff = p["cutoff"] * (0.5 + 0.7 * note.vel)
    table = _harmonic_table((1.0 + body) / k * np.exp(-hz / cutoff))
    audio = sum(_read_table(table, _phase_cycles(freq, note)) for freq in freqs)
    return env * audio, _brightness_qualities(cutoff / 5000.0)


def _render_synth_lead(note: _Note, p: Preset) -> Rendered:
    """Synth lead: two detuned pulse waves through a filter that opens at the attack and then wobbles
    in time with a 120 BPM tempo (an LFO synced to 8th or 16th notes), full sustain."""
    env = _adsr(note, attack=0.005, decay=0.05, sustain=1.0, release=0.05)
    k = np.arange(1, _num_harmonics(note.f0 * 2 ** (p["detune"] / 1200), note) + 1)
    pulse = np.sin(np.pi * k * p["width"]) / k  # a pulse of duty `width`: every 1/width-th harmonic missing
    cutoff = p["cutoff"] * (0.4 + 0.8 * note.vel)
    bright = _harmonic_table(pulse * np.exp(-k * note.f0 / cutoff))
    dark = _harmonic_table(pulse * np.exp(-k * note.f0 / (0.15 * cutoff)))
    lfo_hz = 2.0 * p["lfo_per_beat"]  # 120 BPM = 2 beats per second
    wobble = 0.5 + 0.5 * np.cos(2 * np.pi * lfo_hz * note.t)
    morph = np.maximum(np.exp(-note.t / 0.05), wobble)  # filter envelope, then the synced wobble
    audio = np.zeros(note.n)
    for cents in (-p["detune"], p["detune"]):
        cycles = _phase_cycles(note.f0 * 2 ** (cents / 1200), note)
        audio += morph * _read_table(bright, cycles) + (1 - morph) * _read_table(dark, cycles)
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


def _render_vocal(note: _Note, p: Preset) -> Rendered:
    """Voice: a band-limited glottal pulse train through a cascade of three formant resonators."""
    env = _adsr(note, attack=0.08, decay=0.1, sustain=0.9, release=0.1)
    freq = _vibrato(note, rate_hz=5.5, depth_cents=p["vibrato"], delay_s=0.15)
    k = np.arange(1, _num_harmonics(freq.max(), note) + 1)
    tilt = 1.8 - 0.8 * note.vel  # pressed (louder) phonation has stronger upper harmonics
    voice = _read_table(_harmonic_table(k**-tilt), _phase_cycles(freq, note))
    voice += 0.02 * note.rng.standard_normal(note.n)  # aspiration
    for formant, bandwidth in zip(_VOWELS[str(p["vowel"])], (70.0, 100.0, 150.0), strict=True):
        voice = _resonator(voice, formant * p["formant_scale"], bandwidth, note.sr)
    return env * voice, _brightness_qualities(1.8 - tilt)


# Hammond drawbars in panel order (16', 5 1/3', 8', 4', 2 2/3', 2', 1 3/5', 1 1/3', 1') as multiples of
# half the fundamental: the 16' sounds an octave below the key, 8' at the key's pitch.
_DRAWBAR_HARMONICS = np.array([1, 3, 2, 4, 6, 8, 10, 12, 16])


def _render_organ(note: _Note, p: Preset) -> Rendered:
    """Organ: additive drawbar sines at fixed levels (3 dB per drawbar step), a steady gated envelope."""
    levels = np.array([int(c) for c in str(p["drawbars"])], dtype=float)
    gains = np.where(levels > 0, 10 ** ((levels - 8) * 3 / 20), 0.0)
    gains[4:] *= 0.5 + 0.5 * note.vel  # velocity-sensitive upper drawbars, as on many digital organs
    keep = _DRAWBAR_HARMONICS * note.f0 / 2 < note.nyquist
    amps = np.zeros(_DRAWBAR_HARMONICS.max())
    amps[_DRAWBAR_HARMONICS[keep] - 1] = gains[keep]
    env = _adsr(note, attack=0.008, decay=0.01, sustain=1.0, release=0.04)
    audio = env * _read_table(_harmonic_table(amps), _phase_cycles(note.f0 / 2, note))
    upper = gains[4:].sum() / gains.sum()  # share of the 2 2/3' and higher drawbars
    return audio, _brightness_qualities(1.6 * upper)


def _render_keyboard(note: _Note, p: Preset) -> Rendered:
    """Piano-like: stiff-string partials (f_k = k f0 sqrt(1 + B k^2)) that decay faster the higher
    they are, a two-stage decay (prompt sound, then aftersound), a damper at note-off, hammer noise."""
    k = np.arange(1, 17, dtype=np.float64)  # 16 partials carry the timbre; the hammer adds the highs
    partial_hz = k * note.f0 * np.sqrt(1 + p["inharmonicity"] * k**2)
    k, partial_hz = k[partial_hz < note.nyquist], partial_hz[partial_hz < note.nyquist]
    t60 = p["t60"] * (261.6 / note.f0) ** 0.5  # bass strings ring longer
    amps = k ** -(1.6 - 0.8 * note.vel) * note.rng.uniform(0.8, 1.2, len(k))
    partials = _sin_partials(partial_hz, note)
    rates = (_LN1000 / t60 * (1 + p["damping"] * (k - 1))).astype(np.float32)[:, None]
    t = note.t.astype(np.float32)
    decays = 0.8 * np.exp(-6 * rates * t) + 0.2 * np.exp(-rates * t)  # prompt sound, then aftersound
    audio = (amps.astype(np.float32) @ (partials * decays)).astype(np.float64)
    audio *= _adsr(note, attack=0.002, decay=0.0, sustain=1.0, release=0.12)  # damper
    audio += p["hammer"] * (0.3 + 0.7 * note.vel) * _noise_burst(note, 0.015, 3000.0)
    return audio, {"percussive"} | _brightness_qualities(note.vel)  # velocity sets the spectral tilt


def _render_mallet(note: _Note, p: Preset) -> Rendered:
    """FM bell / mallet: carrier at f0, modulator at an inharmonic ratio, index and level decaying fast."""
    fm = p["ratio"] * note.f0
    # Sidebands beyond index+1 are negligible (Carson's rule): cap the index so they stay below Nyquist.
    max_index = max(0.0, (note.nyquist - note.f0) / fm - 1.0)
    index0 = min(p["index"] * (0.4 + 0.8 * note.vel), max_index)
    t60 = p["t60"] * (261.6 / note.f0) ** 0.3
    index = index0 * np.exp(-note.t / (0.15 * t60))
    modulator = np.sin(2 * np.pi * (fm * note.t + note.rng.uniform()))
    carrier = 2 * np.pi * (note.f0 * note.t + note.rng.uniform())
    audio = np.sin(carrier + index * modulator) * _decay(note, t60)
    audio += p["strike"] * (0.4 + 0.6 * note.vel) * _noise_burst(note, 0.01, 5000.0)
    return audio, {"percussive"} | _brightness_qualities(index0 / 3.0)


# ----------------------------------------------------------------------------------------- family table


@dataclass(frozen=True)
class _Family:
    render: Callable[[_Note, Preset], Rendered]
    pitch_range: tuple[int, int]  # the instrument's natural MIDI range, intersected with the requested one
    presets: tuple[Preset, ...]


_RECIPES: dict[str, _Family] = {
    "bass": _Family(
        _render_plucked,
        (28, 55),
        (
            {"t60": 4.0, "cutoff": 700.0, "pluck_pos": 0.2, "noise": 0.3},  # fingered electric: long, round
            {"t60": 3.0, "cutoff": 1100.0, "pluck_pos": 0.12, "noise": 0.5},  # picked
            {"t60": 2.5, "cutoff": 450.0, "pluck_pos": 0.3, "noise": 0.2},  # upright, very dark
        ),
    ),
    "brass": _Family(
        _render_brass,
        (40, 82),
        (
            {"attack": 0.04, "cutoff": 2200.0, "vibrato": 8.0},  # trumpet
            {"attack": 0.06, "cutoff": 1400.0, "vibrato": 5.0},  # trombone
            {"attack": 0.08, "cutoff": 1000.0, "vibrato": 0.0},  # horn
        ),
    ),
    "flute": _Family(
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
    "guitar": _Family(
        _render_plucked,
        (40, 84),
        (
            {"t60": 0.9, "cutoff": 5000.0, "pluck_pos": 0.15, "noise": 1.0, "pick": 0.4},  # steel, picked
            {"t60": 0.6, "cutoff": 3000.0, "pluck_pos": 0.25, "noise": 0.6, "pick": 0.0},  # nylon, fingered
            {"t60": 1.1, "cutoff": 7000.0, "pluck_pos": 0.1, "noise": 1.5, "pick": 0.6},  # bright electric
        ),
    ),
    "keyboard": _Family(
        _render_keyboard,
        (21, 108),
        (
            {"t60": 3.0, "inharmonicity": 4e-4, "damping": 0.35, "hammer": 0.25},  # grand
            {"t60": 2.0, "inharmonicity": 8e-4, "damping": 0.5, "hammer": 0.4},  # upright
            {"t60": 4.0, "inharmonicity": 2e-4, "damping": 0.25, "hammer": 0.15},  # mellow
        ),
    ),
    "mallet": _Family(
        _render_mallet,
        (48, 96),
        (
            {"ratio": 3.5, "index": 3.0, "t60": 0.5, "strike": 0.5},  # bell
            {"ratio": 2.76, "index": 2.0, "t60": 0.35, "strike": 0.7},  # glockenspiel-ish
            {"ratio": 4.2, "index": 1.5, "t60": 0.25, "strike": 0.9},  # marimba-ish, woody and short
        ),
    ),
    "organ": _Family(
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
    "reed": _Family(
        _render_reed,
        (45, 91),
        (
            {"attack": 0.03, "cutoff": 2500.0, "even": 0.03, "vibrato": 0.0},  # clarinet
            {"attack": 0.05, "cutoff": 1500.0, "even": 0.05, "vibrato": 6.0},  # bass clarinet-ish
            {"attack": 0.03, "cutoff": 4000.0, "even": 0.08, "vibrato": 10.0},  # bright
        ),
    ),
    "string": _Family(
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
    "synth_lead": _Family(
        _render_synth_lead,
        (36, 96),
        (
            {"width": 0.5, "detune": 8.0, "cutoff": 3000.0, "lfo_per_beat": 2},  # square, 8th-note wobble
            {"width": 0.25, "detune": 12.0, "cutoff": 4000.0, "lfo_per_beat": 4},  # 16th notes
            {"width": 0.12, "detune": 6.0, "cutoff": 5000.0, "lfo_per_beat": 2},  # thin pulse
        ),
    ),
    "vocal": _Family(
        _render_vocal,
        (43, 79),
        tuple(
            {"vowel": vowel, "vibrato": 30.0, "formant_scale": scale}
            for vowel, scale in (("a", 1.0), ("o", 1.0), ("e", 1.15), ("i", 1.15), ("u", 1.0))
        ),
    ),
}

FAMILIES: tuple[str, ...] = tuple(name for name in NSYNTH_FAMILIES if name in _RECIPES)


# ----------------------------------------------------------------------------------------- public API


def _velocity_peak(velocity: int) -> float:
    """Peak level for a velocity: linear from ~0.057 (velocity 1) to 0.99 (velocity 127)."""
    return 0.05 + 0.94 * velocity / 127


def _check_note_args(family: str, pitch: int, velocity: int, sample_rate: int, num_samples: int) -> None:
    if family not in _RECIPES:
        raise ConfigError(f"unknown built-in family {family!r}. Fix: use one of {list(FAMILIES)}.")
    if not 1 <= velocity <= 127:
        raise ConfigError(f"velocity {velocity} is outside 1..127. Fix: use a MIDI velocity in 1..127.")
    if sample_rate < 4000 or num_samples < 64:
        raise ConfigError(
            f"sample_rate={sample_rate}, slice_len={num_samples} too small. Fix: sample_rate >= 4000, "
            "slice_len >= 64."
        )
    # 1.03: room for vibrato and detuned voices, which raise a note's top frequency by up to 2.5%.
    if not 0 <= pitch <= 127 or _midi_to_hz(pitch) >= 0.45 * sample_rate / 1.03:
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
    recipe = _RECIPES[family]
    if not 0 <= preset < len(recipe.presets):
        raise ConfigError(f"{family} has presets 0..{len(recipe.presets) - 1}, not {preset}.")
    note = _Note(_midi_to_hz(pitch), velocity / 127, sample_rate, num_samples, rng)
    audio, qualities = recipe.render(note, recipe.presets[preset])
    fade = min(num_samples // 4, int(_END_FADE_S * sample_rate))
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
        preset = int(rng.integers(len(_RECIPES[family].presets))) if family in _RECIPES else 0
    return _render(family, preset, pitch, velocity, sample_rate, num_samples, rng)[0]


def family_pitch_range(family: str, pitch_range: Sequence[int] = (36, 84)) -> tuple[int, int]:
    """The family's natural range within the requested one (bass low, flute high). When they do not
    overlap, the requested range wins: it is the data set's overall range."""
    lo, hi = int(pitch_range[0]), int(pitch_range[1])
    nat_lo, nat_hi = _RECIPES[family].pitch_range
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
    unknown = [f for f in families if f not in _RECIPES]
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
        preset = int(rng.integers(len(_RECIPES[family].presets)))
        lo, hi = family_pitch_range(family, pitch_range)
        pitch = int(rng.integers(lo, hi + 1))
        velocity = velocities[int(rng.integers(len(velocities)))]
        audio, qualities = _render(family, preset, pitch, velocity, sample_rate, slice_len, rng)
        yield audio, note_meta(index, family, preset, pitch, velocity, qualities)
