"""This project's training iteration against a plain PyTorch one (benchmarks/peer_torch.py), issue 11.

    .venv/bin/python benchmarks/compare_torch.py [--configs wavegan_d8,wavegan_d16,dcgan_d8,wavegan_d64]
                                                 [--reps 7] [--iters 2] [--paper-reps 3] [--threads N]
                                                 [--out FILE]

Same network layout, batch, WGAN-GP step (5 D steps + 1 G step per iteration, fp32, Adam) on both sides.
Each side lives in a worker process of its own (TensorFlow and PyTorch each keep their thread pools; neither
is imported next to the other), and the two are timed alternately, config by config: warm-up, then `--reps`
repetitions of `--iters` iterations on each side in turn, so both see the same machine load; the figure is
the median seconds per iteration over the repetitions. Warm-up: each side's first iteration (ours: with
tracing) and `--warmup` more. Paper size (wavegan_d64: d=64, batch 64) takes ~1 min per iteration on 2
cores: the first iteration, `--paper-warmup` more, then `--paper-reps` single iterations.

GFLOP/s: TensorFlow's profiler count of one iteration over the traced step with Keras's own conv ops (as
benchmarks/train_throughput.py counts it; the same work for both sides), divided by each side's seconds
per iteration. % of GEMM: that rate over the machine's fp32 GEMM rate measured in the same run (the best
TensorFlow matmul of 2048, 3072 and 4096 square float32 matrices, before and after the comparison).
Also per side: process CPU seconds per iteration (all threads). `--threads N` pins both libraries to N
threads (TensorFlow intra- and inter-op, torch.set_num_threads): not the issue's comparison, which is at
each library's defaults, but with N=1 a measure of the work per iteration that a machine shared with
other jobs cannot distort much (PyTorch's default OpenMP threads collapse when the cores are shared).
Prints a table; the last line is one JSON object (also written to --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Ours: hydra overrides; peer: PeerWGANGP's arguments. Everything else is the configs' default: the
# WGAN-GP loss (Adam beta 0.5/0.9), n_critic 5, phase shuffle 2, fp32; WaveGAN at the paper's 16384 samples
# with transposed convolutions (the reference's layout, as the peer builds it).
WAVEGAN = ["loss=wgan_gp", "data.slice_len=16384", "model.upsample=zeros", "model.phase_shuffle=2"]
CONFIGS: dict[str, dict] = {
    "wavegan_d8": {
        "ours": [*WAVEGAN, "model.dim=8", "trainer.batch_size=16"],
        "peer": {"model": "wavegan", "dim": 8, "batch": 16, "size": 16384},
    },
    "wavegan_d16": {
        "ours": [*WAVEGAN, "model.dim=16", "trainer.batch_size=16"],
        "peer": {"model": "wavegan", "dim": 16, "batch": 16, "size": 16384},
    },
    "dcgan_d8": {  # the DCGAN/SpecGAN default (model=dcgan: d=8, 128x128) against a PyTorch SpecGAN
        "ours": ["model=dcgan", "loss=wgan_gp", "model.dim=8", "trainer.batch_size=16"],
        "peer": {"model": "dcgan", "dim": 8, "batch": 16, "size": 128},
    },
    "wavegan_d64": {  # paper size
        "ours": [*WAVEGAN, "model.dim=64", "trainer.batch_size=64"],
        "peer": {"model": "wavegan", "dim": 64, "batch": 64, "size": 16384},
        "paper": True,
    },
}


# --- the workers: one request per stdin line, one JSON answer per stdout line --------------------------

THREADS_ENV = "WAVEGAN_BENCH_THREADS"  # set by --threads; the workers read it before building anything
THREADS = int(os.environ.get(THREADS_ENV) or 0)


class OursWorker:
    def __init__(self) -> None:
        import wavegan  # noqa: F401  (deeplake before tensorflow)

        sys.path.insert(0, str(HERE))
        import tensorflow as tf

        if THREADS:
            tf.config.threading.set_intra_op_parallelism_threads(THREADS)
            tf.config.threading.set_inter_op_parallelism_threads(THREADS)
        self.tf = tf
        self.trainer = None
        self.cpu_times: list[float] = []

    def setup(self, config: str) -> dict:
        from train_throughput import step_flops

        from wavegan.cli.app import compose
        from wavegan.training.run import build_for_training
        from wavegan.training.trainer import GANTrainer

        cfg = compose(CONFIGS[config]["ours"])
        generator, discriminator, loss, penalty = build_for_training(cfg)
        self.trainer = GANTrainer(cfg, generator, discriminator, loss, int(cfg.seed), penalty)
        shape = (self.trainer.n_critic, self.trainer.batch_size, *generator.output_shape[1:])
        self.real = self.tf.random.uniform(shape, -1.0, 1.0, seed=0)
        started = time.perf_counter()
        self.trainer.iteration(self.real)["g_loss"].numpy()
        first = time.perf_counter() - started
        return {"first_call_s": first, "flops": step_flops(self.trainer, self.real[0])}

    def run(self, iters: int) -> list[float]:
        times, self.cpu_times = [], []
        for _ in range(iters):
            started, cpu_started = time.perf_counter(), time.process_time()
            self.trainer.iteration(self.real)["g_loss"].numpy()
            times.append(time.perf_counter() - started)
            self.cpu_times.append(time.process_time() - cpu_started)
        return times

    def cpu(self) -> list[float]:
        """Process CPU seconds (all threads) of each iteration of the last `run`."""
        return self.cpu_times

    def gemm(self) -> float:
        """The best fp32 matmul rate in FLOP/s over square sizes 2048, 3072 and 4096."""
        tf = self.tf
        matmul = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
        best = 0.0
        for n in (2048, 3072, 4096):
            a, b = tf.random.normal([n, n]), tf.random.normal([n, n])
            matmul(a, b).numpy()
            for _ in range(3):
                started = time.perf_counter()
                matmul(a, b).numpy()
                best = max(best, 2 * n**3 / (time.perf_counter() - started))
        return best


class PeerWorker:
    def __init__(self) -> None:
        sys.path.insert(0, str(HERE))
        import peer_torch

        self.peer_torch = peer_torch
        self.peer = None
        self.cpu_times: list[float] = []
        if THREADS:
            import torch

            torch.set_num_threads(THREADS)

    def setup(self, config: str) -> dict:
        import torch

        self.peer = self.peer_torch.PeerWGANGP(**CONFIGS[config]["peer"])
        self.real = self.peer.real_batches()
        started = time.perf_counter()
        self.peer.iteration(self.real)
        return {"first_call_s": time.perf_counter() - started, "torch": torch.__version__,
                "threads": torch.get_num_threads()}  # fmt: skip

    def run(self, iters: int) -> list[float]:
        cpu_started = time.process_time()
        times = self.peer_torch.time_iterations(self.peer, 0, iters)
        self.cpu_times = [(time.process_time() - cpu_started) / iters] * iters
        return times

    def cpu(self) -> list[float]:
        return self.cpu_times


def serve(kind: str) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    worker = OursWorker() if kind == "ours" else PeerWorker()
    out = sys.stdout
    sys.stdout = sys.stderr  # libraries' prints must not reach the protocol channel
    for line in sys.stdin:
        request = json.loads(line)
        answer = getattr(worker, request["cmd"])(*request.get("args", []))
        out.write(json.dumps({"answer": answer}) + "\n")
        out.flush()


class Worker:
    def __init__(self, kind: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if kind == "peer" else None,
            text=True,
            cwd=ROOT,
            env=env,
        )

    def __call__(self, cmd: str, *args) -> object:
        self.process.stdin.write(json.dumps({"cmd": cmd, "args": list(args)}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker died during {cmd}{args}")
        return json.loads(line)["answer"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


# --- the comparison ----------------------------------------------------------------------------------


def compare(config: str, ours: Worker, peer: Worker, reps: int, iters: int, warmup: int) -> dict:
    setup = ours("setup", config)  # each setup runs one iteration (ours: tracing included)
    peer_setup = peer("setup", config)
    if warmup:
        ours("run", warmup)
        peer("run", warmup)
    ours_times, peer_times, ours_cpu, peer_cpu = [], [], [], []
    for _ in range(reps):
        ours_times.append(statistics.mean(ours("run", iters)))
        ours_cpu.append(statistics.mean(ours("cpu")))
        peer_times.append(statistics.mean(peer("run", iters)))
        peer_cpu.append(statistics.mean(peer("cpu")))
        print(f"  {config}: ours {ours_times[-1]:.3f}  peer {peer_times[-1]:.3f} s/iter", flush=True)
    return {
        "config": config,
        "ours_s_per_iter": statistics.median(ours_times),
        "peer_s_per_iter": statistics.median(peer_times),
        "ours_reps": ours_times,
        "peer_reps": peer_times,
        # Process CPU seconds per iteration (all threads; spinning threads count too).
        "ours_cpu_s_per_iter": statistics.median(ours_cpu),
        "peer_cpu_s_per_iter": statistics.median(peer_cpu),
        "flops_per_iter": setup["flops"],
        "ours_first_call_s": setup["first_call_s"],
        "torch": peer_setup["torch"],
        "torch_threads": peer_setup["threads"],
        "overrides": CONFIGS[config]["ours"],
    }


def table(rows: list[dict], gemm: float) -> str:
    lines = [
        f"{'config':<13} {'ours s/it':>9} {'peer s/it':>9} {'ratio':>6} {'ours GF/s':>9} {'peer GF/s':>9} "
        f"{'ours %GEMM':>10} {'peer %GEMM':>10} {'ours CPU s':>10} {'peer CPU s':>10}"
    ]
    for row in rows:
        lines.append(
            f"{row['config']:<13} {row['ours_s_per_iter']:9.3f} {row['peer_s_per_iter']:9.3f} "
            f"{row['ratio']:6.2f} {row['ours_gflops_per_s']:9.1f} {row['peer_gflops_per_s']:9.1f} "
            f"{row['ours_pct_gemm']:9.1f}% {row['peer_pct_gemm']:9.1f}% "
            f"{row['ours_cpu_s_per_iter']:10.3f} {row['peer_cpu_s_per_iter']:10.3f}"
        )
    lines.append(f"GEMM rate (TF fp32 matmul 2048-4096, best): {gemm / 1e9:.1f} GFLOP/s")
    return "\n".join(lines)


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=("ours", "peer"), help=argparse.SUPPRESS)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--iters", type=int, default=2, help="iterations per repetition (small configs)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="iterations after the first call (small configs)"
    )
    parser.add_argument("--paper-reps", type=int, default=3)
    parser.add_argument("--paper-warmup", type=int, default=0, help="the same at paper size")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="both libraries pinned to this many threads (0: their defaults)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "compare_torch.json")
    args = parser.parse_args(argv)
    if args.worker:
        serve(args.worker)
        return {}
    configs = args.configs.split(",")
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown config(s) {unknown}; choose from {', '.join(CONFIGS)}")

    if args.threads:
        os.environ[THREADS_ENV] = str(args.threads)
    load_before = os.getloadavg()
    started = time.perf_counter()
    ours, peer = Worker("ours"), Worker("peer")
    try:
        gemm_rates = [ours("gemm")]
        rows = []
        for config in configs:
            paper = CONFIGS[config].get("paper", False)
            reps, iters, warmup = (
                (args.paper_reps, 1, args.paper_warmup) if paper else (args.reps, args.iters, args.warmup)
            )
            rows.append(compare(config, ours, peer, reps, iters, warmup))
            partial = args.out.with_suffix(".partial.json")  # what a run cut short still leaves behind
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(
                json.dumps({"rows": rows, "gemm_gflops_per_s_runs": [g / 1e9 for g in gemm_rates]})
            )
        gemm_rates.append(ours("gemm"))
    finally:
        ours.close()
        peer.close()
    gemm = max(gemm_rates)
    for row in rows:
        row["ratio"] = row["peer_s_per_iter"] / row["ours_s_per_iter"]
        for side in ("ours", "peer"):
            rate = row["flops_per_iter"] / row[f"{side}_s_per_iter"] if row["flops_per_iter"] else 0.0
            row[f"{side}_gflops_per_s"] = rate / 1e9
            row[f"{side}_pct_gemm"] = 100 * rate / gemm
    print(table(rows, gemm))
    result = {
        "rows": rows,
        "gemm_gflops_per_s": gemm / 1e9,
        "gemm_gflops_per_s_runs": [g / 1e9 for g in gemm_rates],
        "ratio": "peer seconds per iteration / ours (above 1: ours is faster)",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_avg_before": load_before,
        "load_avg_after": os.getloadavg(),
        "seconds": time.perf_counter() - started,
        "reps": args.reps,
        "iters_per_rep": args.iters,
        "paper_reps": args.paper_reps,
        "threads": args.threads or "library defaults",
        "warmup": args.warmup,
        "paper_warmup": args.paper_warmup,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    args.out.with_suffix(".partial.json").unlink(missing_ok=True)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
