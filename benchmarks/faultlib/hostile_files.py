"""Hostile and broken audio files for a data folder, each made by one function `make(folder, rng)` that
writes it and returns what a correct ingestion does with it: "skipped" (with a reason), "used" (clips
from it), or "ignored" (not an audio file at all). Huge files are sparse: a header that promises hours
and a file extended with `truncate`, so they cost no disk space and the reader still has to cope."""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


def tone(seconds: float, rate: int, channels: int = 1, freq: float = 330.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def wav_header(frames: int, channels: int, rate: int, bits: int = 16, fmt: int = 1) -> bytes:
    """A canonical 44-byte WAV header (PCM: fmt 1, float: fmt 3) for `frames` frames."""
    block = channels * bits // 8
    data = frames * block
    return (
        b"RIFF" + struct.pack("<I", min(36 + data, 0xFFFFFFFF)) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, fmt, channels, rate, rate * block, block, bits)
        + b"data" + struct.pack("<I", min(data, 0xFFFFFFFF))
    )  # fmt: skip


def sparse_wav(path: Path, hours: float, channels: int, rate: int, loud_seconds: float = 1.0) -> None:
    """A 16-bit WAV of `hours` whose first `loud_seconds` are a tone and the rest sparse silence."""
    frames = int(hours * 3600 * rate)
    loud = (tone(loud_seconds, rate, channels) * 32767).astype("<i2").tobytes()
    with open(path, "wb") as f:
        f.write(wav_header(frames, channels, rate))
        f.write(loud)
        f.truncate(44 + frames * channels * 2)


HEADERS = {  # the first bytes of each format, then random bytes
    "wav": lambda rng: b"RIFF" + rng.randbytes(4) + b"WAVEfmt " + rng.randbytes(20),
    "flac": lambda rng: b"fLaC" + rng.randbytes(38),
    "ogg": lambda rng: b"OggS\x00\x02" + rng.randbytes(22),
    "aiff": lambda rng: b"FORM" + rng.randbytes(4) + b"AIFFCOMM" + rng.randbytes(22),
    "mp3": lambda rng: b"ID3\x04\x00\x00" + rng.randbytes(4) + b"\xff\xfb" + rng.randbytes(2),
}


def random_bytes_with_header(folder: Path, rng: random.Random) -> str:
    ext = rng.choice(sorted(HEADERS))
    (folder / f"random.{ext}").write_bytes(HEADERS[ext](rng) + rng.randbytes(rng.randint(0, 1 << 16)))
    return "skipped or used"  # random PCM behind a valid header is noise, and usable


def valid_header_random_pcm(folder: Path, rng: random.Random) -> str:
    frames = rng.randint(SR // 2, SR * 2)
    (folder / "noise.wav").write_bytes(wav_header(frames, 1, SR) + rng.randbytes(frames * 2))
    return "used"


def zero_length(folder: Path, rng: random.Random) -> str:
    (folder / f"empty.{rng.choice(sorted(HEADERS))}").write_bytes(b"")
    return "skipped"


def header_only(folder: Path, rng: random.Random) -> str:
    """A header that promises minutes of audio, and no data."""
    (folder / "promises.wav").write_bytes(wav_header(SR * 600, 2, SR))
    return "skipped"


def hours_long(folder: Path, rng: random.Random) -> str:
    channels, rate = rng.choice([(8, 48000), (2, 96000), (1, 192000), (1, 44100)])
    sparse_wav(folder / "hours.wav", rng.uniform(0.5, 1.0), channels, rate)  # up to 2.8 GB, read twice
    return "used"


def eight_channels(folder: Path, rng: random.Random) -> str:
    sf.write(folder / "eight.wav", tone(1.0, SR, channels=8), SR)
    return "used"


def rate(hz: int) -> Callable[[Path, random.Random], str]:
    def make(folder: Path, rng: random.Random) -> str:
        sf.write(folder / f"rate_{hz}.wav", tone(1.0, hz), hz)
        return "used"

    make.__name__ = f"rate_{hz}"
    return make


def absurd_rate(folder: Path, rng: random.Random) -> str:
    """1 Hz: ten thousand frames would resample to 160 million samples."""
    (folder / "one_hz.wav").write_bytes(wav_header(10_000, 1, 1) + b"\x10\x00" * 10_000)
    return "skipped"


def non_finite_float(folder: Path, rng: random.Random) -> str:
    audio = tone(1.0, SR)
    audio[rng.randrange(len(audio)) :] = rng.choice([np.nan, np.inf, -np.inf])
    sf.write(folder / "nan.wav", audio, SR, subtype="FLOAT")
    return "skipped"


def symlink_loops(folder: Path, rng: random.Random) -> str:
    (folder / "loop").mkdir()
    os.symlink("..", folder / "loop" / "up")  # a folder loop
    os.symlink("b.wav", folder / "a.wav")  # a file loop
    os.symlink("a.wav", folder / "b.wav")
    os.symlink("nowhere.wav", folder / "dangling.wav")
    return "ignored"


def not_a_file(folder: Path, rng: random.Random) -> str:
    os.mkfifo(folder / "pipe.wav")  # opening it would block for ever
    (folder / "folder.wav").mkdir()
    return "ignored"


MAKERS = [
    random_bytes_with_header, valid_header_random_pcm, zero_length, header_only, hours_long,
    eight_channels, rate(8000), rate(192000), absurd_rate, non_finite_float, symlink_loops, not_a_file,
]  # fmt: skip


def good_file(folder: Path) -> None:
    """The usable file every hostile folder holds beside the hostile one: 2 clips of 4096 samples."""
    sf.write(folder / "good.wav", tone(0.5, SR, freq=220.0), SR)
