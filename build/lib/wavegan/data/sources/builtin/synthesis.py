"""DSP building blocks of the built-in notes: the note context, band-limited wavetables, envelopes,
filters and the Karplus-Strong string (numpy/scipy only).

Speed: no per-sample Python loops. Harmonic tones read band-limited wavetables (one period built by an
inverse FFT with no harmonic at or above 0.95 x Nyquist, so nothing aliases); inharmonic partials use
float32 sines (numpy's float32 sin is ~10x faster than float64 here); filters are scipy.signal.lfilter.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

# Wavetable length: > 2x the most harmonics a note can have (a 41 Hz fundamental at 16 kHz has ~185),
# and large enough that linear interpolation's images stay ~60 dB down.
TABLE_SIZE = 4096
NYQUIST_GUARD = 0.95  # harmonics stay below 0.95 x Nyquist: the table interpolation adds a little width
NOTE_OFF = 0.75  # sustained notes are released at 3/4 of the slice, as NSynth releases at 3 s of 4 s
END_FADE_S = 0.005  # a short fade at the slice end so a truncated note does not end in a click
LN1000 = math.log(1000.0)  # for t60 decays: exp(-LN1000 * t / t60) is -60 dB at t60


# ----------------------------------------------------------------------------------------- note context


@dataclass(frozen=True)
class Note:
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
        return NYQUIST_GUARD * self.sr / 2


@functools.lru_cache(maxsize=8)
def _time_axis(n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    t.flags.writeable = False  # shared between notes through the cache
    return t


def midi_to_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


# ----------------------------------------------------------------------------------------- building blocks


def harmonic_table(amps: np.ndarray) -> np.ndarray:
    """One period of sum_k amps[k-1] * sin(2 pi k x) at TABLE_SIZE points (+2 guard samples for reading)."""
    spectrum = np.zeros(TABLE_SIZE // 2 + 1, dtype=np.complex128)
    spectrum[1 : len(amps) + 1] = -0.5j * TABLE_SIZE * np.asarray(amps, dtype=np.float64)
    table = np.fft.irfft(spectrum, TABLE_SIZE)
    return np.concatenate([table, table[:2]])


def num_harmonics(f_max: float, note: Note, cap: int = TABLE_SIZE // 2 - 1) -> int:
    """How many harmonics of a tone whose fundamental reaches `f_max` stay below the guarded Nyquist."""
    return max(1, min(cap, int(note.nyquist // f_max)))


def phase_cycles(freq: np.ndarray | float, note: Note) -> np.ndarray:
    """Running phase in cycles for an instantaneous frequency, from a random start phase."""
    start = note.rng.uniform()
    if np.ndim(freq) == 0:
        return start + float(freq) * note.t
    cycles = np.cumsum(freq) / note.sr
    return start + cycles - cycles[0]


def read_table(table: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    """Linear-interpolated wavetable lookup: O(n) whatever the number of harmonics."""
    pos = (cycles - np.floor(cycles)) * TABLE_SIZE
    idx = pos.astype(np.intp)
    frac = pos - idx
    lo = table[idx]
    return lo + frac * (table[idx + 1] - lo)


def sin_partials(freqs_hz: np.ndarray, note: Note) -> np.ndarray:
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


def adsr(note: Note, attack: float, decay: float, sustain: float, release: float) -> np.ndarray:
    """Piecewise-linear ADSR with the note-off at NOTE_OFF of the slice (times in seconds)."""
    attack = min(attack, 0.5 * note.dur)
    off = max(NOTE_OFF * note.dur, attack + decay)
    times = [0.0, attack, attack + decay + 1e-9, off + 2e-9, off + release + 3e-9]
    return np.interp(note.t, times, [0.0, 1.0, sustain, sustain, 0.0])


def t60_decay(note: Note, t60: float) -> np.ndarray:
    """Exponential decay reaching -60 dB at `t60` seconds."""
    return np.exp(-LN1000 / t60 * note.t)


def vibrato(note: Note, rate_hz: float, depth_cents: float, delay_s: float) -> np.ndarray:
    """Instantaneous frequency with a vibrato that fades in after `delay_s` (as players do)."""
    fade_in = np.clip((note.t - delay_s) / 0.25, 0.0, 1.0)
    rate = rate_hz * note.rng.uniform(0.9, 1.1)
    lfo = np.sin((2 * np.pi * rate * note.t + note.rng.uniform(0, 2 * np.pi)).astype(np.float32))  # fast
    return note.f0 * np.exp2(depth_cents / 1200 * fade_in * lfo)


def one_pole_lowpass(x: np.ndarray, cutoff_hz: float, sr: int) -> np.ndarray:
    a = math.exp(-2 * math.pi * min(cutoff_hz, 0.45 * sr) / sr)
    return lfilter([1 - a], [1, -a], x)


def resonator(x: np.ndarray, freq_hz: float, bandwidth_hz: float, sr: int) -> np.ndarray:
    """Two-pole resonance (a formant) normalised to unit gain at DC, so cascades keep their level."""
    r = math.exp(-math.pi * bandwidth_hz / sr)
    c = 2 * r * math.cos(2 * math.pi * min(freq_hz, 0.45 * sr) / sr)
    return lfilter([1 - c + r * r], [1, -c, r * r], x)


def noise_burst(note: Note, t60: float, cutoff_hz: float) -> np.ndarray:
    """Low-passed noise decaying fast: the non-harmonic strike of a hammer, mallet or pick."""
    length = min(note.n, int(t60 * note.sr) + 1)
    burst = one_pole_lowpass(note.rng.standard_normal(length), cutoff_hz, note.sr)
    out = np.zeros(note.n)
    out[:length] = burst * t60_decay(note, t60)[:length]
    return out


def karplus_strong(
    note: Note, t60: float, excite_cutoff_hz: float, pluck_pos: float, noise: float
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
    exc = exc + noise * one_pole_lowpass(note.rng.standard_normal(len(x)), excite_cutoff_hz, note.sr)
    exc -= exc.mean()  # a DC offset would circulate as long as the note
    signal = np.zeros(note.n)
    signal[: len(exc)] = exc[: note.n]
    g = 10.0 ** (-3.0 / (note.f0 * t60))  # per-period loop gain for -60 dB after t60 seconds
    den = np.zeros(delay + 3)
    den[0] = 1.0
    den[delay:] -= 0.5 * g * np.array([1 - frac, 1.0, frac])
    return lfilter([1.0], den, signal)
