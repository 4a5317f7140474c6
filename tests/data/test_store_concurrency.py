"""Two processes (two machines sharing WAVEGAN_DATA_DIR) building the same data store and features at
once: both end up with the complete store, nobody ever sees a half-built one, nothing is left behind;
and a build folder of another machine is never taken for a dead one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tests.conftest import REPO_ROOT, TINY
from wavegan.atomic import HOST_TAG, clear_dead_partials, owner_gone, owner_tag
from wavegan.cli.app import compose
from wavegan.data.store import store_root

# Each builder: wait for the start signal, build with a pause between finishing the build and renaming
# it into place (so both builds are complete-but-private at the same moment), then read what it got.
BUILDER = """
import json, logging, sys, time
from pathlib import Path
import wavegan
from wavegan.cli.app import compose
from wavegan.data import store
from wavegan.data.pipeline import load_features

logging.basicConfig(level=logging.INFO, format="%(message)s")
go, overrides = Path(sys.argv[1]), sys.argv[2:]
ingest = store._ingest

def slow_ingest(cfg, partial, progress):
    summary = ingest(cfg, partial, progress)
    time.sleep(3)
    return summary

store._ingest = slow_ingest
cfg = compose(overrides)
while not go.exists():
    time.sleep(0.02)
built = store.open_store(cfg.data, progress=False)
features, _ = load_features(built, cfg.preprocessing)
print(json.dumps({"root": str(built.root), "num_clips": built.summary["num_clips"],
                  "rows": len(built.waveforms(None)), "train": len(features["train"])}))
"""


def test_two_processes_building_one_store_at_once_share_a_complete_one(tmp_path, monkeypatch):
    data_dir = tmp_path / "shared-data"
    monkeypatch.setenv("WAVEGAN_DATA_DIR", str(data_dir))
    overrides = [*TINY, "data.num_samples=200"]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), WAVEGAN_DATA_DIR=str(data_dir), CUDA_VISIBLE_DEVICES="")
    go = tmp_path / "go"
    builders = [
        subprocess.Popen(
            [sys.executable, "-c", BUILDER, str(go), *overrides],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    time.sleep(8)  # both imported and waiting (a slow start only makes the builds overlap less)
    go.touch()
    root = store_root(compose(overrides).data)
    seen_incomplete = []
    deadline = time.monotonic() + 240
    while any(b.poll() is None for b in builders) and time.monotonic() < deadline:
        # the store's folder appears complete or not at all
        if root.exists() and not (root / "summary.json").is_file():
            seen_incomplete.append(sorted(p.name for p in root.iterdir()))
        time.sleep(0.01)
    results = []
    for builder in builders:
        out, err = builder.communicate(timeout=60)
        assert builder.returncode == 0, err[-3000:]
        results.append((json.loads(out.strip().splitlines()[-1]), err))
    assert not seen_incomplete, seen_incomplete
    for result, _ in results:
        assert result["root"] == str(root)
        assert result["num_clips"] == result["rows"] == 200 and result["train"] > 0
    # both built (the pause made them overlap); the second to finish used the first one's store
    logs = "".join(err for _, err in results)
    assert "another process finished" in logs, logs[-3000:]
    assert not list(root.parent.glob(".*.partial-*")), "a build folder was left behind"
    assert not list((root / "features").glob(".*.partial-*"))


def test_a_build_folder_of_another_machine_is_left_alone(tmp_path):
    target = tmp_path / "store"
    dead_here = tmp_path / f".store.partial-{HOST_TAG}-999999999"
    elsewhere = tmp_path / ".store.partial-0badc0de-999999999"  # the same pid, on another machine
    legacy = tmp_path / ".store.partial-999999999"  # named by an older version: this machine
    mine = tmp_path / f".store.partial-{owner_tag()}"
    for folder in (dead_here, elsewhere, legacy, mine):
        folder.mkdir()
    clear_dead_partials(target)
    assert not dead_here.exists() and not legacy.exists()
    assert elsewhere.exists() and mine.exists()
    assert owner_gone(f"{HOST_TAG}-999999999") and not owner_gone("0badc0de-999999999")
    assert not owner_gone(owner_tag())
