"""The local deeplake store every source is ingested into, built once and reused.

A store lives in `<data.store_dir>/<source>-<hash of the data config>/`: `dataset/` (deeplake, the
NSynth column layout of `schema.py`), `summary.json` (counts, skipped inputs with reasons) and
`features/` (representations computed from it, see `pipeline.py`). It is built under a temporary
name and renamed into place only when complete, so an interrupted ingestion (Ctrl-C, a killed job)
never leaves a store that a later run takes as finished; a later run clears such leftovers.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import deeplake
import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from wavegan.atomic import build_atomically
from wavegan.caching import cache_key
from wavegan.data.schema import INT_FIELDS, NSYNTH_QUALITIES, SPLITS, TEXT_FIELDS, Clip, Skipped, assign_split
from wavegan.errors import ConfigError, DataError, error_detail, is_disk_full

log = logging.getLogger(__name__)

SOURCES = ("builtin", "nsynth", "audio_dir")
APPEND_ROWS = 256
# Keys that say where or how verbosely to build, not what the store contains.
NON_CONTENT_KEYS = ("store_dir", "token", "progress")


def iter_source(cfg: DictConfig) -> Iterator[Clip | Skipped]:
    """Clips (or reasons for skipping inputs) from the source `data.source` names."""
    if cfg.source == "builtin":
        from wavegan.data.sources.builtin import iter_builtin_notes

        notes = iter_builtin_notes(
            num_samples=int(cfg.num_samples),
            sample_rate=int(cfg.sample_rate),
            slice_len=int(cfg.slice_len),
            seed=int(cfg.seed),
            families=list(cfg.families) if cfg.families else None,
            pitch_range=tuple(cfg.pitch_range),
        )
        for audio, meta in notes:
            yield Clip(audio=audio, note_id=meta["note_id"], meta=meta, group=meta["note_id"])
    elif cfg.source == "nsynth":
        from wavegan.data.sources.nsynth import iter_nsynth

        yield from iter_nsynth(cfg)
    elif cfg.source == "audio_dir":
        from wavegan.data.sources.audio_dir import iter_audio_dir

        yield from iter_audio_dir(cfg)
    else:
        raise ConfigError(
            f"data.source={cfg.source} is not one of {SOURCES}. Fix: pick data=builtin|nsynth|audio_dir."
        )


def store_key(cfg: DictConfig) -> str:
    """A name that changes whenever the content would: the data config, and an audio folder's files."""
    content = {
        k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in NON_CONTENT_KEYS
    }
    if cfg.source == "audio_dir" and Path(str(cfg.path)).expanduser().is_dir():
        from wavegan.data.sources.audio_dir import folder_fingerprint

        content["files"] = folder_fingerprint(Path(str(cfg.path)).expanduser(), list(cfg.extensions))
    return f"{cfg.source}-{cache_key(content, 12)}"


def store_root(cfg: DictConfig) -> Path:
    return Path(str(cfg.store_dir)).expanduser().resolve() / store_key(cfg)


@dataclass
class DataStore:
    """A finished store: read-only access to its rows by split."""

    root: Path
    summary: dict

    @property
    def dataset_path(self) -> str:
        return str(self.root / "dataset")

    def open(self):
        return deeplake.open_read_only(self.dataset_path)

    def _split_index(self, ds, split: str | None) -> np.ndarray:
        splits = np.asarray(ds["split"][:])
        return np.arange(len(splits)) if split is None else np.flatnonzero(splits == split)

    def waveforms(self, split: str | None = "train") -> np.ndarray:
        """float32 [N, slice_len] for one split (None: all rows)."""
        ds = self.open()
        return np.asarray(ds["audio"][:], dtype=np.float32)[self._split_index(ds, split)]

    def column(self, name: str, split: str | None = "train") -> np.ndarray:
        ds = self.open()
        return np.asarray(ds[name][:])[self._split_index(ds, split)]

    def notes(self, split: str | None = "train") -> list[dict]:
        """Metadata of each note as a dict (no audio), in store order."""
        ds = self.open()
        idx = self._split_index(ds, split)
        cols = {n: np.asarray(ds[n][:]) for n in (*INT_FIELDS, *TEXT_FIELDS)}
        return [{n: v[i].item() for n, v in cols.items()} for i in idx]


def _create_dataset(path: Path, slice_len: int):
    ds = deeplake.create(str(path))
    ds.add_column("audio", deeplake.types.Array("float32", shape=[slice_len]))
    for name in INT_FIELDS:
        ds.add_column(name, deeplake.types.Int32())
    for name in TEXT_FIELDS:
        ds.add_column(name, deeplake.types.Text())
    ds.add_column("qualities", deeplake.types.Array("int32", shape=[len(NSYNTH_QUALITIES)]))
    return ds


def _ingest(cfg: DictConfig, partial: Path, progress: bool) -> dict:
    slice_len, sample_rate = int(cfg.slice_len), int(cfg.sample_rate)
    ds = _create_dataset(partial / "dataset", slice_len)
    buffer: list[dict] = []
    skipped: list[dict] = []
    labels, pitches, splits = Counter(), Counter(), Counter()

    def flush() -> None:
        if buffer:
            ds.append({name: [row[name] for row in buffer] for name in buffer[0]})
            buffer.clear()

    limit = cfg.get("num_samples")
    items = iter_source(cfg)
    for item in tqdm(items, total=limit, desc=f"ingest {cfg.source}", unit="item", disable=not progress):
        if isinstance(item, Skipped):
            log.warning("skipped %s: %s", item.source, item.reason)
            skipped.append({"source": item.source, "reason": item.reason})
            continue
        split = assign_split(item.group or item.note_id, float(cfg.valid_fraction), float(cfg.test_fraction))
        row = item.row(sample_rate, split)
        buffer.append(row)
        labels[row["label"]] += 1
        pitches[row["pitch"]] += 1
        splits[split] += 1
        if len(buffer) >= APPEND_ROWS:
            flush()
        if limit is not None and sum(splits.values()) >= int(limit):
            break
    flush()
    num_clips = sum(splits.values())
    if num_clips == 0:
        reasons = Counter(s["reason"].split(" (")[0] for s in skipped)
        raise DataError(
            f"no usable audio from data.source={cfg.source} (path {cfg.get('path')}): {len(skipped)} inputs "
            f"skipped ({dict(reasons)}). Fix: point data.path at usable audio, or relax "
            "data.min_duration_s / data.silence_peak."
        )
    ds.commit("ingested")
    return {
        "source": str(cfg.source),
        "path": str(cfg.get("path")),
        "num_clips": num_clips,
        "num_skipped": len(skipped),
        "skipped": skipped,
        "sample_rate": sample_rate,
        "slice_len": slice_len,
        "duration_s": num_clips * slice_len / sample_rate,
        "splits": {s: splits.get(s, 0) for s in SPLITS},
        "labels": dict(sorted(labels.items())),
        "pitches": {str(k): v for k, v in sorted(pitches.items())},
    }


def open_store(cfg: DictConfig, progress: bool = True) -> DataStore:
    """The store for this data config: reused when complete, otherwise ingested now."""
    root = store_root(cfg)
    if (root / "summary.json").is_file():
        log.info("reusing data store %s", root)
        return DataStore(root, json.loads((root / "summary.json").read_text()))
    started = time.perf_counter()
    try:
        with build_atomically(root, marker="summary.json") as partial:
            summary = _ingest(cfg, partial, progress)
            summary["build_seconds"] = round(time.perf_counter() - started, 2)
            summary["config"] = OmegaConf.to_container(cfg, resolve=True)
            summary["config"].pop("token", None)  # never write a credential next to the data
            (partial / "summary.json").write_text(json.dumps(summary, indent=2))
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        # The half-built store is gone (build_atomically); every complete store is untouched.
        raise DataError(
            f"disk full while writing the data store to {root} ({error_detail(exc)}); the "
            "half-written store was removed. Fix: free space there, or point data.store_dir (or "
            "WAVEGAN_DATA_DIR) at a disk with room, then run the command again."
        ) from None
    # read back: when another process finished the same store first, its summary is the one in place
    summary = json.loads((root / "summary.json").read_text())
    return DataStore(root, summary)
