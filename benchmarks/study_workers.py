"""One tiny study run by 1 worker, then by 3 workers as if on 3 machines, against a real PostgreSQL and
a real `mlflow server` started here (tests/servers.py, the system tests' servers): wall time, trials
finished, retries (and, with --kill, one of the 3 workers killed with SIGKILL mid-trial).

    .venv/bin/python benchmarks/study_workers.py [--trials 6] [--kill] [--out FILE]

Each worker is `wavegan sweep` in its own process and working directory (tests/machines.py), sharing
only the database URL, MLFLOW_TRACKING_URI and WAVEGAN_DATA_DIR. Wall time is from starting the workers
to the last one's exit (imports, the study report and MLflow logging included). On a machine with fewer
cores than workers, the workers share them: the figure is what a study gains here, not on 3 machines.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import wavegan  # noqa: E402,F401  (deeplake before tensorflow)
from benchmarks.common import report  # noqa: E402
from tests.machines import Worker, counted, machine, machine_env, run_workers, study_file, wait_until  # noqa: E402
from tests.servers import MlflowServer, PostgresServer  # noqa: E402


def run_study(name: str, n_workers: int, n_trials: int, servers, root: Path, kill: bool) -> dict:
    import optuna
    from optuna.trial import TrialState

    postgres, tracking = servers
    storage = postgres.create_database(name)
    env = machine_env(root / "shared", tracking.url)
    spec = study_file(name, n_trials)
    started = time.perf_counter()
    workers = [Worker(machine(root / name, f"m{i}", spec), name, storage, env) for i in range(n_workers)]
    if kill:
        victim = workers[0]

        def running() -> bool:
            try:
                trials = optuna.load_study(study_name=name, storage=storage).get_trials()
            except KeyError:  # no study yet
                return False
            pid = f":{victim.process.pid}"
            mine = [t for t in trials if t.user_attrs.get("worker", "").endswith(pid)]
            return any(t.state == TrialState.RUNNING for t in mine)

        wait_until(running, 600, "the first worker's trial")
        time.sleep(1)
        os.kill(victim.process.pid, signal.SIGKILL)
        victim.process.wait()
        workers = workers[1:]
    run_workers(workers, 1800)
    seconds = time.perf_counter() - started
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials()
    result = {
        "name": name,
        "workers": n_workers,
        "seconds": round(seconds, 1),
        "trials_finished": sum(t.state == TrialState.COMPLETE for t in counted(study)),
        "retries": sum(bool(t.system_attrs.get("retry_history")) for t in trials),
        "trials_started": len(trials),
    }
    print(result, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--kill", action="store_true", help="also: 3 workers, one killed mid-trial")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "study_workers.json")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="wavegan-study-workers-"))
    postgres = PostgresServer().start()
    tracking = None
    try:
        tracking = MlflowServer(postgres.create_database("mlflow"), root).start()
        servers = (postgres, tracking)
        # the data store is built once first, so neither run pays for it
        run_study("warmup", 1, 2, servers, root, kill=False)  # 1 trial: the report fails (comparisons)
        runs = [run_study("one_worker", 1, args.trials, servers, root, kill=False)]
        runs.append(run_study("three_workers", 3, args.trials, servers, root, kill=False))
        if args.kill:
            runs.append(run_study("three_workers_one_killed", 3, args.trials, servers, root, kill=True))
    finally:
        if tracking is not None:
            tracking.stop()
        postgres.close()
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
        "n_trials": args.trials,
    }
    for run in runs:
        result |= {f"{run['name']}/{k}": v for k, v in run.items() if k not in ("name", "workers")}
    result["speedup_3w"] = round(runs[0]["seconds"] / runs[1]["seconds"], 2)
    report(result, args.out)


if __name__ == "__main__":
    main()
