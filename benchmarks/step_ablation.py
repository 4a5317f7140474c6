"""What each change of issue 11 buys: the training iteration with and without each, in one process.

    .venv/bin/python benchmarks/step_ablation.py [hydra overrides] [--reps 5] [--threads N] [--out FILE]

Variants, timed round-robin (so all see the same machine load), each a trainer of its own on the same
config and weights:
    plain         Keras's own strided conv ops and phase shuffle cropped by a strided slice (as before)
    +slice        phase shuffle as one tf.slice at the shift's offset (its gradient a pad; before: a roll and
                  a strided slice, whose gradient StridedSliceGrad is slow on the CPU)
    +stride1      ... and strided convs as stride-1 convs (wavegan/models/convolutions.py)
    +lrelu        ... and D's LeakyReLU without the gradient penalty's dead second-order path
                  (models/layers.py leaky_relu): the default
Per variant: median wall seconds per iteration and median process CPU seconds per iteration (all threads;
less sensitive to other processes on a shared machine than wall time). `--threads N` pins TensorFlow to N
intra- and inter-op threads (N=1 with CPU time: the work per iteration, nearly immune to other processes).
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

# isort: off
import wavegan  # noqa: F401  (loads deeplake before tensorflow)
import tensorflow as tf
# isort: on

from common import report  # noqa: E402

from wavegan.cli.app import compose  # noqa: E402
from wavegan.models import layers  # noqa: E402
from wavegan.models.convolutions import use_reference_ops  # noqa: E402
from wavegan.models.layers import LeakyReLU  # noqa: E402
from wavegan.training.run import build_for_training  # noqa: E402
from wavegan.training.trainer import GANTrainer  # noqa: E402

SLICED = layers.phase_shuffle


def strided_slice_phase_shuffle(x: tf.Tensor, shift: tf.Tensor | int, radius: int | None = None) -> tf.Tensor:
    """The phase shuffle before issue 11: the same values, cropped by a strided slice."""
    radius = abs(int(shift)) if radius is None else radius
    padded = tf.pad(x, [[0, 0], [radius, radius], [0, 0]], mode="REFLECT")
    rolled = tf.roll(padded, tf.cast(shift, tf.int32), axis=1)
    return tf.ensure_shape(rolled[:, radius : radius + x.shape[1]], x.shape)


VARIANTS = {  # name: (phase shuffle, Keras's own conv ops, Keras's own LeakyReLU)
    "plain": (strided_slice_phase_shuffle, True, True),
    "+slice": (SLICED, True, True),
    "+stride1": (SLICED, False, True),
    "+lrelu": (SLICED, False, False),
}


def build(cfg, shuffle, reference: bool, reference_lrelu: bool) -> tuple[GANTrainer, tf.Tensor]:
    generator, discriminator, loss, penalty = build_for_training(cfg)
    trainer = GANTrainer(cfg, generator, discriminator, loss, int(cfg.seed), penalty)
    if reference:
        use_reference_ops(generator)
        use_reference_ops(discriminator)
    for layer in discriminator._flatten_layers(include_self=False):
        if isinstance(layer, LeakyReLU):
            layer.reference = reference_lrelu
    real = tf.random.uniform(
        (trainer.n_critic, trainer.batch_size, *generator.output_shape[1:]), -1, 1, seed=0
    )
    layers.phase_shuffle = shuffle  # read when the step is traced, i.e. at the first call
    trainer.iteration(real)["g_loss"].numpy()
    layers.phase_shuffle = SLICED
    return trainer, real


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: its defaults)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/step_ablation.json"))
    args, overrides = parser.parse_known_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    cfg = compose(overrides)
    trainers = {name: build(cfg, *variant) for name, variant in VARIANTS.items()}
    wall: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.reps + 1):  # the first round warms up
        for name, (trainer, real) in trainers.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            trainer.iteration(real)["g_loss"].numpy()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu_started)
    result: dict = {"overrides": overrides, "reps": args.reps, "threads": args.threads or "default"}
    for name in VARIANTS:
        result[f"{name}_s_per_iter"] = round(statistics.median(wall[name][1:]), 4)
        result[f"{name}_cpu_s_per_iter"] = round(statistics.median(cpu[name][1:]), 4)
    return report(result, args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
