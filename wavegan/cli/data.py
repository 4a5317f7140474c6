"""`wavegan data [overrides]` (also `python -m wavegan.data`): build (or reuse) the data store and
summarise it.

Prints the number of clips, duration, sample rate, counts per label and per pitch, skipped inputs with
reasons, and the feature shape of the selected preprocessing; writes example spectrograms to a PNG.
"""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
from omegaconf import DictConfig

from wavegan.cli.app import entry_point
from wavegan.config.checks import check_data
from wavegan.data.store import DataStore, open_store
from wavegan.plots import save_figure, spectrogram_grid

log = logging.getLogger(__name__)


def format_summary(store: DataStore) -> str:
    s = store.summary
    lines = [
        f"data store   {store.root}",
        f"source       {s['source']}" + (f" ({s['path']})" if s.get("path") not in (None, "None") else ""),
        f"clips        {s['num_clips']} used, {s['num_skipped']} skipped",
        "splits       " + ", ".join(f"{k} {v}" for k, v in s["splits"].items()),
        f"audio        {s['sample_rate']} Hz, {s['slice_len']} samples per clip, "
        f"{s['duration_s'] / 60:.1f} min in all",
    ]
    labels = {k or "(none)": v for k, v in s["labels"].items()}
    lines.append("per label    " + ", ".join(f"{k} {v}" for k, v in labels.items()))
    pitches = {int(k): v for k, v in s["pitches"].items() if int(k) >= 0}
    if pitches:
        lines.append(
            f"per pitch    {len(pitches)} MIDI pitches {min(pitches)}-{max(pitches)}, "
            f"{min(pitches.values())}-{max(pitches.values())} clips each"
        )
    if s["skipped"]:
        reasons = Counter(x["reason"].split(" (")[0] for x in s["skipped"])
        lines.append("skipped      " + ", ".join(f"{r}: {n}" for r, n in reasons.items()))
        lines.extend(f"  - {x['source']}: {x['reason']}" for x in s["skipped"][:20])
        if len(s["skipped"]) > 20:
            lines.append(f"  ... and {len(s['skipped']) - 20} more (see {store.root / 'summary.json'})")
    return "\n".join(lines)


def write_examples(store: DataStore, per_label: int = 1, max_panels: int = 12):
    """One spectrogram per label (or the first clips, when there are no labels)."""
    labels = store.column("label", split=None)
    chosen: list[int] = []
    for label in dict.fromkeys(labels.tolist()):
        chosen.extend(np.flatnonzero(labels == label)[:per_label].tolist())
    chosen = sorted(chosen)[:max_panels]
    audio = store.waveforms(split=None)[chosen]
    titles = [str(labels[i]) or f"clip {i}" for i in chosen]
    fig = spectrogram_grid(audio, int(store.summary["sample_rate"]), titles)
    return save_figure(fig, store.root / "examples.png")


@entry_point()
def main(cfg: DictConfig) -> None:
    check_data(cfg.data)
    store = open_store(cfg.data)
    print(format_summary(store))
    from wavegan.data.pipeline import load_features

    features, _ = load_features(store, cfg.preprocessing)
    print(
        f"features     preprocessing={cfg.preprocessing.name}: {features['train'].shape[1:]} per clip, "
        f"range [{features['train'].min():.2f}, {features['train'].max():.2f}]"
    )
    print(f"examples     {write_examples(store)}")

