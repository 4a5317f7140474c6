"""`python -m wavegan.evaluate samples=<folder | MLflow run id> [data=... as for training]`.

Scores generated audio against a data set with the metrics of wavegan/metrics/ and prints a table of
each figure next to its held-out-real reference; the last line is one JSON object with the `eval/...`
and `eval/reference/...` figures (unavailable metrics are left out; the table says why).

    python -m wavegan.evaluate samples=path/to/generated_wavs            # any audio files, recursively
    python -m wavegan.evaluate samples=3f2a...c1                        # an MLflow run of wavegan.train
    python -m wavegan.evaluate samples=3f2a...c1 eval.num_samples=1024  # more generated clips

The reference data set is `data=...` exactly as for training. For a run id, the run's own logged
config (its data, model and preprocessing) is used unless `data` is overridden on the command line;
the run's `model/generator.keras` generates eval.num_samples clips from the latents the run's own
evaluations used (wavegan.training.evaluation), which the run's representation turns back into waveforms
(Griffin-Lim for spectrograms). A folder's files
are decoded as `data=audio_dir` does (mono, resampled to data.sample_rate) and cropped or padded to
data.slice_len; every file is scored, so give it about eval.num_samples files for figures comparable
with the reference. `samples=` is short for `eval.samples=`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from wavegan.cli.app import entry_point
from wavegan.errors import ConfigError, DataError, WaveganError

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = ("wav", "flac", "ogg", "oga", "aiff", "aif", "mp3")
_RUN_ID = re.compile(r"^[0-9a-fA-F]{32}$")
_GENERATE_BATCH = 64


@dataclass
class Samples:
    waveforms: np.ndarray
    description: str
    data_cfg: DictConfig
    representation: object = None  # a run's representation: its reference is the round trip through it


def load_folder(folder: Path, sample_rate: int, slice_len: int) -> tuple[np.ndarray, int]:
    """Every audio file under `folder` as [N, slice_len] float32, and how many files were skipped."""
    from wavegan.data.schema import fit_length
    from wavegan.data.sources.audio_dir import decode, list_audio_files

    files = list_audio_files(folder, list(AUDIO_EXTENSIONS))
    clips, skipped = [], 0
    for path in files:
        try:
            audio = decode(path, sample_rate, max_seconds=slice_len / sample_rate)  # a clip's worth at most
            clips.append(fit_length(audio, slice_len))
        except ValueError as exc:
            log.warning("skipped %s: %s", path, exc)
            skipped += 1
    if len(clips) < 2:
        raise DataError(
            f"samples={folder} has {len(clips)} readable audio file(s) ({', '.join(AUDIO_EXTENSIONS)}; "
            f"{skipped} unreadable); evaluation needs at least 2. Fix: point samples= at a folder of "
            "generated audio files."
        )
    return np.stack(clips).astype(np.float32), skipped


def _mlflow_run(run_id: str):
    """The MLflow run, or a WaveganError that says whether the id or the store is the problem."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from wavegan import tracking

    # A tracking server that does not answer would otherwise be retried for minutes.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    uri = tracking.configure()
    try:
        return mlflow.MlflowClient().get_run(run_id)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            raise DataError(
                f"samples={run_id} is neither a folder nor a run in the MLflow store at {uri}. Fix: pass a "
                "folder of audio files, or a run id from `mlflow ui` (set MLFLOW_TRACKING_URI if the run "
                "is in another store)."
            ) from None
        raise WaveganError(_unreachable(uri, exc)) from None
    except Exception as exc:  # connection errors come in many types
        raise WaveganError(_unreachable(uri, exc)) from None


def _unreachable(uri: str, exc: Exception) -> str:
    return (
        f"cannot reach the MLflow tracking store at {uri}: {exc.__class__.__name__}: "
        f"{str(exc).splitlines()[0][:200] if str(exc) else ''}. Fix: check MLFLOW_TRACKING_URI."
    )


def _download(run_id: str, artifact: str, folder: str) -> Path:
    import mlflow

    try:
        return Path(
            mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact, dst_path=folder)
        )
    except Exception:
        raise DataError(
            f"MLflow run {run_id} has no `{artifact}` artifact (the trainer logs it at the end of a "
            "completed run with tracking.log_model=true). Fix: evaluate a completed run, or a folder of "
            "audio files."
        ) from None


def generate_from_run(run_id: str, cfg: DictConfig, data_overridden: bool) -> Samples:
    """eval.num_samples clips from the run's generator, as waveforms of the run's data set."""
    run = _mlflow_run(run_id)
    with tempfile.TemporaryDirectory() as tmp:
        run_cfg = OmegaConf.load(_download(run_id, "config.yaml", tmp))
        model_path = _download(run_id, "model/generator.keras", tmp)
        import keras

        import wavegan.models  # noqa: F401  (registers the custom layers a saved model may use)

        generator = keras.models.load_model(model_path, compile=False)
    data_cfg = cfg.data
    if not data_overridden:
        data_cfg = run_cfg.data.copy()
        data_cfg.store_dir = cfg.data.store_dir  # where stores live here, not where the run's were
    from wavegan.data.pipeline import load_features
    from wavegan.data.store import open_store
    from wavegan.models import sample_latent
    from wavegan.training.evaluation import EVAL_SEED_OFFSET, generate_waveforms

    store = open_store(data_cfg, progress=False)
    _, representation = load_features(store, run_cfg.preprocessing)
    n = int(cfg.eval.num_samples)
    # The latents of the run's own evaluations: with the same eval.num_samples the figures are the run's.
    seed = int(run_cfg.get("seed", cfg.seed)) + EVAL_SEED_OFFSET
    z = sample_latent(n, int(generator.input_shape[-1]), seed=seed)
    waveforms = generate_waveforms(generator, representation, z, batch_size=_GENERATE_BATCH)
    name = run.info.run_name or run_id
    description = f"{n} clips generated by MLflow run {run_id} ({name})"
    return Samples(waveforms, description, data_cfg, representation)


def load_samples(cfg: DictConfig, data_overridden: bool) -> Samples:
    spec = cfg.eval.get("samples")
    if spec is None or not str(spec).strip():
        raise ConfigError(
            "nothing to evaluate. Fix: pass samples=<folder of audio files> or samples=<MLflow run id>."
        )
    spec = str(spec).strip()
    folder = Path(spec).expanduser()
    if folder.is_dir():
        waveforms, skipped = load_folder(folder, int(cfg.data.sample_rate), int(cfg.data.slice_len))
        note = f", {skipped} unreadable skipped" if skipped else ""
        return Samples(waveforms, f"{len(waveforms)} audio files from {folder}{note}", cfg.data)
    if folder.exists():
        raise DataError(
            f"samples={spec} is a file, not a folder. Fix: pass the folder that holds the audio files."
        )
    if not _RUN_ID.match(spec):  # MLflow run ids are 32 hex digits (uuid4)
        raise DataError(
            f"samples={spec}: no such folder (and not an MLflow run id). Fix: pass samples=<folder of audio "
            "files> or samples=<MLflow run id>."
        )
    return generate_from_run(spec, cfg, data_overridden)


def evaluate(cfg: DictConfig, data_overridden: bool = False) -> tuple[dict[str, float], Samples, object]:
    """(figures, samples, evaluator): the scores of `eval.samples` and the held-out reference."""
    from wavegan.config.checks import check_data, check_eval
    from wavegan.data.store import open_store
    from wavegan.metrics.evaluator import Evaluator

    check_data(cfg.data)
    check_eval(cfg.eval)
    samples = load_samples(cfg, data_overridden)
    check_data(samples.data_cfg)  # a run's own data config, when the samples come from a run
    store = open_store(samples.data_cfg, progress=False)
    slice_len = int(store.summary["slice_len"])
    if samples.waveforms.shape[-1] != slice_len:
        raise DataError(
            f"the samples have {samples.waveforms.shape[-1]} samples per clip but the reference data set has "
            f"{slice_len} (data.slice_len). Fix: evaluate against the data set the generator was trained on."
        )
    from wavegan.training.evaluation import reference_figures

    evaluator = Evaluator.for_store(store, cfg.eval)
    waveforms = samples.waveforms
    if len(waveforms) > evaluator.num_scored:  # generated and reference sets at the same N
        pick = np.sort(np.random.default_rng(0).permutation(len(waveforms))[: evaluator.num_scored])
        waveforms = waveforms[pick]
    figures = {
        **evaluator.score(waveforms),
        **reference_figures(evaluator, store, samples.representation),
    }
    return figures, samples, evaluator


def format_table(figures: dict[str, float], evaluator) -> str:
    from wavegan.metrics.evaluator import METRICS
    from wavegan.metrics.quality import lower_is_better

    lines = [f"{'metric':<22} {'generated':>12} {'reference':>12}  better"]
    for name in METRICS:
        key = f"eval/{name}"
        if key not in figures:
            lines.append(f"{name:<22} {'n/a':>12} {'n/a':>12}  ({evaluator.unavailable_reason})")
            continue
        ref = figures.get(f"eval/reference/{name}", float("nan"))
        direction = "vs ref" if name.startswith("nn_") else ("lower" if lower_is_better(key) else "higher")
        lines.append(f"{name:<22} {figures[key]:>12.4f} {ref:>12.4f}  {direction}")
    return "\n".join(lines)


def _json_value(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _data_overridden() -> bool:
    """Whether the command line changed `data` (then it, not a run's logged data, is the reference)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        overrides = HydraConfig.get().overrides.task
    except ValueError:
        return False
    return any(o.lstrip("+~").split("=", 1)[0].split(".", 1)[0] == "data" for o in overrides)


@entry_point()
def _evaluate(cfg: DictConfig) -> dict[str, float]:
    figures, samples, evaluator = evaluate(cfg, _data_overridden())
    summary = evaluator.summary
    print(f"evaluated {samples.description}")
    if evaluator.labels_available:
        print(
            f"classifier: {len(evaluator.class_names)} classes, held-out accuracy "
            f"{evaluator.classifier_accuracy:.3f} ({summary['accuracy_split']}); reference: "
            f"{int(figures['eval/reference/num_samples'])} held-out real clips ({summary['held_out']})"
        )
    else:
        print(f"unavailable: {', '.join(evaluator.unavailable)}: {evaluator.unavailable_reason}")
    print(format_table(figures, evaluator))
    print(json.dumps({k: _json_value(v) for k, v in figures.items()}, sort_keys=True))
    sys.stdout.flush()
    return figures


def _alias_samples(argv: list[str]) -> list[str]:
    """`samples=X` -> `eval.samples='X'` (quoted, so a run id or path is never parsed as a number)."""
    out = []
    for arg in argv:
        if arg.startswith("samples="):
            value = arg.split("=", 1)[1]
            quoted = value and "'" not in value and "\\" not in value and not value.startswith(("'", '"'))
            arg = f"eval.samples='{value}'" if quoted else f"eval.samples={value}"
        out.append(arg)
    return out


def main() -> None:
    sys.argv = _alias_samples(sys.argv)
    _evaluate()
