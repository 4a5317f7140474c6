"""Each data source ingested into the store: audio folders (several formats, sample rates, broken
files), a local data set with NSynth's deeplake layout, and the error when nothing is usable."""

from pathlib import Path

import deeplake
import numpy as np
import pytest
import soundfile as sf

from wavegan.cli.app import compose
from wavegan.data.store import open_store
from wavegan.errors import DataError

SR = 16000
SLICE = 4096


def tone(freq: float, seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = (0.5 * np.sin(2 * np.pi * freq * t) * np.exp(-2 * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


@pytest.fixture
def audio_folder(tmp_path: Path) -> Path:
    root = tmp_path / "audio"
    for sub in ("kick", "snare", "hat"):
        (root / sub).mkdir(parents=True)
    sf.write(root / "kick" / "a.wav", tone(110, 0.5, 16000), 16000)
    sf.write(root / "snare" / "b.flac", tone(440, 0.5, 44100, channels=2), 44100)
    sf.write(root / "hat" / "c.ogg", tone(1000, 0.5, 22050), 22050)
    sf.write(root / "kick" / "long.wav", tone(220, 1.0, 16000), 16000, subtype="FLOAT")  # -> 4 slices
    # broken inputs, each for a different reason
    (root / "kick" / "empty.wav").write_bytes(b"")
    (root / "snare" / "corrupt.wav").write_bytes(b"RIFF\x00\x01garbage" * 10)
    (root / "hat" / "notes.flac").write_text("this is not audio")
    sf.write(root / "hat" / "silent.wav", np.zeros(8000, np.float32), 16000)
    nan_audio = tone(300, 0.5, 16000)
    nan_audio[100] = np.nan
    sf.write(root / "snare" / "nan.wav", nan_audio, 16000, subtype="FLOAT")
    sf.write(root / "kick" / "short.wav", tone(300, 0.01, 16000), 16000)
    (root / "readme.txt").write_text("ignored: not an audio extension")
    return root


def audio_dir_cfg(path: Path, *extra: str):
    overrides = [
        "data=audio_dir",
        f"data.path={path}",
        f"data.slice_len={SLICE}",
        "data.valid_fraction=0",
        *extra,
    ]
    return compose(overrides).data


def test_audio_folder_uses_good_files_and_reports_each_bad_one(audio_folder):
    store = open_store(audio_dir_cfg(audio_folder), progress=False)
    s = store.summary
    # a.wav, b.flac, c.ogg: 8000 samples -> 2 slices each; long.wav: 16000 samples -> 4 slices
    assert s["num_clips"] == 10
    reasons = {Path(x["source"]).name: x["reason"] for x in s["skipped"]}
    assert reasons.keys() == {"empty.wav", "corrupt.wav", "notes.flac", "silent.wav", "nan.wav", "short.wav"}
    assert "empty" in reasons["empty.wav"]
    assert "not readable" in reasons["corrupt.wav"] and "not readable" in reasons["notes.flac"]
    assert "silent" in reasons["silent.wav"]
    assert "NaN" in reasons["nan.wav"]
    assert "too short" in reasons["short.wav"]
    assert s["labels"] == {"hat": 2, "kick": 6, "snare": 2}
    audio = store.waveforms(split=None)
    assert audio.shape == (10, SLICE) and audio.dtype == np.float32
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() <= 0.95 + 1e-6


def test_audio_folder_resamples_and_mixes_to_mono(audio_folder):
    store = open_store(audio_dir_cfg(audio_folder), progress=False)
    ids = store.column("note_id", split=None).tolist()
    audio = store.waveforms(split=None)
    snare = audio[ids.index("snare/b.flac#0")]  # 44.1 kHz stereo, 440 Hz
    hat = audio[ids.index("hat/c.ogg#0")]  # 22.05 kHz ogg, 1000 Hz
    assert dominant_hz(snare, SR) == pytest.approx(440, abs=8)
    assert dominant_hz(hat, SR) == pytest.approx(1000, abs=8)


def test_long_file_slices_with_overlap(audio_folder):
    plain = open_store(audio_dir_cfg(audio_folder), progress=False)
    overlapped = open_store(audio_dir_cfg(audio_folder, "data.slice_overlap=0.5"), progress=False)
    count = lambda st: sum(i.startswith("kick/long.wav#") for i in st.column("note_id", split=None))  # noqa: E731
    assert count(plain) == 4
    assert count(overlapped) == 7  # hop 2048 over 16000 samples


def test_slices_of_one_file_share_a_split(audio_folder):
    store = open_store(audio_dir_cfg(audio_folder, "data.valid_fraction=0.5"), progress=False)
    ids, splits = store.column("note_id", split=None), store.column("split", split=None)
    long_splits = {s for i, s in zip(ids, splits, strict=True) if i.startswith("kick/long.wav#")}
    assert len(long_splits) == 1


def test_folder_with_nothing_usable_is_one_clear_error(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.wav").write_bytes(b"")
    sf.write(tmp_path / "bad" / "y.wav", np.zeros(8000, np.float32), 16000)
    with pytest.raises(DataError, match="no usable audio"):
        open_store(audio_dir_cfg(tmp_path / "bad"), progress=False)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        open_store(audio_dir_cfg(tmp_path / "nope"), progress=False)


# --- NSynth through deeplake, on a local data set with NSynth's layout ---------------------------

NSYNTH_NOTE = 64000  # four seconds at 16 kHz


def make_local_nsynth(path: Path, n: int = 12) -> list[dict]:
    """A tiny deeplake data set with NSynth's columns; audio shaped (samples, 1) like the hub copy."""
    ds = deeplake.create(str(path))
    ds.add_column("audios", deeplake.types.Array("float32", dimensions=2))
    for name in ("sample_rate", "pitch", "velocity", "instrument", "instrument_family", "instrument_source"):
        ds.add_column(name, deeplake.types.Int32())
    for name in ("note", "instrument_family_str", "instrument_source_str"):
        ds.add_column(name, deeplake.types.Text())
    ds.add_column("qualities", deeplake.types.Array("int32", dimensions=1))
    rows = []
    families = ["bass", "brass", "flute", "guitar"]
    for i in range(n):
        pitch = 48 + i
        audio = tone(440 * 2 ** ((pitch - 69) / 12), NSYNTH_NOTE / 16000, 16000)
        if i == 3:
            audio[:] = 0.0  # NSynth has silent notes
        rows.append(
            {
                "audios": audio[:, None],
                "sample_rate": 16000,
                "pitch": pitch,
                "velocity": 25 * (i % 5 + 1),
                "instrument": 100 + i % 3,
                "instrument_family": [0, 1, 2, 3][i % 4],
                "instrument_source": i % 3,
                "note": f"{families[i % 4]}_acoustic_{i:03d}-{pitch:03d}-100",
                "instrument_family_str": families[i % 4],
                "instrument_source_str": ["acoustic", "electronic", "synthetic"][i % 3],
                "qualities": np.eye(10, dtype=np.int32)[i % 10],
            }
        )
    ds.append({k: [r[k] for r in rows] for k in rows[0]})
    ds.commit()
    return rows


def test_local_nsynth_layout_loads_through_the_nsynth_path(tmp_path):
    rows = make_local_nsynth(tmp_path / "nsynth-valid")
    cfg = compose(
        [
            "data=nsynth",
            f"data.path={tmp_path / 'nsynth-valid'}",
            "data.num_samples=10",
            "data.valid_fraction=0",
            "data.slice_len=16384",  # the default model (WaveGAN on the CPU) trains on 4096
        ]
    ).data
    store = open_store(cfg, progress=False)
    assert store.summary["num_clips"] == 9  # 10 taken, the silent one skipped
    assert [x["reason"].split(" (")[0] for x in store.summary["skipped"]] == ["silent"]
    notes = store.notes(split=None)
    first = rows[0]
    assert notes[0]["note_id"] == first["note"]
    assert notes[0]["pitch"] == first["pitch"] and notes[0]["velocity"] == first["velocity"]
    assert notes[0]["instrument_family_str"] == "bass" and notes[0]["label"] == "bass"
    assert notes[1]["instrument_source_str"] == "electronic"
    np.testing.assert_array_equal(store.column("qualities", split=None)[1], rows[1]["qualities"])
    audio = store.waveforms(split=None)
    assert audio.shape == (9, 16384)
    np.testing.assert_allclose(audio[0], rows[0]["audios"][:16384, 0], atol=1e-6)


def test_nsynth_offset_and_derived_family_names(tmp_path):
    make_local_nsynth(tmp_path / "ns")
    cfg = compose(
        [
            "data=nsynth",
            f"data.path={tmp_path / 'ns'}",
            "data.num_samples=4",
            "data.offset=4",
            "data.columns.instrument_family_str=null",
        ]
    ).data
    notes = open_store(cfg, progress=False).notes(split=None)
    assert [n["pitch"] for n in notes] == [52, 53, 54, 55]
    # with no string column, names come from NSynth's family index
    assert [n["instrument_family_str"] for n in notes] == ["bass", "brass", "flute", "guitar"]


def test_nsynth_unreachable_path_and_wrong_column_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="cannot open the NSynth data set"):
        open_store(compose(["data=nsynth", f"data.path={tmp_path / 'missing'}"]).data, progress=False)
    make_local_nsynth(tmp_path / "ns", n=2)
    cfg = compose(["data=nsynth", f"data.path={tmp_path / 'ns'}", "data.columns.audio=audio"]).data
    with pytest.raises(DataError, match="data.columns.audio"):
        open_store(cfg, progress=False)
