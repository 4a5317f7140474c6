"""The store is built once and reused; an interrupted ingestion never passes for a finished one."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import wavegan.data.store as store_module
from tests.conftest import REPO_ROOT
from wavegan.cli.app import compose
from wavegan.data.store import open_store, store_root

SMALL = ["data.num_samples=48", "data.slice_len=4096"]


def test_second_open_reuses_the_store_without_ingesting(monkeypatch):
    cfg = compose(SMALL).data
    first = open_store(cfg, progress=False)

    def must_not_ingest(_cfg):
        raise AssertionError("a complete store was ingested again")

    monkeypatch.setattr(store_module, "iter_source", must_not_ingest)
    second = open_store(cfg, progress=False)
    assert second.root == first.root
    np.testing.assert_array_equal(second.waveforms(None), first.waveforms(None))


def test_a_content_change_builds_a_new_store_but_the_store_dir_does_not(tmp_path):
    base = compose(SMALL).data
    assert store_root(compose([*SMALL, "data.seed=7"]).data) != store_root(base)
    assert store_root(compose([*SMALL, "data.num_samples=47"]).data) != store_root(base)
    moved = compose([*SMALL, f"data.store_dir={tmp_path}"]).data
    assert store_root(moved).name == store_root(base).name


def test_builtin_store_is_deterministic_and_split(tmp_path):
    a = open_store(compose([*SMALL, f"data.store_dir={tmp_path / 'a'}"]).data, progress=False)
    b = open_store(compose([*SMALL, f"data.store_dir={tmp_path / 'b'}"]).data, progress=False)
    np.testing.assert_array_equal(a.waveforms(None), b.waveforms(None))
    assert sum(a.summary["splits"].values()) == 48
    assert a.summary["splits"]["train"] > 30 and a.summary["splits"]["valid"] > 0
    assert len(a.waveforms("train")) == a.summary["splits"]["train"]


def test_exception_mid_ingestion_leaves_no_store(monkeypatch):
    cfg = compose([*SMALL, "data.seed=11"]).data
    real = store_module.iter_source

    def interrupted(c):
        for i, item in enumerate(real(c)):
            if i == 20:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(store_module, "iter_source", interrupted)
    with pytest.raises(KeyboardInterrupt):
        open_store(cfg, progress=False)
    root = store_root(cfg)
    assert not root.exists()
    assert not list(root.parent.glob(f".{root.name}.partial-*"))
    monkeypatch.setattr(store_module, "iter_source", real)
    assert open_store(cfg, progress=False).summary["num_clips"] == 48


def test_a_full_disk_while_building_the_store_is_one_message_and_leaves_no_half_store(monkeypatch, tmp_path):
    """Fault 4 of issue 13 for the data store: deeplake reports a full disk as a RuntimeError with the
    OS's text (measured on a 3 MB tmpfs: "Failed to write to _deeplake_log/...: No space left on device",
    then a traceback). Now: one DataError naming the folder and the fix; no half store; a complete store
    beside it untouched."""
    from wavegan.errors import DataError

    kept = open_store(compose([*SMALL, f"data.store_dir={tmp_path}"]).data, progress=False)
    cfg = compose([*SMALL, "data.seed=12", f"data.store_dir={tmp_path}"]).data
    real = store_module.iter_source

    def disk_fills(c):
        for i, item in enumerate(real(c)):
            if i == 20:
                raise RuntimeError(f"Failed to write to _deeplake_log/x/next_base: {os.strerror(28)}")
            yield item

    monkeypatch.setattr(store_module, "iter_source", disk_fills)
    with pytest.raises(DataError, match=r"disk full while writing the data store to .*Fix: free space"):
        open_store(cfg, progress=False)
    root = store_root(cfg)
    assert not root.exists() and not list(root.parent.glob(f".{root.name}.partial-*"))
    assert (kept.root / "summary.json").is_file()
    monkeypatch.setattr(store_module, "iter_source", real)
    assert open_store(cfg, progress=False).summary["num_clips"] == 48


def test_killed_ingestion_is_not_taken_as_complete(tmp_path):
    """SIGKILL (no clean-up runs) mid-ingestion, then a new run rebuilds from scratch."""
    store_dir = tmp_path / "store"
    overrides = ["data.num_samples=3000", f"data.store_dir={store_dir}"]
    env = {**os.environ, "WAVEGAN_DATA_DIR": str(store_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wavegan.data", *overrides],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 120
    partial = []
    while time.time() < deadline and not partial:
        partial = [p for p in store_dir.glob(".*.partial-*") if (p / "dataset").exists()]
        time.sleep(0.05)
    time.sleep(0.5)  # let it write some rows
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert partial, "ingestion never started"
    cfg = compose(overrides).data
    assert not (store_root(cfg) / "summary.json").exists()
    store = open_store(cfg, progress=False)
    assert store.summary["num_clips"] == 3000
    assert not list(store_dir.glob(".*.partial-*")), "the dead build's leftovers were not cleared"


def test_partial_of_a_live_builder_is_left_alone(tmp_path):
    cfg = compose([*SMALL, f"data.store_dir={tmp_path}"]).data
    root = store_root(cfg)
    root.parent.mkdir(parents=True, exist_ok=True)
    live = Path(root.parent / f".{root.name}.partial-{os.getppid()}")
    live.mkdir()
    open_store(cfg, progress=False)
    assert live.exists()
