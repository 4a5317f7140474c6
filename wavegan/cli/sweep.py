"""`wavegan sweep sweep=<name> [sweep.<key>=<value> ...] [training overrides ...]` (also
`python -m wavegan.sweep`): run or resume the Optuna study of sweeps/<name>.yaml.

    wavegan sweep sweep=optimizer_stability
    wavegan sweep sweep=loss_comparison sweep.seeds=5 trainer.max_steps=2000
    wavegan sweep sweep=optimizer_stability sweep.n_jobs=2 sweep.n_trials=40
    wavegan sweep sweep=optimizer_stability sweep.storage=postgresql://u:pw@db/optuna  # N machines
    wavegan sweep sweep=my_study.yaml 'sweep.search_space.optimizer.lr=tag(log, interval(1e-4, 1e-2))'
    wavegan sweep sweep=optimizer_stability --cfg job     # print the checked study, run nothing

A Hydra app: the config is the training config plus the study (`sweep`), so `--help`, `--cfg`, tab
completion and override syntax are Hydra's. Training overrides (`trainer.max_steps=2000`) apply to every
trial, after the study's own `overrides:`; `sweep.<key>=<value>` changes a key of the study. Where study
files are found: wavegan/study/compose.py; how a study runs: wavegan/study/workers.py.
"""

from __future__ import annotations

import sys

from omegaconf import DictConfig, OmegaConf

from wavegan.cli.app import entry_point, exit_status
from wavegan.errors import WaveganError, error_detail, is_disk_full
from wavegan.secret_masking import mask_text, mask_url
from wavegan.study.compose import (
    SWEEP_APP,
    prepare_command_line,
    study_from_config,
    training_overrides,
    which_study,
)

USAGE = "\n\n".join(__doc__.split("\n\n")[:2])
_show: list[bool] = []  # `--cfg job` was asked for (the command prints the checked study itself)


def _prepare(argv: list[str]) -> list[str]:
    """`--cfg job` with a study: check the study and print it and a trial's config (not Hydra's print)."""
    _show.clear()
    for i, arg in enumerate(argv[:-1]):
        if arg in ("--cfg", "-c") and argv[i + 1] == "job" and any(a.startswith("sweep=") for a in argv):
            _show.append(True)
            argv = argv[:i] + argv[i + 2 :]
            break
    return prepare_command_line(argv, SWEEP_APP, USAGE)


@entry_point(config_name=SWEEP_APP, prepare=_prepare)
def _sweep(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from wavegan.study.plan import plan_study
    from wavegan.study.workers import run_sweep, setup_logging

    setup_logging()
    spec = study_from_config(cfg, HydraConfig.get())
    if spec is None:
        raise which_study()
    try:
        if _show:
            plan = plan_study(spec, training_overrides())
            print(OmegaConf.to_yaml(OmegaConf.create(spec.summary() | {"n_trials": plan.n_trials})))
            print("# training config of a trial before its searched values and seed:")
            print(OmegaConf.to_yaml(plan.variants[0]))
            return
        run_sweep(spec, training_overrides())
    except WaveganError as exc:
        raise WaveganError(mask_text(str(exc), spec.storage)) from None
    except Exception as exc:
        if not is_disk_full(exc):  # a trial's own full disk is a WaveganError naming what it was writing
            raise
        # SQLite's "database or disk is full": the failed write is rolled back, so every trial recorded
        # before it stays in the study, and the same command resumes it.
        detail = mask_text(error_detail(exc), spec.storage)
        raise WaveganError(
            f"disk full while writing the study database {mask_url(spec.storage)} ({detail}); the trials "
            "recorded before it are kept. Fix: free space on its disk (or set sweep.storage to a database "
            "with room), then run the same command again to resume the study."
        ) from None
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume the study", file=sys.stderr)
        sys.exit(130)


def main(argv: list[str] | None = None) -> int:
    """The command; returns its exit status (2: a user error, printed once on stderr)."""
    return exit_status(_sweep, argv)
