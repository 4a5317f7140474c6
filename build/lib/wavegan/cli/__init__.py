"""The `wavegan` command: one entry point whose subcommands are the project's Hydra apps.

    wavegan train [overrides]          one training run (or -m: a multirun grid), logged to MLflow
    wavegan data [overrides]           build or reuse the data store and summarise it
    wavegan evaluate samples=<...>     score a run's generator or a folder of audio against real data
    wavegan sweep sweep=<name>         run or resume an Optuna study from sweeps/<name>.yaml
    wavegan report sweep=<name>        the report of a study
    wavegan ui                         the MLflow UI on the project's tracking store

Each subcommand is `python -m wavegan.<subcommand>` too, and takes Hydra's own flags (`--help`,
`--cfg job`, ...).
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": "one training run (-m: a multirun grid), logged to MLflow",
    "data": "build or reuse the data store and summarise it",
    "evaluate": "score a run's generator or a folder of audio against held-out real data",
    "sweep": "run or resume an Optuna stability study from sweeps/<name>.yaml",
    "report": "the report of an Optuna study (files and its MLflow run)",
    "ui": "the MLflow UI on the project's tracking store, opened at the experiment's runs table",
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: wavegan <command> [overrides] [hydra flags]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
    lines += ["", "`wavegan <command> --help` shows a command's config groups and options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}. Fix: one of {', '.join(COMMANDS)}.\n\n{usage()}", file=sys.stderr)
        return 2
    sys.argv = [f"wavegan-{command}", *rest]
    result = importlib.import_module(f"wavegan.cli.{command}").main()
    return result if isinstance(result, int) else 0
