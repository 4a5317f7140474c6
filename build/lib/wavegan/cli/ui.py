"""`wavegan ui [ui.port=5000] [tracking.experiment=<name>]` (also `python -m wavegan.ui`): the MLflow UI on
the project's tracking store (MLFLOW_TRACKING_URI, or sqlite:///mlflow.db with artifacts in mlruns/).

MLflow 3 opens an experiment on its GenAI "Overview" of traces, which is empty for training runs; the
address printed here is the experiment's runs table (`#/experiments/<id>/runs`), where runs are compared.
"""

from __future__ import annotations

import logging
import subprocess
import sys

from omegaconf import DictConfig

from wavegan import tracking
from wavegan.cli.app import entry_point
from wavegan.errors import ConfigError
from wavegan.secret_masking import mask_url

log = logging.getLogger(__name__)


def runs_table_url(host: str, port: int, experiment_id: str | None) -> str:
    base = f"http://{host}:{port}/"
    return f"{base}#/experiments/{experiment_id}/runs" if experiment_id else base


def ui_command(cfg: DictConfig, uri: str) -> list[str]:
    command = [sys.executable, "-m", "mlflow", "ui", "--host", str(cfg.ui.host), "--port", str(cfg.ui.port)]
    if uri.startswith(("http://", "https://")):
        raise ConfigError(
            f"MLFLOW_TRACKING_URI is a tracking server ({mask_url(uri)}): open it in a browser instead of "
            "starting a UI here."
        )
    command += ["--backend-store-uri", uri]
    if uri == tracking.DEFAULT_TRACKING_URI:
        command += ["--default-artifact-root", tracking.DEFAULT_ARTIFACT_DIR]
    return command


@entry_point(config_name="ui")
def _ui(cfg: DictConfig) -> int:
    uri = tracking.configure()
    experiment = tracking.find_experiment_id(str(cfg.tracking.experiment))
    url = runs_table_url(str(cfg.ui.host), int(cfg.ui.port), experiment)
    print(f"MLflow UI on {mask_url(uri)}: open {url}", flush=True)
    if experiment is None:
        print(f"(no experiment '{cfg.tracking.experiment}' yet: train first, or pass tracking.experiment=...)")
    if cfg.ui.dry_run:
        return 0
    try:
        return subprocess.run(ui_command(cfg, uri), check=False).returncode
    except KeyboardInterrupt:
        return 0


def main() -> int:
    return _ui()
