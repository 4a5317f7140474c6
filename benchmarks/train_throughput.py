"""Training throughput: seconds per iteration (n_critic D steps + 1 G step), samples/s, peak memory,
FLOPs per iteration and achieved FLOP/s, for any training config.

    .venv/bin/python benchmarks/train_throughput.py [hydra overrides] [--warmup N] [--iters N] [--out FILE]
    .venv/bin/python benchmarks/train_throughput.py model=dcgan
    .venv/bin/python benchmarks/train_throughput.py model.dim=64 trainer.batch_size=64

Real batches are random tensors of the configured shape (throughput does not depend on their values),
so no data store is built. Prints a table; the last line is one JSON object (also written to --out).

samples_per_s counts real examples through D (n_critic x batch per iteration); g_samples_per_s counts
generated batches (batch per iteration), the usual convention elsewhere. FLOPs per iteration are
TensorFlow's profiler count over the traced D and G steps built with Keras's own conv ops
(wavegan.models.convolutions.use_reference_ops): the work the step does, whatever form the convolutions
are computed in (the stride-1 forms add zero taps).
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from pathlib import Path

# isort: off
import wavegan  # noqa: F401  (loads deeplake before tensorflow, see wavegan/__init__.py)
import numpy as np
import tensorflow as tf
# isort: on

from common import report  # noqa: E402  (benchmarks/ is on sys.path when a script there runs)

from wavegan.cli.app import compose  # noqa: E402
from wavegan.models.convolutions import use_reference_ops  # noqa: E402
from wavegan.training.run import build_for_training  # noqa: E402
from wavegan.training.trainer import GANTrainer  # noqa: E402


def graph_flops(concrete_function) -> float | None:
    """FLOPs of one call, from TensorFlow's profiler over the traced graph (convs, matmuls, their grads)."""
    try:
        from tensorflow.python.profiler import model_analyzer, option_builder

        options = option_builder.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        stats = model_analyzer.profile(concrete_function.graph, options=options)
        return float(stats.total_float_ops)
    except Exception as exc:  # the profiler is a compat API; report rather than fail the benchmark
        print(f"(FLOP count unavailable: {exc})", file=sys.stderr)
        return None


def step_flops(trainer: GANTrainer, real_batch: tf.Tensor) -> float | None:
    """FLOPs of one iteration (n_critic D steps + 1 G step) as the plain Keras conv ops compute it."""
    models = (trainer.generator, trainer.discriminator)
    for model in models:
        use_reference_ops(model)
    try:  # fresh functions: the trainer's own keep their optimised traces
        d_flops = graph_flops(tf.function(trainer._d_step).get_concrete_function(real_batch))
        g_flops = graph_flops(tf.function(trainer._g_step).get_concrete_function())
    finally:
        for model in models:
            use_reference_ops(model, False)
    return trainer.n_critic * d_flops + g_flops if d_flops and g_flops else None


def peak_memory_mb() -> dict[str, float]:
    peak = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if tf.config.list_physical_devices("GPU"):
        peak["peak_gpu_mb"] = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    return peak


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/train_throughput.json"))
    args, overrides = parser.parse_known_args(argv)
    cfg = compose(overrides)
    generator, discriminator, loss, penalty = build_for_training(cfg)
    trainer = GANTrainer(cfg, generator, discriminator, loss, int(cfg.seed), penalty)
    shape = (trainer.n_critic, trainer.batch_size, *generator.output_shape[1:])
    real = tf.random.uniform(shape, -1.0, 1.0, seed=0)

    started = time.perf_counter()
    trainer.iteration(real)["g_loss"].numpy()
    compile_s = time.perf_counter() - started
    flops = step_flops(trainer, real[0])
    for _ in range(args.warmup - 1):
        trainer.iteration(real)["g_loss"].numpy()
    times = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        trainer.iteration(real)["g_loss"].numpy()
        times.append(time.perf_counter() - t0)
    per_iter = float(np.median(times))
    result = {
        "model": cfg.model.name,
        "loss": cfg.loss.name,
        "dim": int(cfg.model.dim),
        "batch_size": trainer.batch_size,
        "n_critic": trainer.n_critic,
        "data_shape": list(shape[2:]),
        "g_params": int(generator.count_params()),
        "d_params": int(discriminator.count_params()),
        "mixed_precision": bool(cfg.trainer.mixed_precision),
        "xla": bool(cfg.trainer.xla),
        "deterministic": bool(cfg.trainer.deterministic),
        "intra_op_threads": int(cfg.trainer.intra_op_threads),
        "device": "GPU"
        if tf.config.list_physical_devices("GPU")
        else f"CPU ({platform.processor() or platform.machine()})",
        "first_call_s": round(compile_s, 3),
        "s_per_iter": round(per_iter, 4),
        "s_per_iter_min": round(float(np.min(times)), 4),
        # Real examples consumed by D per second (n_critic batches per iteration).
        "samples_per_s": round(trainer.n_critic * trainer.batch_size / per_iter, 2),
        # Generated examples per second (one G batch per iteration), the convention of most GAN code.
        "g_samples_per_s": round(trainer.batch_size / per_iter, 2),
        "flops_per_iter": flops,
        "achieved_gflops_per_s": round(flops / per_iter / 1e9, 2) if flops else None,
        **{k: round(v, 1) for k, v in peak_memory_mb().items()},
        "overrides": overrides,
        "iters": args.iters,
    }
    return report(result, args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
