"""Evaluation cost against a default training run (issue #4's budget: at most 15 % of a default run).

    .venv/bin/python benchmarks/eval_budget.py [hydra overrides] [--repeats N] [--train-iters N] [--out FILE]

Times, at the configured eval settings (conf/eval/default.yaml) on the configured data set:

* the classifier cache build (log-mels of every clip, CNN training, k-means, real features): once per
  data set, reported separately; built into a temporary folder so an existing cache is left alone;
* Evaluator setup from the cache plus the held-out reference: once per run;
* one evaluation: generating eval.num_samples clips with the model's (untrained) generator, turning
  them into waveforms (Griffin-Lim for spectrogram representations) and score(); for `wavegan`
  (waveform), `dcgan` (specgan, 16 Griffin-Lim iterations) and `audiosynth` (spectrogram, 32);
* a default run's training time: seconds per iteration of that model's default config (median of
  --train-iters timed iterations after compiling) x trainer.max_steps, plus the compile time.

Evaluations per run: one every eval.every steps (the last at or before trainer.max_steps), plus one at
the end if that is not on the grid; eval.every=0 means the end only. Prints a table; the last line is
one JSON object (also written to --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

# isort: off
import wavegan  # noqa: F401  (loads deeplake before tensorflow, which must come second)
import numpy as np
import tensorflow as tf

# isort: on

from common import report  # noqa: E402  (benchmarks/ is on sys.path when a script there runs)

from wavegan.cli.app import compose
from wavegan.data.pipeline import load_features
from wavegan.data.store import open_store
from wavegan.metrics import evaluator as evaluator_module
from wavegan.metrics.classifier import ClassifierSettings
from wavegan.metrics.evaluator import Evaluator
from wavegan.metrics.features import MelFeatures
from wavegan.models import sample_latent
from wavegan.training.run import build_for_training
from wavegan.training.trainer import GANTrainer

MODELS = ("wavegan", "dcgan", "audiosynth")


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started


def evaluations_per_run(every: int, max_steps: int) -> int:
    if every <= 0:
        return 1
    grid = max_steps // every
    return grid + (0 if max_steps % every == 0 else 1)


def classifier_build(store, eval_cfg) -> dict:
    """Build the cache into a temporary folder (the real one, if any, is not touched)."""
    mel = MelFeatures.from_config(
        eval_cfg.get("features"), int(store.summary["sample_rate"]), int(store.summary["slice_len"])
    )
    settings = ClassifierSettings.from_config(eval_cfg.get("classifier"))
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "cache"
        _, seconds = timed(
            evaluator_module._build_cache, store, target, mel, settings, int(eval_cfg.ndb_k), 0
        )
        info = json.loads((target / "info.json").read_text())
    return {"seconds": seconds, "accuracy": info["classifier_accuracy"], "timings": info["timings"]}


def training_time(cfg, iters: int) -> dict:
    """A default run's training seconds from timed iterations (random real batches, as train_throughput)."""
    generator, discriminator, loss, penalty = build_for_training(cfg)
    trainer = GANTrainer(cfg, generator, discriminator, loss, int(cfg.seed), penalty)
    shape = (trainer.n_critic, trainer.batch_size, *generator.output_shape[1:])
    real = tf.random.uniform(shape, -1.0, 1.0, seed=0)
    _, compile_s = timed(lambda: trainer.iteration(real)["g_loss"].numpy())
    trainer.iteration(real)["g_loss"].numpy()
    times = [timed(lambda: trainer.iteration(real)["g_loss"].numpy())[1] for _ in range(iters)]
    per_iter = statistics.median(times)
    steps = int(cfg.trainer.max_steps)
    return {"s_per_iter": per_iter, "compile_s": compile_s, "run_s": compile_s + per_iter * (steps - 1)}


def one_evaluation(cfg, store, evaluator: Evaluator, repeats: int) -> dict:
    """Generate eval.num_samples clips, invert them to waveforms, score them: median seconds of each."""
    generator, *_ = build_for_training(cfg)
    _, representation = load_features(store, cfg.preprocessing)
    n = int(cfg.eval.num_samples)
    generate, invert, score = [], [], []
    for r in range(repeats):
        z = sample_latent(n, int(cfg.model.latent_dim), seed=r)
        features, t = timed(lambda z=z: np.asarray(generator(z, training=False)))
        generate.append(t)
        waveforms, t = timed(representation.inverse, features)
        invert.append(t)
        _, t = timed(evaluator.score, waveforms)
        score.append(t)
    out = {"generate_s": statistics.median(generate), "invert_s": statistics.median(invert)}
    out["score_s"] = statistics.median(score)
    out["per_eval_s"] = out["generate_s"] + out["invert_s"] + out["score_s"]
    return out


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="evaluations timed per model (median)")
    parser.add_argument("--train-iters", type=int, default=5, help="timed training iterations per model")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/eval_budget.json"))
    args, overrides = parser.parse_known_args(argv)

    base = compose(overrides)
    store, store_s = timed(open_store, base.data, False)
    print(f"store {store.root.name}: {store.summary['num_clips']} clips ({store_s:.1f} s to open or build)")
    build = classifier_build(store, base.eval)
    print(f"classifier cache build: {build['seconds']:.1f} s, held-out accuracy {build['accuracy']}")
    Evaluator.for_store(store, base.eval)  # builds the store's own cache if it has none yet
    evaluator, load_s = timed(Evaluator.for_store, store, base.eval)  # what every run pays
    _, reference_s = timed(evaluator.reference)
    setup_s = load_s + reference_s

    every, steps = int(base.eval.every), int(base.trainer.max_steps)
    n_evals = evaluations_per_run(every, steps)
    rows = {}
    for model in args.models:
        cfg = compose([*overrides, f"model={model}"])
        train = training_time(cfg, args.train_iters)
        evaluation = one_evaluation(cfg, store, evaluator, args.repeats)
        eval_run_s = setup_s + n_evals * evaluation["per_eval_s"]
        rows[model] = {
            "preprocessing": str(cfg.preprocessing.name),
            **{k: round(v, 3) for k, v in {**train, **evaluation}.items()},
            "eval_per_run_s": round(eval_run_s, 2),
            "eval_pct_of_run": round(100 * eval_run_s / train["run_s"], 2),
            "eval_pct_with_classifier_build": round(
                100 * (eval_run_s + build["seconds"]) / train["run_s"], 2
            ),
        }

    print(
        f"\neval.num_samples={base.eval.num_samples}, eval.every={every}, trainer.max_steps={steps}: "
        f"{n_evals} evaluations per run; setup (load cache + reference) {setup_s:.2f} s per run"
    )
    header = (
        "model",
        "repr",
        "run s",
        "gen s",
        "invert s",
        "score s",
        "per eval",
        "eval/run s",
        "% run",
        "% +clf",
    )
    print("".join(f"{h:>11}" for h in header))
    for model, r in rows.items():
        cells = (
            model,
            r["preprocessing"],
            r["run_s"],
            r["generate_s"],
            r["invert_s"],
            r["score_s"],
            r["per_eval_s"],
            r["eval_per_run_s"],
            r["eval_pct_of_run"],
            r["eval_pct_with_classifier_build"],
        )
        print("".join(f"{c:>11.2f}" if isinstance(c, float) else f"{c:>11}" for c in cells))

    result = {
        "data": store.root.name,
        "num_clips": store.summary["num_clips"],
        "eval_num_samples": int(base.eval.num_samples),
        "eval_every": every,
        "max_steps": steps,
        "evaluations_per_run": n_evals,
        "classifier_build_s": round(build["seconds"], 2),
        "classifier_build_timings": build["timings"],
        "classifier_accuracy": build["accuracy"],
        "evaluator_load_s": round(load_s, 3),
        "reference_s": round(reference_s, 3),
        "models": rows,
        "budget_pct": 15.0,
        "within_budget": all(r["eval_pct_of_run"] <= 15.0 for r in rows.values()),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "gpu": bool(tf.config.list_physical_devices("GPU")),
        },
    }
    return report(result, args.out, table=False)  # the table is printed above, per model


if __name__ == "__main__":
    main(sys.argv[1:])
