"""The quality classifier on small labelled folders of real audio: held-out accuracy of each model.

    .venv/bin/python benchmarks/classifier_small_data.py [--sets words_10x14,notes_11x15,...]
        [--variants discriminant,logreg,svm,mlp,cnn] [--evaluator] [--crossover] [--builtin] [--out FILE]

Data, made on this machine and read through the project's own sources as a researcher's data would be:

* `words_LxC`: L spoken words x C clips, synthesised with eSpeak NG (tests/speech_data.py: seeded random
  voices, accents, rates, pitches, lead-ins, levels and faint noise), one sub-folder per word, read by
  the `audio_dir` source at data.slice_len=16384 (one word per clip);
* `notes_NxC`: the built-in notes (data=builtin), N families x C notes (data.num_samples=N*C; families
  cycle, so each has C), at the default 4096-sample slices (`_16384`: at 16384).

For each set and model variant: 5-fold cross-validated accuracy over every clip (folds stratified by label
and grouped by recording, the same folds for every variant; each clip scored once by a model not fitted
on it), with its Wilson 95 % interval, wall and CPU seconds. Variants (`--variants`):
`discriminant` (the small-data model: shrinkage LDA on the clip summaries, wavegan/metrics/discriminant.py),
`logreg`, `svm`, `mlp` (scikit-learn's LogisticRegression C=0.01, SVC C=10, MLPClassifier with 128
hidden units and alpha=1, on the same standardised summaries), `cnn` (the larger-data CNN,
wavegan/metrics/cnn.py, for its 20 epochs: a fold has no early-stopping rows).

`--crossover`: the discriminant model and the CNN on 605, 1001 and 2046 built-in notes, to place
classifier.small_data_max_clips.

`--evaluator`: also builds the metrics cache as a run would (Evaluator.for_store) and reports the model,
the accuracy info.json records, its interval and rows, the build's wall and CPU seconds, and the Fréchet
distance of the held-out clips (the reference) against that of as many copies of one held-out clip and of
uniform noise. `--builtin`: the same for the 2048 built-in notes (the CNN). Prints a table; the last line
is the JSON (also written to --out). CPU seconds are the process's (2 threads): on a shared machine the
wall time is the CPU time divided by the cores it got.
"""

from __future__ import annotations

import argparse
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
from wavegan.metrics.classifier import ClassifierSettings, fold_assignment, predict  # noqa: E402
from wavegan.metrics.classifier_fit import recording_groups  # noqa: E402
from wavegan.metrics.evaluator import Evaluator  # noqa: E402
from wavegan.metrics.features import BandNormaliser, MelFeatures  # noqa: E402
from wavegan.metrics.intervals import wilson_interval  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "classifier_small_data.json"
FOLDS = 5
WORDS = {  # labels, clips per label, seed
    "words_10x14": (10, 14, 0),
    "words_5x40": (5, 40, 1),
    "words_20x20": (20, 20, 2),
    "words_10x30": (10, 30, 3),
}
NOTES = {  # families x notes per family, slice length
    "notes_11x15": (11, 15, 4096),
    "notes_11x15_16384": (11, 15, 16384),
    "notes_11x30": (11, 30, 4096),
}
CROSSOVER = {  # --crossover: where the CNN catches up (discriminant and cnn only)
    "notes_11x55": (11, 55, 4096),  # 605 clips
    "notes_11x91": (11, 91, 4096),  # 1001 clips
    "notes_11x186": (11, 186, 4096),  # 2046 clips
}
DEFAULT_SETS = "words_10x14,words_5x40,words_20x20,words_10x30,notes_11x15,notes_11x15_16384,notes_11x30"


def store_for(name: str, root: Path):
    if name in WORDS:
        labels, per_label, seed = WORDS[name]
        folder = root / name
        write_spoken_words(folder, labels, per_label, seed=seed)
        overrides = ["data=audio_dir", f"data.path={folder}", "data.slice_len=16384"]
    else:
        families, per_family, slice_len = (NOTES | CROSSOVER)[name]
        overrides = [f"data.num_samples={families * per_family}", f"data.slice_len={slice_len}"]
    cfg = compose([*overrides, f"data.store_dir={root / 'stores'}"])
    return cfg, open_store(cfg.data, progress=False)


def labelled_log_mels(store, eval_cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Standardised aligned log-mels [N, frames, n_mels, 1] (normaliser of all clips), labels, groups."""
    mel = MelFeatures.from_config(
        eval_cfg.features, int(store.summary["sample_rate"]), int(store.summary["slice_len"])
    )
    log_mels = mel.log_mel(store.waveforms(None))
    x = BandNormaliser.fit(log_mels)(log_mels)[..., None]
    labels = np.asarray(store.column("label", None)).astype(str)
    names = sorted(set(labels))
    return x, np.array([names.index(label) for label in labels]), recording_groups(store, len(x)), len(names)


def variant_fit(variant: str, num_classes: int, settings: ClassifierSettings):
    """fit(x, y) -> predict_labels(x) for one variant."""
    import keras

    from wavegan.metrics.cnn import train_cnn
    from wavegan.metrics.discriminant import ClipSummary, fit_discriminant

    def keras_labels(model):
        return lambda x: np.argmax(predict(model, x)[1], axis=1)

    if variant == "discriminant":
        return lambda x, y: keras_labels(fit_discriminant(x, y, num_classes, settings.summary))
    if variant == "cnn":
        empty = np.zeros((0,), np.int64)
        return lambda x, y: keras_labels(
            train_cnn(x, y, x[empty], y[empty], num_classes, settings.cnn, seed=0)[0]
        )
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    head = {
        "logreg": lambda: LogisticRegression(C=0.01, max_iter=3000),
        "svm": lambda: SVC(C=10.0),
        "mlp": lambda: MLPClassifier((128,), alpha=1.0, max_iter=500, random_state=0),
    }[variant]
    s = settings.summary

    def summaries(x: np.ndarray) -> np.ndarray:
        inputs = keras.Input(x.shape[1:])
        layer = ClipSummary(s.patch_frames, s.patch_pool, s.n_mfcc)
        return np.asarray(keras.Model(inputs, layer(inputs))(x))

    def fit(x: np.ndarray, y: np.ndarray):
        model = make_pipeline(StandardScaler(), head()).fit(summaries(x), y)
        return lambda x_new: model.predict(summaries(x_new))

    return fit


class Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def seconds(self) -> dict:
        return {
            "seconds": round(time.perf_counter() - self.wall, 1),
            "cpu_seconds": round(time.process_time() - self.cpu, 1),
        }


def accuracy(k: int, n: int) -> dict:
    low, high = wilson_interval(k, n)
    return {"accuracy": round(k / n, 4), "ci_low": round(low, 4), "ci_high": round(high, 4), "n": n}


def cross_validated(x, y, groups, num_classes, variant, settings) -> dict:
    folds = fold_assignment(y, groups, FOLDS, seed=0)
    fit = variant_fit(variant, num_classes, settings)
    predicted = np.full(len(y), -1)
    clock = Clock()
    for i in range(FOLDS):
        held = folds == i
        predicted[held] = fit(x[~held], y[~held])(x[held])
    return accuracy(int(np.sum(predicted == y)), len(y)) | clock.seconds()


def through_the_evaluator(cfg, store) -> dict:
    clock = Clock()
    evaluator = Evaluator.for_store(store, cfg.eval)
    seconds = clock.seconds()
    info = evaluator.info
    held = evaluator.held_out_waveforms(store)
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, held.shape).astype(np.float32)
    fd = {
        "held_out": evaluator.reference()["eval/reference/frechet_distance"],
        "one_clip_repeated": evaluator.score(np.repeat(held[:1], len(held), axis=0))["eval/frechet_distance"],
        "uniform_noise": evaluator.score(noise)["eval/frechet_distance"],
    }
    return {
        "model": info["classifier_model"],
        "accuracy": round(info["classifier_accuracy"], 4),
        "ci_low": round(info["classifier_accuracy_ci_low"], 4),
        "ci_high": round(info["classifier_accuracy_ci_high"], 4),
        "n": info["accuracy_n"],
        "split": info["accuracy_split"],
        "reliable": evaluator.classifier_reliable,
        "timings": info["timings"],
        "frechet_distance": {k: round(v, 3) for k, v in fd.items()} | {"clips": len(held)},
    } | seconds


def one_set(name: str, root: Path, variants: list[str], with_evaluator: bool) -> dict:
    cfg, store = store_for(name, root)
    x, y, groups, num_classes = labelled_log_mels(store, cfg.eval)
    settings = ClassifierSettings.from_config(cfg.eval.classifier)
    out = {"clips": int(len(y)), "labels": num_classes, "slice_len": int(store.summary["slice_len"])}
    out["variants"] = {v: cross_validated(x, y, groups, num_classes, v, settings) for v in variants}
    if with_evaluator:
        out["evaluator"] = through_the_evaluator(cfg, store)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=DEFAULT_SETS)
    parser.add_argument("--variants", default="discriminant,logreg,svm,mlp,cnn")
    parser.add_argument("--evaluator", action="store_true")
    parser.add_argument("--crossover", action="store_true")
    parser.add_argument("--builtin", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    result: dict = {
        "benchmark": "classifier_small_data",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "folds": FOLDS,
        "sets": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in filter(None, args.sets.split(",")):
            result["sets"][name] = one_set(name, Path(tmp), args.variants.split(","), args.evaluator)
            print_table(result)
        for name in CROSSOVER if args.crossover else ():
            variants = [v for v in args.variants.split(",") if v in ("discriminant", "cnn")]
            result["sets"][name] = one_set(name, Path(tmp), variants, False)
            print_table(result)
        if args.builtin:
            cfg = compose([f"data.store_dir={Path(tmp) / 'stores'}"])
            store = open_store(cfg.data, progress=False)
            result["builtin"] = {"clips": int(len(store.column("split", None)))} | through_the_evaluator(
                cfg, store
            )
    print_table(result)
    report(result, args.out, table=False)


ROW = "{:<18} {:>5} {:>6}  {:<13} {:<24} {:>8} {:>8}"


def print_table(result: dict) -> None:
    print(ROW.format("data set", "clips", "labels", "variant", "accuracy [95 % CI]", "seconds", "cpu s"))
    rows = []
    for name, row in result["sets"].items():
        entries = list(row["variants"].items())
        entries += [("evaluator", row["evaluator"])] if "evaluator" in row else []
        rows += [(name, row["clips"], row["labels"], variant, v) for variant, v in entries]
    if "builtin" in result:
        rows.append(("builtin", result["builtin"]["clips"], 11, "evaluator", result["builtin"]))
    for name, clips, labels, variant, v in rows:
        interval = f"{v['accuracy']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"
        print(ROW.format(name, clips, labels, variant, interval, v["seconds"], v["cpu_seconds"]))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
