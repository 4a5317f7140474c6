"""What the typed schema (wavegan/config/schema.py) cannot say: value ranges and checks across keys.

Types and unknown keys are Hydra's job at composition time. Everything here runs before any data is
ingested or any step is trained, and each failure is one ConfigError naming the key and the fix.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from wavegan.errors import ConfigError
from wavegan.models.normalization import D_NORMS, G_NORMS
from wavegan.training.penalties import Penalty

log = logging.getLogger(__name__)

# Which representation each model trains on (a model config brings it; an override must agree).
MODEL_REPRESENTATIONS = {
    "wavegan": ("waveform",),
    "dcgan": ("spectrogram", "specgan"),
    "audiosynth": ("spectrogram", "specgan"),
}

# Largest sizes a CPU or one GPU can take: beyond these a typo (batch 10^9, steps 10^12) would only end
# in an out-of-memory kill or a run that never finishes, so it is refused at once.
MAX_BATCH = 1 << 16
MAX_STEPS = 10**9
MAX_DIM = 1 << 12
MAX_MODEL_DIM = 1 << 10  # model.dim: 16x the paper's 64 (G and D grow with its square: ~5 G parameters)
MAX_CLIPS = 10**7  # clips in a data store (NSynth has 305,979); training reads them all into memory
MAX_SLICE = 1 << 20  # samples per clip (65 s at 16 kHz; WaveGAN's longest is 65536)


def _range(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Callable:
    def inside(value: float) -> bool:
        return (value > low if low_open else value >= low) and (value < high if high_open else value <= high)

    right = ")" if high_open or high == math.inf else "]"
    inside.text = f"in {'(' if low_open else '['}{low:g}, {'inf' if high == math.inf else f'{high:g}'}{right}"
    return inside


POSITIVE = _range(0, math.inf, low_open=True)
NON_NEGATIVE = _range(0, math.inf)
FRACTION = _range(0, 1, high_open=True)  # [0, 1)


def _off_or_range(low: float, high: float) -> Callable:
    """0 (off) or a value in [low, high]."""
    inside = _range(low, high)

    def rule(value: float) -> bool:
        return value == 0 or inside(value)

    rule.text = f"0 (off) or {inside.text}"
    return rule


# key: (rule, fix). Optional keys (null allowed) are skipped when null.
RANGES: dict[str, tuple[Callable, str]] = {
    "optimizer.lr": (POSITIVE, "e.g. optimizer.lr=1e-4"),
    "optimizer.g_lr": (POSITIVE, "e.g. optimizer.g_lr=1e-4, or null to use optimizer.lr"),
    "optimizer.d_lr": (POSITIVE, "e.g. optimizer.d_lr=4e-4, or null to use optimizer.lr"),
    "optimizer.lr_decay_start": (FRACTION, "e.g. optimizer.lr_decay_start=0.5, or null for a constant rate"),
    "optimizer.beta1": (FRACTION, "e.g. optimizer.beta1=0.5"),
    "optimizer.beta2": (FRACTION, "e.g. optimizer.beta2=0.9"),
    "trainer.max_steps": (_range(1, MAX_STEPS), "e.g. trainer.max_steps=300"),
    "trainer.batch_size": (_range(1, MAX_BATCH), "e.g. trainer.batch_size=16"),
    "trainer.n_critic": (_range(1, 100), "e.g. trainer.n_critic=5"),
    "trainer.log_every": (_range(1, MAX_STEPS), "e.g. trainer.log_every=10"),
    "trainer.preview_every": (_range(1, MAX_STEPS), "e.g. trainer.preview_every=100"),
    "trainer.checkpoint_every": (_range(1, MAX_STEPS), "e.g. trainer.checkpoint_every=100"),
    "trainer.num_previews": (_range(1, 64), "e.g. trainer.num_previews=8"),
    "trainer.intra_op_threads": (_range(0, 1024), "e.g. trainer.intra_op_threads=0 (all cores)"),
    "trainer.inter_op_threads": (_range(0, 1024), "e.g. trainer.inter_op_threads=1 (one op at a time)"),
    "trainer.loss_bound": (POSITIVE, "e.g. trainer.loss_bound=1e6"),
    "trainer.g_ema": (FRACTION, "e.g. trainer.g_ema=0.999, or 0 for off"),
    "trainer.instance_noise": (NON_NEGATIVE, "e.g. trainer.instance_noise=0.1, or 0 for off"),
    "trainer.instance_noise_steps": (_range(1, MAX_STEPS), "e.g. trainer.instance_noise_steps=1000"),
    "loss.label_smoothing": (FRACTION, "e.g. loss.label_smoothing=0.1"),
    "penalty.weight": (NON_NEGATIVE, "e.g. penalty.weight=10"),
    "penalty.every": (_range(1, 1000), "e.g. penalty.every=16, or 1 for every D step"),
    "penalty.dragan_scale": (POSITIVE, "e.g. penalty.dragan_scale=0.5"),
}
# `wavegan data` and `wavegan evaluate` check these too (check_data, check_eval): every command that reads
# the key refuses a value that would end in an out-of-memory kill or a build that never finishes.
DATA_RANGES: dict[str, tuple[Callable, str]] = {
    "data.sample_rate": (_range(1000, 768000), "e.g. data.sample_rate=16000"),
    "data.slice_len": (_range(1, MAX_SLICE), "e.g. data.slice_len=16384"),
    "data.num_samples": (_range(1, MAX_CLIPS), "e.g. data.num_samples=2048, or null for all the source has"),
    "data.valid_fraction": (FRACTION, "e.g. data.valid_fraction=0.1"),
    "data.test_fraction": (FRACTION, "e.g. data.test_fraction=0.1"),
    "data.min_duration_s": (_range(0, 3600), "e.g. data.min_duration_s=0.05"),
    "data.silence_peak": (_range(0, 1), "e.g. data.silence_peak=1e-4"),
    "data.slice_overlap": (FRACTION, "e.g. data.slice_overlap=0.5, or 0 for none"),
    "data.max_slices_per_file": (_range(1, MAX_CLIPS), "e.g. data.max_slices_per_file=8, or null for all"),
    "data.peak_level": (_range(0, 1, low_open=True), "e.g. data.peak_level=0.95"),
    "data.offset": (_range(0, MAX_CLIPS), "e.g. data.offset=0"),
}
EVAL_RANGES: dict[str, tuple[Callable, str]] = {
    "eval.every": (_range(0, MAX_STEPS), "e.g. eval.every=25, or 0 for the end only"),
    "eval.num_samples": (_range(2, 1 << 24), "e.g. eval.num_samples=256 (capped at the held-out clips)"),
    "eval.is_splits": (_range(1, 1000), "e.g. eval.is_splits=10"),
    "eval.bootstrap": (_range(0, 100_000), "e.g. eval.bootstrap=200"),
    "eval.ndb_k": (_range(2, 10_000), "e.g. eval.ndb_k=50"),
    "eval.features.n_fft": (_range(16, 1 << 16), "e.g. eval.features.n_fft=512"),
    "eval.features.hop_length": (_range(1, 1 << 16), "e.g. eval.features.hop_length=256"),
    "eval.features.n_mels": (_range(1, 1024), "e.g. eval.features.n_mels=64"),
    "eval.features.time_segments": (_range(1, 4096), "e.g. eval.features.time_segments=16"),
    "eval.classifier.min_accuracy": (_range(0, 1), "e.g. eval.classifier.min_accuracy=0.8"),
    "eval.classifier.small_data_max_clips": (
        NON_NEGATIVE,
        "e.g. eval.classifier.small_data_max_clips=600, or 0 for the CNN on every data set",
    ),
    "eval.classifier.cv_folds": (_off_or_range(2, 100), "e.g. eval.classifier.cv_folds=5, or 0 for off"),
    "eval.classifier.summary.patch_frames": (_range(1, 4096), "e.g. eval.classifier.summary.patch_frames=32"),
    "eval.classifier.summary.patch_pool": (_range(1, 64), "e.g. eval.classifier.summary.patch_pool=2"),
    "eval.classifier.summary.n_mfcc": (_range(1, 128), "e.g. eval.classifier.summary.n_mfcc=20"),
    "eval.classifier.cnn.epochs": (_range(1, 10_000), "e.g. eval.classifier.cnn.epochs=20"),
    "eval.classifier.cnn.patience": (_range(0, 10_000), "e.g. eval.classifier.cnn.patience=3"),
    "eval.classifier.cnn.batch_size": (_range(1, MAX_BATCH), "e.g. eval.classifier.cnn.batch_size=64"),
    "eval.classifier.cnn.learning_rate": (POSITIVE, "e.g. eval.classifier.cnn.learning_rate=5e-3"),
    "eval.classifier.cnn.weight_decay": (NON_NEGATIVE, "e.g. eval.classifier.cnn.weight_decay=0"),
    "eval.classifier.cnn.embedding_dim": (_range(1, MAX_DIM), "e.g. eval.classifier.cnn.embedding_dim=128"),
}
MODEL_RANGES: dict[str, tuple[Callable, str]] = {
    "dim": (_range(1, MAX_MODEL_DIM), "e.g. model.dim=8 (CPU) or 64 (paper)"),
    "latent_dim": (_range(1, MAX_DIM), "e.g. model.latent_dim=100"),
    "kernel_len": (_range(1, 4096), "e.g. model.kernel_len=25"),
    "kernel_size": (_range(1, 64), "e.g. model.kernel_size=5"),
    "phase_shuffle": (_range(0, 4096), "e.g. model.phase_shuffle=2, or 0 for off"),
    "post_proc_filt_len": (_range(0, 1 << 16), "e.g. model.post_proc_filt_len=512, or 0 for off"),
    "leaky_relu_slope": (FRACTION, "e.g. model.leaky_relu_slope=0.2"),
}


def _get(cfg: Any, dotted: str) -> Any:
    node = cfg
    for part in dotted.split("."):
        if node is None or part not in node:
            return None
        node = node[part]
    return node


def _check_range(key: str, value: Any, rule: Callable, fix: str) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not rule(value)
    ):
        raise ConfigError(f"{key}={value} must be a finite number {rule.text}. Fix: {fix}.")


def check_model(model: Any) -> None:
    """Ranges and choices of a `model` config (also used when models are built directly)."""
    for key, (rule, fix) in MODEL_RANGES.items():
        if key in model:
            _check_range(f"model.{key}", model[key], rule, fix)
    if str(model.g_norm) not in G_NORMS:
        raise ConfigError(
            f"model.g_norm={model.g_norm} is not one of {', '.join(G_NORMS)}. Fix: model.g_norm=none."
        )
    if str(model.d_norm) not in D_NORMS:
        raise ConfigError(
            f"model.d_norm={model.d_norm} is not one of {', '.join(D_NORMS)}. Fix: model.d_norm=none."
        )


def check_value(key: str, value: Any) -> None:
    """A ConfigError when `value` is outside the range of the dotted `key` (a key without one passes)."""
    for ranges in (RANGES, DATA_RANGES, EVAL_RANGES):
        if key in ranges:
            _check_range(key, value, *ranges[key])
    model_key = key.removeprefix("model.")
    if model_key != key and model_key in MODEL_RANGES:
        _check_range(key, value, *MODEL_RANGES[model_key])


def check_data(data: Any) -> None:
    """Ranges of a `data` config: what `wavegan data` and every command that builds a store checks."""
    for key, (rule, fix) in DATA_RANGES.items():
        _check_range(key, _get({"data": data}, key), rule, fix)
    held_out = float(data.get("valid_fraction", 0)) + float(data.get("test_fraction", 0))
    if held_out >= 1:
        raise ConfigError(
            f"data.valid_fraction + data.test_fraction = {held_out:g} leaves no training clips. Fix: e.g. "
            "data.valid_fraction=0.1 data.test_fraction=0.1."
        )


def check_eval(eval_cfg: Any) -> None:
    """Ranges of an `eval` config: what `wavegan evaluate` and training with evaluation check."""
    for key, (rule, fix) in EVAL_RANGES.items():
        _check_range(key, _get({"eval": eval_cfg}, key), rule, fix)


def validate_training_config(cfg: DictConfig) -> None:
    for key, (rule, fix) in RANGES.items():
        _check_range(key, _get(cfg, key), rule, fix)
    check_data(cfg.data)
    check_eval(cfg.eval)
    check_model(cfg.model)
    allowed = MODEL_REPRESENTATIONS.get(cfg.model.name)
    if allowed and cfg.preprocessing.name not in allowed:
        raise ConfigError(
            f"model={cfg.model.name} trains on {' or '.join(allowed)}, "
            f"not preprocessing={cfg.preprocessing.name}. "
            f"Fix: drop the preprocessing override or pass preprocessing={allowed[0]}."
        )
    penalty = str(cfg.penalty.name)
    if penalty not in Penalty.NAMES:
        raise ConfigError(
            f"penalty={penalty} is not one of {', '.join(Penalty.NAMES)}. Fix: e.g. penalty=r1."
        )
    if penalty != "none" and str(cfg.model.d_norm) == "batch":
        raise ConfigError(
            f"model.d_norm=batch with penalty={penalty}: batch norm mixes the examples of a batch, so D's "
            "gradient for one example depends on the others and a per-example gradient penalty is no "
            "longer what it claims. Fix: model.d_norm=layer (the replacement Gulrajani et al. 2017 use) or "
            "penalty=none."
        )
    if int(cfg.penalty.every) > 1 and penalty not in ("r1", "r2"):
        raise ConfigError(
            f"penalty.every={cfg.penalty.every} (lazy regularisation) is defined for the zero-centred "
            f"penalties r1 and r2, not penalty={penalty}. Fix: penalty.every=1, or penalty=r1."
        )
    if float(cfg.loss.label_smoothing) != 0.0 and cfg.loss.name != "bce":
        raise ConfigError(
            f"loss.label_smoothing only applies to loss=bce; it is {cfg.loss.label_smoothing} with "
            f"loss={cfg.loss.name}. Fix: drop loss.label_smoothing or use loss=bce."
        )
    if cfg.loss.name == "wasserstein" and penalty == "none" and str(cfg.model.d_norm) != "spectral":
        # A valid question for a stability study (it is how an unconstrained critic diverges), so a warning.
        log.warning(
            "loss=wasserstein with penalty=none and model.d_norm=%s: the critic is unconstrained and the "
            "Wasserstein estimate can grow without bound (use loss=wgan_gp, a penalty, or "
            "model.d_norm=spectral for a Lipschitz critic)",
            cfg.model.d_norm,
        )
