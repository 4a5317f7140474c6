"""Audio representations a GAN trains on, and their inverses back to waveforms (the `preprocessing`
config group).

    base.py         the Representation interface (fit, transform, inverse, save/load)
    waveform.py     raw audio, [slice_len, 1] (WaveGAN)
    spectrogram.py  log-magnitude STFT scaled per frequency bin: `spectrogram` (MinMaxScaler, the seed
                    notes) and `specgan` (3-sigma clip, SpecGAN); Griffin-Lim inverse
    stft.py         STFT, Griffin-Lim, spectral convergence

This package does not import TensorFlow: it runs in data preparation and evaluation too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wavegan.errors import ConfigError
from wavegan.representations.base import Representation, as_dict
from wavegan.representations.spectrogram import SpecGANRepresentation, SpectrogramRepresentation
from wavegan.representations.stft import (
    griffin_lim,
    log_magnitude_spectrogram,
    magnitude_spectrogram,
    spectral_convergence,
)
from wavegan.representations.waveform import WaveformRepresentation

__all__ = [
    "REPRESENTATIONS",
    "Representation",
    "SpecGANRepresentation",
    "SpectrogramRepresentation",
    "WaveformRepresentation",
    "build_representation",
    "griffin_lim",
    "log_magnitude_spectrogram",
    "magnitude_spectrogram",
    "spectral_convergence",
]

REPRESENTATIONS: dict[str, type[Representation]] = {
    cls.name: cls for cls in (WaveformRepresentation, SpectrogramRepresentation, SpecGANRepresentation)
}


def build_representation(cfg: Mapping[str, Any], slice_len: int, sample_rate: int) -> Representation:
    """Builds the (unfitted) representation named by ``cfg.name`` (the `preprocessing` config group)."""
    params = as_dict(cfg)
    name = params.get("name")
    if name not in REPRESENTATIONS:
        raise ConfigError(
            f"preprocessing.name={name!r} is not a known representation. "
            f"Fix: use one of {sorted(REPRESENTATIONS)} (conf/preprocessing/<name>.yaml)."
        )
    return REPRESENTATIONS[name].from_config(params, slice_len, sample_rate)
