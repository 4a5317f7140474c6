"""Do the default runs visibly learn? The bar a newcomer's first runs must pass (issue 8):

    * FD at the end <= 1/3 of FD at the first evaluation after step 0 (step eval.every),
    * class coverage at the end >= half of the classes,
    * previews that differ: the generated clips' nearest-neighbour distance to each other at the end is
      at least half that of held-out real clips (a collapsed generator has ~0).

    .venv/bin/python benchmarks/default_runs_learn.py                  # both default commands
    .venv/bin/python benchmarks/default_runs_learn.py --only wavegan   # or --only dcgan

Runs each default command exactly as README gives it (`python -m wavegan.train` and
`python -m wavegan.train loss=wgan_gp model=dcgan`), in a subprocess with its own MLflow store, reads the
eval/ history back, prints a table per run, draws the FD and coverage curves to
benchmarks/results/default_runs_learn.png and writes JSON (last line). Exits 1 when a run misses the bar.
A benchmark, not a test: each run takes minutes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
COMMANDS = {
    "wavegan": [],  # python -m wavegan.train: WaveGAN + WGAN-GP on the built-in notes
    "dcgan": ["loss=wgan_gp", "model=dcgan"],
}
KEYS = ("eval/frechet_distance", "eval/class_coverage", "eval/nn_to_generated", "eval/inception_score")


def run_default(name: str, overrides: list[str], workdir: Path) -> dict:
    db = workdir / f"{name}.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}", "WAVEGAN_CHECKPOINT_DIR": str(workdir)}
    command = [
        sys.executable,
        "-m",
        "wavegan.train",
        *overrides,
        "trainer.progress=false",
        f"hydra.run.dir={workdir / name}",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")

    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{db}")
    run = client.search_runs([e.experiment_id for e in client.search_experiments()])[0]
    history = {
        k: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, k)) for k in KEYS
    }
    metrics = run.data.metrics
    fd = history["eval/frechet_distance"]
    first, last = fd[0], fd[-1]
    coverage = history["eval/class_coverage"][-1][1]
    nn_gen, nn_real = history["eval/nn_to_generated"][-1][1], metrics["eval/reference/nn_to_generated"]
    result = {
        "command": "python -m wavegan.train " + " ".join(overrides),
        "outcome": run.data.tags.get("outcome"),
        "wall_s": round(seconds, 1),
        "steps": int(run.data.params.get("trainer.max_steps", 0)),
        "fd_first": {"step": first[0], "value": round(first[1], 3)},
        "fd_final": {"step": last[0], "value": round(last[1], 3)},
        "fd_final_over_first": round(last[1] / first[1], 3),
        "fd_reference": round(metrics["eval/reference/frechet_distance"], 3),
        "coverage_final": round(coverage, 3),
        "nn_to_generated_final": round(nn_gen, 4),
        "nn_to_generated_reference": round(nn_real, 4),
        "history": {k.split("/", 1)[1]: [[s, round(v, 4)] for s, v in h] for k, h in history.items()},
    }
    result["checks"] = {
        "fd_final_at_most_a_third_of_first": last[1] <= first[1] / 3,
        "coverage_at_least_half": coverage >= 0.5,
        "previews_differ": nn_gen >= 0.5 * nn_real,
    }
    result["learns"] = all(result["checks"].values())
    return result


def plot(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, res in results.items():
        steps, fd = zip(*res["history"]["frechet_distance"], strict=True)
        line = axes[0].plot(steps, fd, marker="o", label=f"{name}: {res['command']}")[0]
        axes[0].axhline(res["fd_reference"], color=line.get_color(), ls="--", lw=1)
        steps, cov = zip(*res["history"]["class_coverage"], strict=True)
        axes[1].plot(steps, cov, marker="o", color=line.get_color(), label=name)
    axes[0].set(
        yscale="log",
        xlabel="step",
        ylabel="eval/frechet_distance (log)",
        title="FD (dashed: held-out real data, the ceiling)",
    )
    axes[1].set(ylim=(0, 1.05), xlabel="step", ylabel="eval/class_coverage", title="class coverage")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(COMMANDS))
    args = parser.parse_args()
    names = [args.only] if args.only else list(COMMANDS)
    with tempfile.TemporaryDirectory() as tmp:
        results = {name: run_default(name, COMMANDS[name], Path(tmp)) for name in names}
    for name, res in results.items():
        print(f"\n{name}: {res['command']}  ({res['outcome']}, {res['steps']} steps, {res['wall_s']} s wall)")
        print(f"{'step':>6} {'FD':>10} {'coverage':>9} {'nn_to_gen':>10}")
        for (step, fd), (_, cov), (_, nn) in zip(
            res["history"]["frechet_distance"],
            res["history"]["class_coverage"],
            res["history"]["nn_to_generated"],
            strict=False,
        ):
            print(f"{step:>6} {fd:>10.3f} {cov:>9.3f} {nn:>10.4f}")
        print(
            f"reference FD {res['fd_reference']}, nn_to_generated {res['nn_to_generated_reference']}; "
            f"checks {res['checks']}"
        )
    plot(results, RESULTS / "default_runs_learn.png")
    summary = {"learns": all(r["learns"] for r in results.values()), "runs": results}
    report(summary, RESULTS / "default_runs_learn.json", table=False)
    return 0 if summary["learns"] else 1


if __name__ == "__main__":
    sys.exit(main())
