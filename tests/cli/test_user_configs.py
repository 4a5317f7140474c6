"""A user's own config groups extend the shipped ones: from `conf/` in the working directory, or from
`--config-dir`."""

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

TINY_MODEL = """# @package _global_
defaults:
  - /schema/model/wavegan@model
  - override /preprocessing: waveform
data:
  slice_len: 1024
model:
  dim: 3
"""


def composed(cwd: Path, *args: str) -> str:
    env = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(
        [sys.executable, "-m", "wavegan.train", *args, "--cfg", "job"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_a_config_group_option_in_the_working_directory_is_found(tmp_path: Path) -> None:
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "tiny.yaml").write_text(TINY_MODEL)
    out = composed(tmp_path, "model=tiny")
    assert "  dim: 3" in out and "slice_len: 1024" in out


def test_a_config_dir_on_the_command_line_is_found(tmp_path: Path) -> None:
    (tmp_path / "mine" / "model").mkdir(parents=True)
    (tmp_path / "mine" / "model" / "tiny.yaml").write_text(TINY_MODEL)
    out = composed(tmp_path, "--config-dir", str(tmp_path / "mine"), "model=tiny")
    assert "  dim: 3" in out
    # the shipped options are still there
    assert "  dim: 8" in composed(tmp_path, "--config-dir", str(tmp_path / "mine"), "model=dcgan")
