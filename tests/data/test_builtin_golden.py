"""The built-in notes do not change: a few notes (every family) against fingerprints recorded from the
synthesiser, so refactoring it cannot alter the default data set, whose stores and caches are keyed by
the data config and not by the code.

On the machine they were recorded on the notes are bit-identical (sha256 of the float32 audio). Another
CPU may round numpy's float32 sine a unit in the last place differently, so where the hash differs the
RMS and 24 samples must still agree to 1e-6: a real change moves them far more.
Re-record (only after an intended change of the sound): `python tests/data/test_builtin_golden.py`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from wavegan.data.sources.builtin import iter_builtin_notes, synthesize_note

GOLDEN = Path(__file__).with_name("builtin_golden.json")
ITER_ARGS = {"num_samples": 22, "slice_len": 8192, "seed": 11}  # two notes of every family
# (family, pitch, velocity, preset) rendered at 16 kHz x 16384 from default_rng(5)
SYNTH_ARGS = [("keyboard", 40, 100, 2), ("vocal", 60, 127, 4), ("synth_lead", 72, 50, 1)]


def fingerprint(audio: np.ndarray) -> dict:
    index = np.linspace(0, len(audio) - 1, 24).round().astype(int)
    return {
        "sha256": hashlib.sha256(np.ascontiguousarray(audio, np.float32).tobytes()).hexdigest(),
        "rms": float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))),
        "samples": [float(x) for x in audio[index]],
    }


def synthesized(args: tuple[str, int, int, int]) -> np.ndarray:
    family, pitch, velocity, preset = args
    return synthesize_note(family, pitch, velocity, 16000, 16384, np.random.default_rng(5), preset=preset)


def record() -> dict:
    return {
        "iter": [{"meta": meta, **fingerprint(audio)} for audio, meta in iter_builtin_notes(**ITER_ARGS)],
        "synthesize": [{"args": list(args), **fingerprint(synthesized(args))} for args in SYNTH_ARGS],
    }


def assert_same_note(actual: dict, expected: dict) -> None:
    if actual["sha256"] == expected["sha256"]:
        return
    assert actual["rms"] == pytest.approx(expected["rms"], rel=1e-6)
    np.testing.assert_allclose(actual["samples"], expected["samples"], rtol=0, atol=1e-6)


def test_builtin_notes_match_the_recorded_fingerprints():
    golden = json.loads(GOLDEN.read_text())
    now = record()
    assert [n["meta"] for n in now["iter"]] == [n["meta"] for n in golden["iter"]]
    for actual, expected in zip(
        now["iter"] + now["synthesize"], golden["iter"] + golden["synthesize"], strict=True
    ):
        assert_same_note(actual, expected)


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(record(), indent=None) + "\n")
    print(f"wrote {GOLDEN}")
