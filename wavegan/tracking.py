"""MLflow for training runs: where runs go, what a run records, and the playable audio previews.

MLflow 3 refuses its file store for run metadata, so metadata goes to `sqlite:///mlflow.db` and
artifacts to `mlruns/` (both in the working directory); `MLFLOW_TRACKING_URI` overrides both: with a
tracking server (http://host:5000) nothing is written locally, artifacts are uploaded through the server
(its --artifacts-destination), and a server that does not answer is one clear message (`check_server`).
A server lost mid-run: MLflow retries each call (about 4 minutes by default), so training waits and goes
on when the server is back; past that, the run stops with one message (`lost_server_error`), its
checkpoints kept, and `trainer.resume=true` continues the same MLflow run. MLflow has no audio logger:
previews are WAV files plus a self-contained HTML page (data: URIs) whose <audio> tags play inside the
MLflow UI's artifact iframe.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import html
import io
import logging
import os
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import mlflow
import numpy as np
import soundfile as sf
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from wavegan.errors import WaveganError, error_detail, is_disk_full
from wavegan.secret_masking import mask_text, mask_url, masked_config

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_ARTIFACT_DIR = "mlruns"
PARAM_VALUE_LIMIT = 6000  # MLflow's limit on one param value
# Config keys that say where things go, not what was trained: not params (they would split the
# compare view into columns that differ only by path).
NOT_PARAMS = ("data.store_dir", "trainer.checkpoint_dir", "trainer.progress", "data.token", "sweep.storage")
# The Keras optimizer's arguments repeat optimizer.lr/beta1/beta2/epsilon under Keras's names.
NOT_PARAM_PREFIXES = ("optimizer.keras.",)


# MLflow's background queues (images, metric batches) log an ERROR line for each call that failed to reach
# the server. When the server is lost, the run reports that once (lost_server_error) and its resume logs what
# the queues dropped (every missing (metric, step) pair, the previews after the checkpoint), so those lines
# would only repeat the one message. Other failures of the queues still show.
ASYNC_QUEUE_LOGGERS = (
    "mlflow.utils.async_logging.async_logging_queue",
    "mlflow.utils.async_logging.async_artifacts_logging_queue",
)
CONNECTION_FAILURES = ("Failed to establish a new connection", "Max retries exceeded", "Connection refused")


class _NoConnectionFailures(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not any(failure in text for failure in CONNECTION_FAILURES)


def configure() -> str:
    """Point MLflow at the project's stores; returns the tracking URI in use."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    mlflow.set_tracking_uri(uri)
    for name in ASYNC_QUEUE_LOGGERS:
        queue_log = logging.getLogger(name)
        if not any(isinstance(f, _NoConnectionFailures) for f in queue_log.filters):
            queue_log.addFilter(_NoConnectionFailures())
    return uri


def find_experiment_id(name: str) -> str | None:
    """The experiment's id, or None when there is none of that name (nothing is created)."""
    existing = mlflow.get_experiment_by_name(name)
    return existing.experiment_id if existing is not None else None


def check_server(uri: str, timeout: float = 10) -> None:
    """An http(s) tracking URI must answer: one clear message now instead of MLflow's retries (minutes)
    ending in a traceback. Any HTTP answer counts (a proxy may guard /health); only no answer fails."""
    if not uri.startswith(("http://", "https://")):
        return
    parts = urllib.parse.urlsplit(uri)
    bare = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()  # credentials go by header
    try:
        with urllib.request.urlopen(f"{bare.rstrip('/')}/health", timeout=timeout):
            return
    except urllib.error.HTTPError:
        return
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WaveganError(
            f"cannot reach the MLflow tracking server at {mask_url(uri)}: {mask_text(str(reason), uri)}. "
            "Fix: start it (mlflow server --host 0.0.0.0 --port 5000 --backend-store-uri ... "
            "--artifacts-destination ...) or correct MLFLOW_TRACKING_URI (unset, runs go to "
            f"{DEFAULT_TRACKING_URI})."
        ) from None


def server_unreachable(uri: str | None = None, timeout: float = 3) -> bool:
    """True when the tracking URI is an http(s) server that does not answer now (a local store: False)."""
    try:
        check_server(uri or mlflow.get_tracking_uri(), timeout)
        return False
    except WaveganError:
        return True


@contextlib.contextmanager
def without_retries() -> Iterator[None]:
    """MLflow's HTTP calls in this block fail at once instead of retrying for minutes (MLflow keys its
    HTTP session by these settings, so the change applies here and is undone after)."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="5")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def lost_server_error(uri: str, step: int, checkpoint: str) -> WaveganError:
    """The message of a run whose tracking server stopped answering for longer than MLflow retries."""
    return WaveganError(
        f"lost the MLflow tracking server at {mask_url(uri)} at step {step} (it did not answer for longer "
        f"than MLflow retries: MLFLOW_HTTP_REQUEST_MAX_RETRIES). {checkpoint} Fix: bring the server back, "
        "then continue with trainer.resume=true: the same MLflow run continues and everything it logged "
        "is kept."
    )


@contextlib.contextmanager
def _store_lock(uri: str):
    """Processes opening one SQLite tracking file at once (parallel multirun jobs) take turns: MLflow
    creates and migrates its tables on first use, and two processes doing that at once fail."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    db = Path(uri[len("sqlite:///") :]).expanduser()
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def experiment_id(name: str) -> str:
    """The experiment's id, created with artifacts under mlruns/ unless the URI says otherwise."""
    uri = mlflow.get_tracking_uri()
    check_server(uri)
    try:
        with _store_lock(uri):
            existing = mlflow.get_experiment_by_name(name)
            if existing is not None:
                return existing.experiment_id
            location = None
            if not os.environ.get("MLFLOW_TRACKING_URI"):
                location = Path(DEFAULT_ARTIFACT_DIR).resolve().as_uri()
            try:
                return mlflow.create_experiment(name, artifact_location=location)
            except MlflowException as exc:  # another process (machine) created it a moment ago
                created = mlflow.get_experiment_by_name(name)
                if exc.error_code != "RESOURCE_ALREADY_EXISTS" or created is None:
                    raise
                return created.experiment_id
    except Exception as exc:
        raise WaveganError(
            f"cannot reach the MLflow tracking store at {mask_url(uri)}: "
            f"{exc.__class__.__name__}: {mask_text(str(exc)[:200], uri)}. "
            "Fix: check MLFLOW_TRACKING_URI (or unset it to use "
            f"{DEFAULT_TRACKING_URI})."
        ) from None


def flatten(cfg: DictConfig | Mapping, prefix: str = "") -> dict[str, str]:
    """The resolved config as MLflow params `group.key` -> value, so runs line up column by column;
    secrets masked (wavegan/secret_masking.py)."""
    container = masked_config(cfg) if isinstance(cfg, DictConfig) else cfg
    flat: dict[str, str] = {}
    for key, value in container.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif name not in NOT_PARAMS and not name.startswith(NOT_PARAM_PREFIXES):
            flat[name] = str(value)[:PARAM_VALUE_LIMIT]
    return flat


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


@contextlib.contextmanager
def disk_full_reported(what: str) -> Iterator[None]:
    """Artifact writes in this block that fail for a full disk end in one WaveganError naming the artifact
    store and `what` was being written (the run's checkpoints are elsewhere and stay as they are)."""
    try:
        yield
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        where = mask_url(mlflow.get_artifact_uri()) if mlflow.active_run() else "the MLflow artifact store"
        raise WaveganError(
            f"disk full while writing {what} to {where} ({error_detail(exc)}). Fix: free "
            "space there (or set MLFLOW_TRACKING_URI to a store with room), then continue with "
            "trainer.resume=true."
        ) from None


def log_config(cfg: DictConfig) -> None:
    """The resolved config as the run's config.yaml artifact, with every secret masked."""
    mlflow.log_text(OmegaConf.to_yaml(OmegaConf.create(masked_config(cfg))), "config.yaml")


def _wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(
        buffer, np.clip(audio, -1.0, 1.0).astype(np.float32), sample_rate, format="WAV", subtype="PCM_16"
    )
    return buffer.getvalue()


def log_audio_set(waveforms: np.ndarray, sample_rate: int, artifact_dir: str, figure, title: str) -> None:
    """WAV files (MLflow plays them natively), the spectrogram grid as a PNG, and `index.html`, a
    self-contained page that shows the grid and plays every clip in the MLflow UI.

    Self-contained because MLflow (3.x) renders an HTML artifact inside an iframe built from the page's
    text: relative links such as src="sample_00.wav" resolve to nothing there. The page therefore embeds
    the image and the audio as data: URIs (base64; ~45 KB per second of 16 kHz 16-bit audio).
    """
    from wavegan.plots import save_figure

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        image = ""
        if figure is not None:
            png = save_figure(figure, folder / "spectrograms.png")
            src = _data_uri(png.read_bytes(), "image/png")
            image = f'<img alt="spectrograms" src="{src}" style="max-width:100%">'
        rows = []
        for i, audio in enumerate(waveforms):
            name = f"sample_{i:02d}.wav"
            wav = _wav_bytes(audio, sample_rate)
            (folder / name).write_bytes(wav)
            rows.append(
                f'<tr><td>{name}</td><td><audio controls preload="metadata" '
                f'src="{_data_uri(wav, "audio/wav")}"></audio></td></tr>'
            )
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h3>{html.escape(title)}</h3>{image}<table>{''.join(rows)}</table></body></html>"
        )
        (folder / "index.html").write_text(page)
        mlflow.log_artifacts(str(folder), artifact_dir)


def _data_uri(payload: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"
