"""The installed tool, not the checkout: build the wheel, install it with its dependencies into a fresh
virtual environment (from the package index; pip's cache helps), and from an empty directory run
`wavegan --help`, a few training steps, a two-trial study and its report. Marked `system` (minutes: the
install dominates); CI runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.system

TINY_TRAIN = [
    "data.num_samples=48",
    "data.slice_len=1024",
    "model.dim=4",
    "trainer.batch_size=4",
    "trainer.n_critic=1",
    "trainer.max_steps=4",
    "trainer.log_every=2",
    "trainer.preview_every=2",
    "trainer.checkpoint_every=2",
    "trainer.progress=false",
    "eval.enabled=false",
]


def clean_env(bin_dir: Path | None = None) -> dict[str, str]:
    """Nothing of the checkout (PYTHONPATH) or of the test session's stores: what an installed tool sees."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "WAVEGAN_", "MLFLOW_"))}
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The `bin` folder of a fresh virtual environment with the wheel installed."""
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO_ROOT)],
        cwd=root, env=clean_env(), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("wavegan-*.whl")
    venv.EnvBuilder(with_pip=True).create(root / "venv")
    bin_dir = root / "venv" / "bin"
    install = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        cwd=root, env=clean_env(), capture_output=True, text=True, timeout=2400,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    assert (bin_dir / "wavegan").is_file(), install.stdout[-3000:]
    return bin_dir


def run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(bin_dir / "wavegan"), *args], cwd=cwd, env=clean_env(bin_dir), capture_output=True, text=True,
        timeout=1800,
    )  # fmt: skip


def test_the_wheel_carries_the_configs_and_imports_from_site_packages(
    installed: Path, tmp_path: Path
) -> None:
    code = "import wavegan.cli.app as a; print(a.CONF_DIR); print((a.CONF_DIR / 'config.yaml').is_file())"
    out = subprocess.run(
        [str(installed / "python"), "-c", code], cwd=tmp_path, env=clean_env(), capture_output=True, text=True
    )
    conf_dir, exists = out.stdout.split()
    assert "site-packages" in conf_dir and exists == "True", out.stderr[-2000:]
    assert Path(conf_dir, "..", "sweeps", "loss_comparison.yaml").resolve().is_file()


def test_from_an_empty_directory_help_train_study_and_report(installed: Path, tmp_path: Path) -> None:
    work = tmp_path / "empty"
    work.mkdir()
    helped = run(installed, work, "--help")
    assert helped.returncode == 0
    for command in ("train", "data", "evaluate", "sweep", "report", "ui"):
        assert f"  {command} " in helped.stdout, helped.stdout

    trained = run(installed, work, "train", *TINY_TRAIN, "tracking.experiment=wheel")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "completed: 4 steps" in trained.stdout
    assert (work / "mlflow.db").is_file() and (work / "mlruns").is_dir()  # the default stores, here
    # no TensorFlow/CUDA start-up notices on the CPU
    for noise in ("cuInit", "oneDNN custom operations", "absl::InitializeLog", "cudart_stub"):
        assert noise not in trained.stderr + trained.stdout, noise
