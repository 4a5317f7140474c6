"""Fault injection (issue 13): for each fault, N trials at random points, the invariants checked after
each, and a table: fault, trials, survived, data lost, wrong results. JSON is the last line (also
benchmarks/results/faults.json).

    PYTHONPATH=. .venv/bin/python benchmarks/faults.py                       # N = 20 per fault
    PYTHONPATH=. .venv/bin/python benchmarks/faults.py --trials 3 --only kill_train,corrupt_checkpoint

Faults (benchmarks/faultlib/): kill -9 of `wavegan train` anywhere (failpoints and random times), kill -9
of the store, feature and classifier cache builds, a full disk under checkpoints or MLflow artifacts
(a real tmpfs: needs root, else the row says it was skipped), a corrupt or truncated latest checkpoint,
hostile audio files, config values and study files; kill -9 of `wavegan sweep` workers on SQLite and
PostgreSQL storage, a tracking server lost mid-run, and concurrent runs and sweeps in one SQLite store (the
servers, tests/servers.py, start on first use).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
from pathlib import Path

from common import report  # benchmarks/ is on sys.path when a script there runs
from faultlib import (  # noqa: E402
    cache_faults,
    concurrency_faults,
    input_faults,
    server_faults,
    sweep_faults,
    training_faults,
)
from faultlib.harness import run_fault, table  # noqa: E402


def make_faults(root: Path, servers: server_faults.Servers) -> dict[str, object]:
    """Every row, by the name --only takes; training rows share one uninterrupted reference run."""
    reference = training_faults.Reference(root)
    return {
        "kill_train": training_faults.KillTraining(reference),
        "kill_cache": cache_faults.KillCaching(),
        "disk_full": training_faults.DiskFull(reference),
        "corrupt_checkpoint": training_faults.CorruptCheckpoint(reference),
        "hostile_audio": input_faults.HostileAudio(),
        "hostile_config": input_faults.HostileConfig(),
        "hostile_study": input_faults.HostileStudy(),
        "kill_sweep": sweep_faults.KillSweepWorkers(servers),
        "lost_tracking_server": server_faults.LostTrackingServer(reference, servers),
        "concurrent": concurrency_faults.ConcurrentUse(reference),
    }


def main() -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=20, help="trials per fault (default 20)")
    parser.add_argument("--trials-of", default="", help="per-fault counts, e.g. kill_train=3,disk_full=3")
    parser.add_argument("--only", default="", help="comma-separated faults (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "faults.json")
    parser.add_argument("--update", action="store_true", help="replace only these rows in --out's table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wavegan-faults-") as tmp:
        root = (args.workdir or Path(tmp)).resolve()
        root.mkdir(parents=True, exist_ok=True)
        servers = server_faults.Servers(root)
        faults = make_faults(root, servers)
        chosen = [n for n in args.only.split(",") if n] or list(faults)
        unknown = set(chosen) - set(faults)
        if unknown:
            sys.exit(f"unknown fault(s) {sorted(unknown)}; one of {', '.join(faults)}")
        rng = random.Random(args.seed)
        pairs = (item.partition("=") for item in args.trials_of.split(",") if item)
        counts = {name: int(n) for name, _, n in pairs}
        rows = []
        try:
            for name in chosen:
                rows.append(run_fault(faults[name], counts.get(name, args.trials), rng, root) | {"id": name})
        finally:
            input_faults.stop_workers(list(faults.values()))
            servers.close()
        if args.update and args.out.is_file():  # the other rows as an earlier run left them
            earlier = json.loads(args.out.read_text())["rows"]
            rows = [r for r in earlier if r["id"] not in chosen] + rows
        print()
        print(table(rows))
        result = {
            "trials_per_fault": {row["id"]: row["trials"] for row in rows},
            "seed": args.seed,  # of the last run (with --update, earlier rows came from earlier runs)
            "seconds": round(sum(r["seconds"] for r in rows), 1),
            "machine": f"{platform.machine()}, {platform.python_version()}",
            "rows": rows,
            "all_survived": all(
                r["survived"] == r["trials"] and not r["data_lost"] and not r["wrong"] for r in rows
            ),
        }
        return report(result, args.out, table=False)


if __name__ == "__main__":
    main()
