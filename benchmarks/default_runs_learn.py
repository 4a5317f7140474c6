"""Do the default runs visibly learn? The bar a newcomer's first runs must pass (issue 8):

    * FD at the end <= 1/3 of FD at the first evaluation after step 0 (step eval.every),
    * class coverage at the end >= half of the classes,
    * previews that differ: the generated clips' nearest-neighbour distance to each other at the end is
      at least half that of held-out real clips (a collapsed generator has ~0).

    .venv/bin/python benchmarks/default_runs_learn.py                  # both default commands
    .venv/bin/python benchmarks/default_runs_learn.py --only wavegan   # or --only dcgan
    .venv/bin/python benchmarks/default_runs_learn.py --only dcgan --seed 1 \
        --overrides "trainer.g_ema=0.99 optimizer.lr=5e-4" --out candidates/dcgan_ema   # a candidate

Runs each default command exactly as README gives it (`python -m wavegan.train` and
`python -m wavegan.train loss=wgan_gp model=dcgan`, plus `--overrides` and `seed=`), in a subprocess with
its own MLflow store, reads the eval/ (and, with an EMA generator, eval_ema/) history back, prints a table
per run, draws the FD and coverage curves to benchmarks/results/<out>.png and writes JSON to
benchmarks/results/<out>.json (and as the last line). The bar is judged on `--judge` (default eval/, the raw
generator: the run's headline figure and the study objectives' default); the other prefix's checks are
reported beside it. Exits 1 when a run misses the bar.

The machine may be shared: each run records the load average before and after, the CPU seconds the run
used (user + system of the subprocess) and those of its busiest thread, from which its wall time on 2 free
cores is estimated as max(CPU seconds / 2, busiest thread): the run can neither spread its work over more
than two cores nor finish before its longest serial thread. CPU seconds themselves bound it from above
(all the work on one core). A benchmark, not a test: each run takes minutes.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
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
METRICS = ("frechet_distance", "class_coverage", "nn_to_generated", "inception_score")
PREFIXES = ("eval", "eval_ema")
CORES = 2


def _load() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each thread of a running process, from /proc; {} once it is gone."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[task.name] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (stat fields 14, 15)
    return out


def checks(history: dict[str, list], reference: dict[str, float]) -> dict:
    """The bar on one prefix's history: FD ratio end/first, coverage at the end, previews' diversity."""
    fd = history["frechet_distance"]
    (first_step, first), (last_step, last) = fd[0], fd[-1]
    best_step, best = min(fd, key=lambda p: p[1])
    coverage = history["class_coverage"][-1][1]
    nn_gen = history["nn_to_generated"][-1][1]
    result = {
        "fd_first": {"step": first_step, "value": round(first, 3)},
        "fd_min": {"step": best_step, "value": round(best, 3)},
        "fd_final": {"step": last_step, "value": round(last, 3)},
        "fd_final_over_first": round(last / first, 3),
        "coverage_first": round(history["class_coverage"][0][1], 3),
        "coverage_final": round(coverage, 3),
        "is_first": round(history["inception_score"][0][1], 3),
        "is_final": round(history["inception_score"][-1][1], 3),
        "nn_to_generated_final": round(nn_gen, 4),
        "checks": {
            "fd_final_at_most_a_third_of_first": last <= first / 3,
            "coverage_at_least_half": coverage >= 0.5,
            "previews_differ": nn_gen >= 0.5 * reference["nn_to_generated"],
        },
    }
    result["learns"] = all(result["checks"].values())
    return result


def run_default(name: str, overrides: list[str], seed: int | None, workdir: Path, judge: str) -> dict:
    import mlflow

    db = workdir / f"{name}.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}", "WAVEGAN_CHECKPOINT_DIR": str(workdir)}
    args = [*COMMANDS[name], *overrides, *([f"seed={seed}"] if seed is not None else [])]
    run_dir = f"hydra.run.dir={workdir / name}"
    command = [sys.executable, "-m", "wavegan.train", *args, "trainer.progress=false", run_dir]
    load_before, cpu_before = _load(), _children_cpu_s()
    started = time.perf_counter()
    log = workdir / f"{name}.log"
    with log.open("w") as out:
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        threads: dict[str, float] = {}
        while child.poll() is None:
            threads = _thread_cpu_s(child.pid) or threads
            time.sleep(1.0)
    seconds = time.perf_counter() - started
    cpu_s = _children_cpu_s() - cpu_before
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{log.read_text()[-4000:]}")
    busiest = max(threads.values(), default=0.0)

    client = mlflow.tracking.MlflowClient(f"sqlite:///{db}")
    run = client.search_runs([e.experiment_id for e in client.search_experiments()])[0]
    metrics = run.data.metrics
    reference = {m: metrics[f"eval/reference/{m}"] for m in METRICS}
    history = {}
    for prefix in PREFIXES:
        if f"{prefix}/frechet_distance" in metrics:
            history[prefix] = {
                m: [
                    [s, round(v, 4)]
                    for s, v in sorted(
                        (p.step, p.value) for p in client.get_metric_history(run.info.run_id, f"{prefix}/{m}")
                    )
                ]
                for m in METRICS
            }
    result = {
        "command": "python -m wavegan.train " + " ".join(args),
        "seed": int(run.data.params.get("seed", 0)),
        "outcome": run.data.tags.get("outcome"),
        "artifacts": run.info.artifact_uri,  # previews, samples and the generator(s), kept after the run
        "wall_s": round(seconds, 1),
        "cpu_s": round(cpu_s, 1),
        # On free cores a run cannot finish before its busiest thread's CPU time, nor before its CPU time
        # spread over both cores: the larger of the two estimates its wall time there.
        "busiest_thread_cpu_s": round(busiest, 1),
        "wall_s_on_free_cores_estimate": round(max(cpu_s / CORES, busiest), 1),
        "loadavg_before": load_before,
        "loadavg_after": _load(),
        "steps": int(run.data.params.get("trainer.max_steps", 0)),
        "eval_every": int(run.data.params.get("eval.every", 0)),
        "judged_on": judge,
        "reference": {m: round(v, 4) for m, v in reference.items()},
        "classifier_reliable": run.data.tags.get("classifier_reliable"),
        "history": history,
    }
    for prefix, hist in history.items():
        result[prefix] = checks(hist, reference)
    if judge not in history:
        raise SystemExit(f"--judge {judge}: the run logged no {judge}/ figures (is trainer.g_ema > 0?)")
    result["learns"] = result[judge]["learns"]
    return result


def plot(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, res in results.items():
        color = None
        for prefix, hist in res["history"].items():
            style = "-" if prefix == "eval" else ":"
            steps, fd = zip(*hist["frechet_distance"], strict=True)
            label = f"{name} {prefix}/" + ("" if color else f"  ({res['command']})")
            line = axes[0].plot(steps, fd, style, marker="o", ms=3, color=color, label=label)[0]
            color = line.get_color()
            steps, cov = zip(*hist["class_coverage"], strict=True)
            axes[1].plot(steps, cov, style, marker="o", ms=3, color=color, label=f"{name} {prefix}/")
        axes[0].axhline(res["reference"]["frechet_distance"], color=color, ls="--", lw=1)
    axes[0].set(
        yscale="log",
        xlabel="step",
        ylabel="frechet_distance (log)",
        title="FD (dashed: held-out real data, the ceiling)",
    )
    axes[1].axhline(0.5, color="grey", ls="--", lw=1)
    axes[1].set(ylim=(0, 1.05), xlabel="step", ylabel="class_coverage", title="class coverage (bar: 0.5)")
    axes[0].legend(fontsize=6)
    axes[1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def print_run(name: str, res: dict) -> None:
    print(
        f"\n{name}: {res['command']}  ({res['outcome']}, {res['steps']} steps, {res['wall_s']} s wall, "
        f"{res['cpu_s']} CPU s, busiest thread {res['busiest_thread_cpu_s']} s: ~"
        f"{res['wall_s_on_free_cores_estimate']} s on {CORES} free cores; "
        f"load {res['loadavg_before']} -> {res['loadavg_after']})"
    )
    prefixes = list(res["history"])
    header = "".join(f" {p + '/FD':>12} {'cov':>6} {'IS':>6} {'nn_gen':>7}" for p in prefixes)
    print(f"{'step':>6}{header}")
    steps = [s for s, _ in res["history"]["eval"]["frechet_distance"]]
    for i, step in enumerate(steps):
        row = ""
        for p in prefixes:
            h = res["history"][p]
            row += (
                f" {h['frechet_distance'][i][1]:>12.1f} {h['class_coverage'][i][1]:>6.3f}"
                f" {h['inception_score'][i][1]:>6.2f} {h['nn_to_generated'][i][1]:>7.4f}"
            )
        print(f"{step:>6}{row}")
    ref = res["reference"]
    print(f"reference (held-out real): FD {ref['frechet_distance']}, nn_to_gen {ref['nn_to_generated']}")
    for p in prefixes:
        c = res[p]
        fd_min = c["fd_min"]
        print(
            f"{p + '/':>9} FD {c['fd_first']['value']} -> min {fd_min['value']} (step {fd_min['step']})"
            f" -> {c['fd_final']['value']}: ratio {c['fd_final_over_first']}; coverage {c['coverage_final']};"
            f" learns={c['learns']} {c['checks']}" + ("  <- judged" if p == res["judged_on"] else "")
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(COMMANDS))
    parser.add_argument("--seed", type=int, help="seed=<n> for every run (default: the config's)")
    parser.add_argument("--overrides", default="", help='extra overrides, e.g. "trainer.g_ema=0.99"')
    parser.add_argument("--judge", choices=PREFIXES, default="eval", help="the prefix the bar is judged on")
    parser.add_argument("--out", default="default_runs_learn", help="results stem under benchmarks/results/")
    parser.add_argument("--keep", type=Path, help="keep each run's folder (log, MLflow store, previews) here")
    args = parser.parse_args()
    names = [args.only] if args.only else list(COMMANDS)
    overrides = shlex.split(args.overrides)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = {name: run_default(name, overrides, args.seed, workdir, args.judge) for name in names}
    for name, res in results.items():
        print_run(name, res)
    out = RESULTS / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    plot(results, out.with_suffix(".png"))
    summary = {"learns": all(r["learns"] for r in results.values()), "judged_on": args.judge, "runs": results}
    report(summary, out.with_suffix(".json"), table=False)
    return 0 if summary["learns"] else 1


if __name__ == "__main__":
    sys.exit(main())
