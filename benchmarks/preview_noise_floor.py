"""How much broadband noise do generated clips carry? For each folder of WAV files (a run's logged previews or
final samples, e.g. mlruns/<experiment>/<run>/artifacts/samples/final), the median over its clips of the
energy above `--above` Hz as a fraction of the clip's energy, and the spectral flatness (geometric over
arithmetic mean of the power spectrum: 1 for white noise, near 0 for a tone).

    .venv/bin/python benchmarks/preview_noise_floor.py mlruns/1/<run>/artifacts/samples/final [more folders]

The measure behind README "What the default runs show": WaveGAN with nearest-neighbour up-sampling grew a
hiss that the log-mel features (and so FD) see in every quiet band. Prints a table; JSON last.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.io import wavfile


def noise_floor(folder: Path, above_hz: float) -> dict[str, float]:
    high, flatness = [], []
    files = sorted(folder.glob("*.wav"))
    for path in files:
        rate, y = wavfile.read(path)
        y = y.astype(np.float64)
        if y.ndim > 1:
            y = y[:, 0]
        power = np.abs(np.fft.rfft(y)) ** 2
        freqs = np.fft.rfftfreq(len(y), 1 / rate)
        high.append(power[freqs > above_hz].sum() / max(power.sum(), 1e-30))
        flatness.append(np.exp(np.mean(np.log(power + 1e-12))) / max(np.mean(power), 1e-30))
    return {
        "clips": len(files),
        "energy_above_fraction": float(np.median(high)) if files else float("nan"),
        "flatness": float(np.median(flatness)) if files else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--above", type=float, default=4000.0, help="Hz (default 4000)")
    args = parser.parse_args()
    rows = {str(folder): noise_floor(folder, args.above) for folder in args.folders}
    print(f"{'clips':>5} {'energy > ' + str(int(args.above)) + ' Hz':>18} {'flatness':>9}  folder")
    for folder, row in rows.items():
        share = row["energy_above_fraction"] * 100
        print(f"{row['clips']:>5} {share:>17.3f}% {row['flatness']:>9.2e}  {folder}")
    print(json.dumps({"above_hz": args.above, "folders": rows}))


if __name__ == "__main__":
    main()
