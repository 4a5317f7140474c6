"""`wavegan report` (also `python -m wavegan.report`): the report of an Optuna study, as files and in
the study's MLflow run.

    wavegan report sweep=optimizer_stability               # storage/name/folder from the study file
    wavegan report sweep=loss_comparison sweep.storage=postgresql://u:pw@db/optuna
    wavegan report --storage sqlite:///sweeps/results/x/optuna.db --study x [--out D] [--no-mlflow]

What the report holds: wavegan/study/report.py.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import optuna

from wavegan.errors import ConfigError, WaveganError
from wavegan.secret_masking import mask_text, mask_url
from wavegan.study.report import build_report, log_report, parent_run_for

USAGE = __doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    argv = sys.argv[1:] if argv is None else list(argv)
    storage = None
    try:
        sweep, sweep_overrides, study_name, out, use_mlflow, show = None, {}, None, None, True, False
        items = iter(argv)
        for item in items:
            if item in ("-h", "--help"):
                print(USAGE)
                return 0
            if item in ("--cfg", "-c"):
                next(items, None)
                show = True
            elif item == "--storage":
                storage = next(items, None)
            elif item == "--study":
                study_name = next(items, None)
            elif item == "--out":
                out = next(items, None)
            elif item == "--no-mlflow":
                use_mlflow = False
            elif item.startswith("sweep="):
                sweep = item.partition("=")[2]
            elif item.startswith("sweep.") and "=" in item:
                key, _, value = item.partition("=")
                sweep_overrides[key[len("sweep.") :]] = value
            else:
                raise ConfigError(f"unexpected argument {item!r}. Usage:\n{USAGE}")
        if show and not sweep:
            print(USAGE)
            return 0
        if sweep:
            from wavegan.study.spec import load_spec

            spec = load_spec(sweep, sweep_overrides)
            storage, study_name = storage or spec.storage, study_name or spec.study_name
            out = out or spec.results_dir
        if not storage or not study_name:
            raise ConfigError(
                f"which study? Pass sweep=<name>, or --storage URL --study NAME. Usage:\n{USAGE}"
            )
        if show:
            print(f"storage: {mask_url(storage)}\nstudy: {study_name}\nout: {out}")
            return 0
        from wavegan.study.spec import RESULTS_ROOT

        try:
            study = optuna.load_study(study_name=study_name, storage=storage)
        except KeyError:
            raise ConfigError(
                f"no study {study_name!r} in {mask_url(storage)}. Known: "
                f"{', '.join(optuna.get_all_study_names(storage)) or '(none)'}. Fix: run it first "
                "(python -m wavegan.sweep sweep=<name>) or pass the right --study / sweep.study_name."
            ) from None
        except Exception as exc:
            raise WaveganError(
                f"cannot open {mask_url(storage)}: {exc.__class__.__name__}: {mask_text(str(exc), storage)}"
            ) from None
        report = build_report(study, Path(out or RESULTS_ROOT / study_name))
        print(report.text)
        if use_mlflow:
            client, run_id = parent_run_for(study)
            if run_id:
                log_report(report, client, run_id)
                print(f"logged to MLflow run {run_id}")
            else:
                print("(no MLflow parent run for this study in this tracking store: not logged)")
        print(f"report: {report.out_dir}")
        return 0
    except WaveganError as exc:
        message = mask_text(str(exc), storage)
        print(f"error: {message}", file=sys.stderr)
        return 2
