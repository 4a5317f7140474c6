"""Hostile and broken files in a data folder (issue 13, fault 8): each is skipped with a reason, used, or
ignored, never a crash, a hang or an unbounded allocation; a file too large to decode at once is read in
blocks and gives the clips the whole-file path gives."""

import random
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from benchmarks.faultlib import hostile_files
from wavegan.cli.app import compose
from wavegan.data.sources import audio_dir
from wavegan.data.store import open_store

SLICE = 4096


def data_cfg(folder: Path, store: Path, *extra: str):
    overrides = [
        "data=audio_dir",
        f"data.path={folder}",
        f"data.slice_len={SLICE}",
        "data.valid_fraction=0",
        f"data.store_dir={store}",
        *extra,
    ]
    return compose(overrides).data


@pytest.mark.parametrize("make", hostile_files.MAKERS, ids=lambda m: m.__name__)
def test_each_hostile_file_is_skipped_used_or_ignored(tmp_path, make):
    folder = tmp_path / "audio"
    folder.mkdir()
    hostile_files.good_file(folder)
    expected = make(folder, random.Random(0))
    summary = open_store(
        data_cfg(folder, tmp_path / "store", "data.max_slices_per_file=8"), progress=False
    ).summary
    hostile = [s for s in summary["skipped"] if s["source"].split("#")[0] != "good.wav"]
    used = summary["num_clips"] - 2  # good.wav gives 2
    if expected == "skipped":
        assert used == 0 and len(hostile) == 1 and hostile[0]["reason"], summary["skipped"]
    elif expected == "used":
        assert used > 0, summary["skipped"]
    elif expected == "ignored":
        assert used == 0 and not hostile, summary["skipped"]
    else:
        assert used > 0 or (len(hostile) == 1 and hostile[0]["reason"])


def test_a_one_hz_header_is_refused_before_resampling(tmp_path):
    hostile_files.absurd_rate(tmp_path, random.Random(0))
    with pytest.raises(ValueError, match="unsupported sample rate 1 Hz"):
        audio_dir.decode(tmp_path / "one_hz.wav", 16000)


@pytest.mark.parametrize("rate", [16000, 44100])
def test_a_file_read_in_blocks_gives_the_clips_of_the_whole_file(tmp_path, monkeypatch, rate):
    folder = tmp_path / "audio"
    folder.mkdir()
    audio = (
        hostile_files.tone(2.3, rate, channels=2, freq=440.0) * np.linspace(1, 0.2, int(2.3 * rate))[:, None]
    )
    sf.write(folder / "long.wav", audio, rate, subtype="FLOAT")
    whole = open_store(data_cfg(folder, tmp_path / "whole", "data.slice_overlap=0.25"), progress=False)
    monkeypatch.setattr(audio_dir, "WHOLE_FILE_SAMPLES", 5000)
    monkeypatch.setattr(audio_dir, "BLOCK_FRAMES", 3001)
    streamed = open_store(data_cfg(folder, tmp_path / "streamed", "data.slice_overlap=0.25"), progress=False)
    assert list(streamed.column("note_id", None)) == list(whole.column("note_id", None))
    a, b = whole.waveforms(None), streamed.waveforms(None)
    if rate == 16000:  # no resampling: the same numbers
        np.testing.assert_array_equal(a, b)
    else:  # soxr as a stream vs in one call: the same filter, rounding apart
        np.testing.assert_allclose(a, b, atol=2e-3)


def test_hours_of_eight_channel_audio_are_read_in_bounded_memory(tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    hostile_files.sparse_wav(folder / "hours.wav", hours=1.0, channels=8, rate=48000)  # 2.8 GB, sparse
    assert (folder / "hours.wav").stat().st_size > 2_700_000_000
    tracemalloc.start()
    try:
        store = open_store(data_cfg(folder, tmp_path / "store", "data.max_slices_per_file=6"), progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 400 << 20, f"{peak / 2**20:.0f} MB"  # decoded whole: 5.5 GB of float32
    # the tone's first second gives 4 clips; the next two slices are silence, skipped as such
    assert store.summary["num_clips"] == 4
    assert [s["reason"] for s in store.summary["skipped"]] == ["silent slice", "silent slice"]


def test_evaluating_a_folder_reads_one_clip_of_each_file(tmp_path):
    hostile_files.sparse_wav(tmp_path / "hours.wav", hours=1.0, channels=8, rate=48000)
    audio = audio_dir.decode(tmp_path / "hours.wav", 16000, max_seconds=SLICE / 16000)
    assert SLICE <= len(audio) <= SLICE + 2
