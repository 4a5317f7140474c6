"""Runs `wavegan <command> <args>` cases in one process, one JSON line in (stdin), one JSON line out:
what the command returned and printed. A command that hangs or eats memory is the parent's to notice
and kill (input_faults.CaseRunner); this process only runs cases, so that the ~10 s start-up of
TensorFlow, Hydra and MLflow is paid once, not per case.

    {"command": "train", "argv": [...], "env": {...}}  ->  @@case {"rc": 2, "stdout": "...", "stderr": "..."}
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import sys

import wavegan  # noqa: F401  (deeplake before tensorflow)
from wavegan.cli.app import exit_status

MARK = "@@case "


def run_case(case: dict) -> dict:
    os.environ.update(case.get("env", {}))
    module = importlib.import_module(f"wavegan.cli.{case['command']}")
    sys.argv = [f"wavegan-{case['command']}", *case["argv"]]
    out, err = io.StringIO(), io.StringIO()

    def command(argv: None) -> None:
        status = module.main()  # `sweep` and `report` return their exit status, the others raise it
        if isinstance(status, int) and status:
            raise SystemExit(status)

    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = exit_status(command, None)
        except BaseException as exc:  # a bug that escaped the entry point: the parent reports it
            rc, err = 1, io.StringIO(f"{err.getvalue()}\nTraceback (escaped): {exc!r}")
    return {"rc": rc, "stdout": out.getvalue()[-4000:], "stderr": err.getvalue()[-4000:]}


def main() -> None:
    protocol = sys.stdout
    for line in sys.stdin:
        result = run_case(json.loads(line))
        protocol.write(MARK + json.dumps(result) + "\n")
        protocol.flush()


if __name__ == "__main__":
    main()
