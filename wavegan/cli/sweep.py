"""`wavegan sweep sweep=<name> [sweep.<key>=<value> ...] [training overrides ...]` (also
`python -m wavegan.sweep`): run or resume an Optuna study from sweeps/<name>.yaml.

    wavegan sweep sweep=optimizer_stability
    wavegan sweep sweep=loss_comparison sweep.seeds=5 trainer.max_steps=2000
    wavegan sweep sweep=optimizer_stability sweep.n_jobs=2 sweep.n_trials=40
    wavegan sweep sweep=optimizer_stability sweep.storage=postgresql://u:pw@db/optuna  # N machines
    wavegan sweep sweep=optimizer_stability --cfg job     # print the checked study, run nothing

How a study runs: wavegan/study/workers.py.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from omegaconf import OmegaConf

from wavegan.errors import ConfigError, WaveganError
from wavegan.secret_masking import mask_text
from wavegan.study.plan import plan_study
from wavegan.study.spec import load_spec
from wavegan.study.workers import run_sweep, setup_logging

USAGE = __doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1]


@dataclass
class CliArgs:
    sweep: str | None = None
    sweep_overrides: dict[str, str] = field(default_factory=dict)
    training_overrides: list[str] = field(default_factory=list)
    show: bool = False
    help: bool = False


def parse_args(argv: list[str]) -> CliArgs:
    """`sweep=<name>`, `sweep.<key>=<value>`, training overrides (`key=value`, `+key=`, `~key`), `--cfg`."""
    args = CliArgs()
    items = iter(argv)
    for item in items:
        if item in ("-h", "--help"):
            args.help = True
        elif item in ("--cfg", "-c"):
            next(items, None)
            args.show = True
        elif item.startswith("sweep="):
            args.sweep = item.partition("=")[2]
        elif item.startswith("sweep.") and "=" in item:
            key, _, value = item.partition("=")
            args.sweep_overrides[key[len("sweep.") :]] = value
        elif "=" in item or item.startswith("~"):
            args.training_overrides.append(item)
        else:
            raise ConfigError(f"unexpected argument {item!r}. Usage:\n{USAGE}")
    return args


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    argv = sys.argv[1:] if argv is None else argv
    spec = None
    try:
        args = parse_args(argv)
        if args.help or (args.show and not args.sweep):
            print(USAGE)
            return 0
        if not args.sweep:
            raise ConfigError(f"which study? Pass sweep=<name> (a file in sweeps/). Usage:\n{USAGE}")
        spec = load_spec(args.sweep, args.sweep_overrides)
        if args.show:
            plan = plan_study(spec, args.training_overrides)
            print(OmegaConf.to_yaml(OmegaConf.create(spec.summary() | {"n_trials": plan.n_trials})))
            print("# training config of a trial before its searched values and seed:")
            print(OmegaConf.to_yaml(plan.variants[0]))
            return 0
        run_sweep(spec, args.training_overrides)
        return 0
    except WaveganError as exc:
        message = mask_text(str(exc), spec.storage if spec else None)
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume the study", file=sys.stderr)
        return 130
