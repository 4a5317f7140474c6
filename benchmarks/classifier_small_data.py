"""The quality classifier on small labelled folders of real audio: old vs new held-out accuracy.

    .venv/bin/python benchmarks/classifier_small_data.py [--sets 10x14,5x40,20x20] [--variants old,new]
                                                         [--evaluator] [--builtin] [--out FILE]

Data: spoken words synthesised on this machine with eSpeak NG (tests/speech_data.py: seeded random
voices, accents, rates, pitches, lead-ins, levels and faint noise), written as WAVs in one sub-folder
per word and read through the `audio_dir` source like a researcher's folder. `LxC` is L labels x C clips.

For each set and classifier variant: 5-fold cross-validated accuracy over every clip (each fold fitted
on three folds, early-stopped on a fourth, scored on the fifth: every clip is scored once by a model
that never fitted or stopped on it), with its Wilson 95 % interval, and the seconds it took.
Variants (`--variants`): `old` (the classifier before this benchmark: Adam 5e-3, batch 64, no batch
norm, dropout, weight decay or augmentation, epochs of one pass, patience 3), `new` (conf/eval/
default.yaml), and ablations of `new`: `no_augment`, `no_batch_norm`, `no_dropout`.

`--evaluator`: also builds the metrics cache as a run would (Evaluator.for_store) and reports the
accuracy it records in info.json, with the interval and the rows it was measured on. `--builtin`: the
cache build on the built-in notes (2048 clips, 11 classes) with the old and the new settings: seconds
and test-split accuracy. Prints a table; the last line is the JSON (also written to --out).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

# isort: off
import wavegan  # noqa: F401  (loads deeplake before tensorflow, which must come second)
import numpy as np

# isort: on

from common import report  # noqa: E402  (benchmarks/ is on sys.path when a script there runs)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.speech_data

from tests.speech_data import write_spoken_words  # noqa: E402
from wavegan.cli.app import compose  # noqa: E402
from wavegan.data.store import open_store  # noqa: E402
from wavegan.metrics import evaluator as evaluator_module  # noqa: E402
from wavegan.metrics.classifier import ClassifierSettings, cross_validate  # noqa: E402
from wavegan.metrics.evaluator import Evaluator  # noqa: E402
from wavegan.metrics.features import BandNormaliser, MelFeatures  # noqa: E402
from wavegan.metrics.intervals import wilson_interval  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "classifier_small_data.json"
SETS = {"10x14": (10, 14, 0), "5x40": (5, 40, 1), "20x20": (20, 20, 2)}  # labels, clips per label, seed
OLD = {
    "epochs": 20,
    "patience": 3,
    "batch_size": 64,
    "learning_rate": 5e-3,
    "weight_decay": 0.0,
    "batch_norm": False,
    "dropout": 0.0,
    "min_clips_per_epoch": 0,
    "augment": False,
}
ABLATIONS = {
    "no_augment": {"augment": False},
    "no_batch_norm": {"batch_norm": False},
    "no_dropout": {"dropout": 0.0},
}


def settings_for(variant: str, base: ClassifierSettings) -> ClassifierSettings:
    if variant == "old":
        return dataclasses.replace(base, **OLD)
    if variant == "new":
        return base
    return dataclasses.replace(base, **ABLATIONS[variant])


def features(store, eval_cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    mel = MelFeatures.from_config(
        eval_cfg.features, int(store.summary["sample_rate"]), int(store.summary["slice_len"])
    )
    log_mels = mel.log_mel(store.waveforms(None))
    x = BandNormaliser.fit(log_mels)(log_mels)[..., None]
    labels = store.column("label", None).astype(str)
    names = sorted(set(labels))
    y = np.array([names.index(label) for label in labels])
    groups = np.array([i.rsplit("#", 1)[0] for i in store.column("note_id", None).astype(str)])
    return x, y, groups, len(names)


def accuracy(k: int, n: int) -> dict:
    low, high = wilson_interval(k, n)
    return {"accuracy": round(k / n, 4), "ci_low": round(low, 4), "ci_high": round(high, 4), "n": n}


def small_set(name: str, root: Path, variants: list[str], with_evaluator: bool) -> dict:
    labels, per_label, seed = SETS[name]
    folder = root / f"words_{name}"
    write_spoken_words(folder, labels, per_label, seed=seed)
    cfg = compose(["data=audio_dir", f"data.path={folder}", f"data.store_dir={root / 'stores'}"])
    store = open_store(cfg.data, progress=False)
    x, y, groups, num_classes = features(store, cfg.eval)
    base = ClassifierSettings.from_config(cfg.eval.classifier)
    out = {"clips": int(len(y)), "labels": num_classes, "variants": {}}
    for variant in variants:
        cv = cross_validate(x, y, groups, num_classes, settings_for(variant, base), seed=0)
        out["variants"][variant] = accuracy(int(np.sum(cv.predicted == y)), len(y)) | {
            "seconds": round(cv.seconds, 1),
            "best_epochs": cv.best_epochs,
        }
    if with_evaluator:
        started = time.perf_counter()
        evaluator = Evaluator.for_store(store, cfg.eval)
        info = evaluator.info
        out["evaluator"] = {
            "accuracy": info["classifier_accuracy"],
            "ci_low": info["classifier_accuracy_ci_low"],
            "ci_high": info["classifier_accuracy_ci_high"],
            "n": info["accuracy_n"],
            "split": info["accuracy_split"],
            "reliable": evaluator.classifier_reliable,
            "seconds": round(time.perf_counter() - started, 1),
        }
    return out


def builtin(root: Path) -> dict:
    cfg = compose([f"data.store_dir={root / 'stores'}"])
    store = open_store(cfg.data, progress=False)
    mel = MelFeatures.from_config(
        cfg.eval.features, int(store.summary["sample_rate"]), int(store.summary["slice_len"])
    )
    base = ClassifierSettings.from_config(cfg.eval.classifier)
    out = {}
    for variant in ("old", "new"):
        target = root / f"builtin_cache_{variant}"
        started = time.perf_counter()
        evaluator_module._build_cache(store, target, mel, settings_for(variant, base), int(cfg.eval.ndb_k), 0)
        info = json.loads((target / "info.json").read_text())
        out[variant] = {
            "accuracy": info["classifier_accuracy"],
            "ci_low": info["classifier_accuracy_ci_low"],
            "ci_high": info["classifier_accuracy_ci_high"],
            "n": info["accuracy_n"],
            "split": info["accuracy_split"],
            "classifier_seconds": info["timings"].get("classifier_s"),
            "build_seconds": round(time.perf_counter() - started, 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="10x14,5x40,20x20")
    parser.add_argument("--variants", default="old,new")
    parser.add_argument("--evaluator", action="store_true")
    parser.add_argument("--builtin", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    result: dict = {
        "benchmark": "classifier_small_data",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "sets": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            result["sets"][name] = small_set(name, Path(tmp), args.variants.split(","), args.evaluator)
            print_table(result)
        if args.builtin:
            result["builtin"] = builtin(Path(tmp))
    print_table(result)
    report(result, args.out, table=False)


ROW = "{:<10} {:>5} {:>6}  {:<14} {:<24} {:>8}"


def print_table(result: dict) -> None:
    print(ROW.format("data set", "clips", "labels", "variant", "accuracy [95 % CI]", "seconds"))
    rows = []
    for name, row in result["sets"].items():
        entries = list(row["variants"].items()) + (
            [("evaluator", row["evaluator"])] if "evaluator" in row else []
        )
        rows += [(name, row["clips"], row["labels"], variant, v, v["seconds"]) for variant, v in entries]
    rows += [
        ("builtin", 2048, 11, variant, v, v["build_seconds"])
        for variant, v in result.get("builtin", {}).items()
    ]
    for name, clips, labels, variant, v, seconds in rows:
        interval = f"{v['accuracy']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"
        print(ROW.format(name, clips, labels, variant, interval, seconds))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
