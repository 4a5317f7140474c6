"""Is the training step bit-identical from run to run? The fault harness compares a recovered run with an
uninterrupted one exactly (benchmarks/faultlib/mlflow_checks.py), which holds only if the same seed, config
and batches give the same losses every time, also when the machine is busy (issue 13: one CI trial's run
differed from step 2 on with no fault of its own to explain it).

    PYTHONPATH=. .venv/bin/python benchmarks/step_determinism.py                 # 40 repetitions
    PYTHONPATH=. .venv/bin/python benchmarks/step_determinism.py --reps 10 model.dim=8 penalty=wgan_gp

Each repetition builds the models afresh from the seed (as `wavegan train` does) and trains `--steps`
iterations in this process on the same clips, taken through the training data pipeline (tf.data, prefetching
beside the step, as a run does) or as fixed tensors (`--fixed-batches`); every metric of every step is
compared with the first repetition's, exactly. Run it beside other work to test it under load, or with
`--bursts` (bursts of Python start-ups at random moments, as an MLflow server restarting beside a run, the
load under which runs were seen to differ) or `--pause S` (idling S seconds before each step). Prints the
first difference of each repetition that differs; JSON last (and benchmarks/results/step_determinism.json).

    PYTHONPATH=. .venv/bin/python benchmarks/step_determinism.py --reps 80 --bursts
    PYTHONPATH=. .venv/bin/python benchmarks/step_determinism.py --reps 80 --bursts trainer.inter_op_threads=0
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import report  # noqa: E402
from faultlib.training_faults import CONFIG  # noqa: E402  (the fault harness's training config)


def main() -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "step_determinism.json"
    )
    parser.add_argument(
        "--fixed-batches",
        action="store_true",
        help="feed the same tensors each step instead of the training data pipeline (tf.data, prefetching)",
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=0.0,
        help="seconds of idling before every step after the first (a run waits so while MLflow retries)",
    )
    parser.add_argument(
        "--bursts",
        action="store_true",
        help="beside the repetitions, bursts of 3 Python start-ups at random moments (as an MLflow server "
        "restarting): the load under which the fault harness once saw a run differ",
    )
    parser.add_argument("overrides", nargs="*", help="config overrides after the fault harness's")
    args = parser.parse_args()

    import numpy as np

    # isort: off
    import wavegan  # noqa: F401  (loads deeplake before tensorflow)
    import tensorflow as tf

    # isort: on

    from wavegan.cli.app import compose
    from wavegan.data.pipeline import make_dataset
    from wavegan.training.run import build_for_training
    from wavegan.training.trainer import GANTrainer

    if args.bursts:
        threading.Thread(target=bursts, daemon=True).start()
    keep = [c for c in CONFIG if not c.startswith(("tracking.", "eval.", "trainer.progress"))]
    cfg = compose([*keep, *args.overrides])
    features = None
    first: list[dict[str, float]] = []
    differing = []
    for rep in range(args.reps):
        generator, discriminator, loss, penalty = build_for_training(cfg)
        batch, n_critic = int(cfg.trainer.batch_size), int(cfg.trainer.n_critic)
        if features is None:  # random "clips", the same in every repetition
            shape = (args.steps * n_critic * batch, *discriminator.input_shape[1:])
            features = np.random.default_rng(0).uniform(-0.5, 0.5, shape).astype(np.float32)
        if args.fixed_batches:
            batches = iter(tf.constant(features.reshape(args.steps, n_critic, batch, *shape[1:])))
        else:  # as a run takes them (wavegan/training/run.py): a prefetching tf.data stream
            batches = iter(make_dataset(features, batch, int(cfg.seed)).batch(n_critic, drop_remainder=True))
        trainer = GANTrainer(cfg, generator, discriminator, loss, int(cfg.seed), penalty)
        history = []
        for step in range(args.steps):
            if step and args.pause:
                time.sleep(args.pause)
            history.append({k: float(v) for k, v in trainer.iteration(next(batches)).items()})
        if not first:
            first = history
            continue
        for step, (mine, theirs) in enumerate(zip(history, first, strict=True), start=1):
            diff = {k: (theirs[k], v) for k, v in mine.items() if theirs[k] != v}
            if diff:
                differing.append({"rep": rep, "step": step, "metrics": sorted(diff)})
                print(f"repetition {rep}: step {step} differs: {diff}", flush=True)
                break
        if rep % 10 == 9:
            print(f"{rep + 1} repetitions, {len(differing)} differed", flush=True)
    return report(
        {
            "repetitions": args.reps,
            "steps": args.steps,
            "differing": len(differing),
            "first_differences": differing[:10],
            "batches": "fixed tensors" if args.fixed_batches else "the training data pipeline",
            "overrides": [*keep, *args.overrides],
            "pause_s": args.pause,
            "bursts": args.bursts,
            "loadavg": os.getloadavg(),
        },
        args.out,
    )


def bursts() -> None:
    """Until the process ends: three Python processes importing heavy libraries at once, then a pause of
    0-4 s (drawn from a fixed seed)."""
    draw = random.Random(0)
    command = [sys.executable, "-c", "import mlflow.server, sklearn, scipy.signal"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    while True:
        starting = [subprocess.Popen(command, **quiet) for _ in range(3)]
        for process in starting:
            process.wait()
        time.sleep(draw.uniform(0, 4))


if __name__ == "__main__":
    result = main()
    sys.exit(1 if result["differing"] else 0)
