"""The Representation interface: what a GAN trains on, and the inverse back to waveforms.

Three representations, selected by the `preprocessing.name` config key:

* ``waveform``    -- raw audio, features [slice_len, 1] (WaveGAN).
* ``spectrogram`` -- log-magnitude STFT scaled to [-1, 1] per frequency bin by scikit-learn's
  MinMaxScaler (the project's seed notes), inverted with Griffin-Lim.
* ``specgan``     -- the same log-magnitude STFT, standardised per frequency bin, divided by
  ``clip_stds`` (3) and clipped to [-1, 1] (SpecGAN, Donahue et al. 2019), inverted with Griffin-Lim.

Spectrogram features are oriented **[time, frequency, 1]** like SpecGAN: axis 0 is STFT frames
(``n_frames``), axis 1 is frequency bins (low to high, Nyquist dropped by default). At the defaults
(16384 samples, n_fft 256, hop 128) that is 128 x 128 x 1.

This module deliberately does not import TensorFlow: it runs in data-preparation and evaluation
processes that should not pay for (or depend on) a TF import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.exceptions import NotFittedError

from wavegan.errors import ConfigError

# File names inside a save directory. Prefixed so they can share a folder with checkpoints.
_META_FILE = "preprocessing.json"
_STATE_FILE = "preprocessing_state.npz"
# Settings that may differ between a saved representation and the config that loads it.
_FREE_ON_LOAD = frozenset({"griffin_lim_iters"})


def as_dict(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    if cfg is None:
        return {}
    try:  # DictConfig -> plain dict with interpolations resolved
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return dict(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    return dict(cfg)


def at_least(params: Mapping[str, Any], key: str, minimum: float, fix: str, strict: bool = False) -> Any:
    """params[key], refused with a ConfigError naming `preprocessing.<key>` when below `minimum` (types and
    unknown keys are the schema's job: wavegan/config/schema.py)."""
    value = params[key]
    if value < minimum or (strict and value == minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ConfigError(f"preprocessing.{key}={value!r} is invalid: must be {bound}. {fix}")
    return value


def waveform_batch(waveforms: np.ndarray, slice_len: int) -> np.ndarray:
    """Accepts [N, slice_len] or [N, slice_len, 1]; returns float32 [N, slice_len]."""
    y = np.asarray(waveforms, dtype=np.float32)
    if y.ndim == 3 and y.shape[-1] == 1:
        y = y[..., 0]
    if y.ndim != 2 or y.shape[1] != slice_len:
        raise ValueError(
            f"expected waveforms of shape [N, {slice_len}] (or [N, {slice_len}, 1]), got {y.shape}"
        )
    return y



class Representation:
    """What a GAN sees: ``transform`` waveforms into features in [-1, 1], ``inverse`` back to audio.

    Lifecycle: build (``build_representation``) -> ``fit`` on the training split -> ``transform`` /
    ``inverse`` -> ``save``; later ``load`` restores the fitted state without the training data.
    """

    name: ClassVar[str] = ""
    #: Whether inverse(transform(x)) gives x back; if not, real clips are scored after that round trip
    #: (the ceiling a model on this representation can reach).
    is_identity: ClassVar[bool] = False

    def __init__(self, params: Mapping[str, Any], slice_len: int, sample_rate: int) -> None:
        self.params = dict(params)
        self.slice_len = slice_len
        self.sample_rate = sample_rate

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None, slice_len: int, sample_rate: int) -> Representation:
        from wavegan.config.schema import typed

        checked = typed("preprocessing", as_dict(cfg) or {"name": cls.name}, option=cls.name)
        params = {k: v for k, v in as_dict(checked).items() if k != "name"}
        if isinstance(slice_len, bool) or not isinstance(slice_len, int | np.integer) or slice_len < 1:
            raise ConfigError(f"slice_len={slice_len!r} is invalid: must be a positive integer.")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or sample_rate < 1:
            raise ConfigError(f"sample_rate={sample_rate!r} is invalid: must be a positive integer.")
        return cls(params, int(slice_len), int(sample_rate))

    # -- interface --------------------------------------------------------------------------------

    def fit(self, waveforms: np.ndarray) -> Representation:
        return self

    def transform(self, waveforms: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def inverse(self, features: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def feature_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def is_fitted(self) -> bool:
        return True

    # -- persistence ------------------------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": self.params,
            "slice_len": self.slice_len,
            "sample_rate": self.sample_rate,
        }

    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _set_state(self, state: Mapping[str, np.ndarray]) -> None:
        pass

    def save(self, directory: Path) -> None:
        """Writes the config and fitted state (plain JSON + .npz, no pickle) into ``directory``."""
        if not self.is_fitted:
            raise NotFittedError(
                f"{self.name} representation: call fit() on the training split before save()"
            )
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / _META_FILE).write_text(json.dumps(self._meta(), indent=2, sort_keys=True) + "\n")
        state = self._state()
        if state:
            np.savez(directory / _STATE_FILE, **state)

    @classmethod
    def load(
        cls, directory: Path, cfg: Mapping[str, Any] | None, slice_len: int, sample_rate: int
    ) -> Representation:
        """Restores a saved representation.

        ``cfg`` may be None to take the saved settings as they are; otherwise it must agree with
        them, because a model trained on one STFT cannot be decoded with another.
        """
        directory = Path(directory)
        meta_path = directory / _META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"no saved representation in {directory} (missing {_META_FILE})")
        meta = json.loads(meta_path.read_text())
        if cfg is None:
            cfg = {"name": meta["name"], **meta["params"]}
        from wavegan.representations import build_representation  # the registry imports this module

        rep = build_representation(cfg, slice_len, sample_rate)
        if cls is not Representation and not isinstance(rep, cls):
            raise ConfigError(
                f"preprocessing.name={rep.name!r} but {cls.__name__}.load was asked for '{cls.name}'. "
                f"Fix: set preprocessing.name={cls.name} or call Representation.load."
            )
        saved = Representation._meta_of(meta)
        current = Representation._meta_of(rep._meta())
        mismatched: dict[str, tuple[Any, Any]] = {}
        if saved.get("name") != current["name"]:
            mismatched["preprocessing.name"] = (saved.get("name"), current["name"])
        if saved.get("slice_len") != current["slice_len"]:
            mismatched["slice_len"] = (saved.get("slice_len"), current["slice_len"])
        saved_params = saved.get("params", {})
        for key in sorted(set(saved_params) | set(current["params"])):
            # Griffin-Lim iterations only affect inverse(), never the features the model saw, so
            # a loaded representation may decode with more or fewer. Sample rate is not compared
            # for the same reason (it changes no feature).
            if key not in _FREE_ON_LOAD and saved_params.get(key) != current["params"].get(key):
                mismatched[f"preprocessing.{key}"] = (saved_params.get(key), current["params"].get(key))
        if mismatched:
            label, (was, now) = next(iter(mismatched.items()))
            raise ConfigError(
                f"saved representation in {directory} does not match the config: {label} was {was!r}, "
                f"config has {now!r} (all differences, saved vs config: {mismatched}). Fix: use the "
                f"config the representation was fitted with, or pass cfg=None to take the saved one."
            )
        state_path = directory / _STATE_FILE
        if state_path.is_file():
            with np.load(state_path, allow_pickle=False) as data:
                rep._set_state({k: data[k] for k in data.files})
        if not rep.is_fitted:
            raise FileNotFoundError(
                f"{rep.name} representation in {directory} has no fitted state ({_STATE_FILE})"
            )
        return rep

    @staticmethod
    def _meta_of(meta: Mapping[str, Any]) -> dict[str, Any]:
        # JSON turns tuples into lists etc.; compare on the same footing as a fresh _meta().
        return json.loads(json.dumps(dict(meta)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(slice_len={self.slice_len}, params={self.params})"


