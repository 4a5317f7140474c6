"""Raw audio as the representation (WaveGAN)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from wavegan.representations.base import Representation, waveform_batch


class WaveformRepresentation(Representation):
    """Raw audio: features [slice_len, 1] in [-1, 1]; inverse drops the channel axis."""

    name = "waveform"
    is_identity: ClassVar[bool] = True  # audio in [-1, 1] comes back unchanged

    def transform(self, waveforms: np.ndarray) -> np.ndarray:
        y = waveform_batch(waveforms, self.slice_len)
        # Clipping keeps the tanh-output contract even for slightly hot recordings.
        return np.clip(y, -1.0, 1.0)[..., None]

    def inverse(self, features: np.ndarray) -> np.ndarray:
        return waveform_batch(features, self.slice_len)  # the features are the waveform

    def feature_shape(self) -> tuple[int, ...]:
        return (self.slice_len, 1)


