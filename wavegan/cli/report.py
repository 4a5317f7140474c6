"""`wavegan report` (also `python -m wavegan.report`): the report of an Optuna study, as files and in
the study's MLflow run.

    wavegan report sweep=optimizer_stability               # storage/name/folder from the study file
    wavegan report sweep=loss_comparison sweep.storage=postgresql://u:pw@db/optuna
    wavegan report report.storage=sqlite:///sweeps/results/x/optuna.db report.study=x report.out=D
    wavegan report sweep=loss_comparison report.mlflow=false   # files only, nothing logged to MLflow

A Hydra app over the same `sweep` group as `wavegan sweep` (`--help`, `--cfg job`, tab completion);
its own keys are `report.storage`, `report.study`, `report.out` and `report.mlflow`. What the report
holds: wavegan/study/report.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
from omegaconf import DictConfig

from wavegan.cli.app import entry_point, exit_status
from wavegan.errors import ConfigError, WaveganError
from wavegan.secret_masking import mask_text, mask_url
from wavegan.study.compose import REPORT_APP, prepare_command_line, study_from_config
from wavegan.study.report import build_report, log_report, parent_run_for
from wavegan.study.storage import rdb_url

USAGE = "\n\n".join(__doc__.split("\n\n")[:2])


def _prepare(argv: list[str]) -> list[str]:
    return prepare_command_line(argv, REPORT_APP, USAGE)


@entry_point(config_name=REPORT_APP, config_path=None, prepare=_prepare)
def _report(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from wavegan.study.spec import RESULTS_ROOT

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    options = cfg.report
    storage, study_name, out = options.storage, options.study, options.out
    spec = study_from_config(cfg, HydraConfig.get())
    if spec is not None:
        storage, study_name = storage or spec.storage, study_name or spec.study_name
        out = out or spec.results_dir
    if not storage or not study_name:
        raise ConfigError(
            "which study? Pass sweep=<name>, or report.storage=<URL> report.study=<name> (see --help)."
        )
    url = rdb_url(storage)  # postgresql:// through psycopg 3; a missing driver is its own message
    try:
        study = optuna.load_study(study_name=study_name, storage=url)
    except KeyError:
        raise ConfigError(
            f"no study {study_name!r} in {mask_url(storage)}. Known: "
            f"{', '.join(optuna.get_all_study_names(url)) or '(none)'}. Fix: run it first "
            "(wavegan sweep sweep=<name>) or pass the right report.study / sweep.study_name."
        ) from None
    except Exception as exc:
        raise WaveganError(
            f"cannot open {mask_url(storage)}: {exc.__class__.__name__}: {mask_text(str(exc), storage)}"
        ) from None
    report = build_report(study, Path(out or RESULTS_ROOT / study_name))
    print(report.text)
    if options.mlflow:
        client, run_id = parent_run_for(study)
        if run_id:
            log_report(report, client, run_id)
            print(f"logged to MLflow run {run_id}")
        else:
            print("(no MLflow parent run for this study in this tracking store: not logged)")
    print(f"report: {report.out_dir}")


def main(argv: list[str] | None = None) -> int:
    """The command; returns its exit status (2: a user error, printed once on stderr)."""
    return exit_status(_report, argv)
