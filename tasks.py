#!/usr/bin/env python3
"""The two quickstart commands, needing nothing but Python 3.11+ and pip:

    python3 tasks.py train [hydra overrides]   # train on the built-in data set, logged to MLflow
    python3 tasks.py test  [pytest args]       # the test suite (what CI runs)

Both create `.venv` and install the project into it on first use (and again when pyproject.toml
changes), then run inside it. Other commands: `python3 tasks.py data|sweep|report|evaluate ...` run
`python -m wavegan.<command>`, `python3 tasks.py lint` runs ruff.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".installed-pyproject-sha256"


def ensure_venv() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.is_file() and STAMP.read_text().strip() == wanted and PYTHON.exists():
        return
    if sys.version_info < (3, 11):  # noqa: UP036  (this file runs on whatever python3 is)
        sys.exit(f"wavegan needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        print(f"creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing wavegan and its dependencies into .venv (first run: a few minutes) ...", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    ensure_venv()
    if command == "test":
        # pytest exits 5 when nothing was collected: that is a failure of the suite, not a pass.
        args = [str(PYTHON), "-m", "pytest", *rest]
    elif command == "lint":
        args = [str(BIN / "ruff"), "check", ".", *rest]
    elif command in ("train", "data", "sweep", "report", "evaluate"):
        args = [str(PYTHON), "-m", f"wavegan.{command}", *rest]
    else:
        print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
        return 2
    return subprocess.run(args, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
