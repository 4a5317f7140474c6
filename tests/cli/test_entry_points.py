"""Every user command runs in its own process here: the tensorflow-then-deeplake abort (a SIGABRT
that kills the process with no Python traceback) must be impossible to hit from any of them."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# Each entry point loads its whole module graph (including tensorflow where it uses it) and then
# touches deeplake: `--cfg job` composes and prints the config without running the task, which is
# enough to import everything the command imports.
ENTRY_POINTS = [
    m
    for m in ("wavegan.data", "wavegan.train", "wavegan.sweep", "wavegan.evaluate", "wavegan.report")
    if (REPO_ROOT / (m.replace(".", "/") + ".py")).exists()
    or (REPO_ROOT / m.replace(".", "/") / "__main__.py").exists()
]

PROBE = (
    "import runpy, sys; sys.argv = [{module!r}, '--cfg', 'job'];\n"
    "try:\n    runpy.run_module({module!r}, run_name='__main__')\nexcept SystemExit as e:\n"
    "    assert not e.code, e.code\n"
    "import tensorflow as tf, deeplake\n"
    "deeplake.create('mem://probe').add_column('x', deeplake.types.Int32())\n"
    "print('tf', tf.__version__, 'deeplake', deeplake.__version__)\n"
)


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_entry_point_loads_tensorflow_and_deeplake_without_aborting(module):
    result = run(PROBE.format(module=module))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "deeplake" in result.stdout


def test_importing_wavegan_after_tensorflow_is_a_clear_error_not_an_abort():
    result = run("import tensorflow\nimport wavegan")
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])  # -6 would be SIGABRT
    assert "import wavegan" in result.stderr and "before" in result.stderr


def test_data_command_runs_end_to_end(tmp_path):
    env_dir = tmp_path / "store"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "wavegan.data",
            "data.num_samples=40",
            "data.slice_len=4096",
            f"data.store_dir={env_dir}",
            f"hydra.run.dir={tmp_path / 'out'}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "40 used, 0 skipped" in out and "per label" in out and "per pitch" in out
    png = next(line.split(None, 1)[1] for line in out.splitlines() if line.startswith("examples"))
    assert png.endswith("examples.png") and png.startswith(str(env_dir))
    assert Path(png).stat().st_size > 10_000


def test_data_command_bad_input_is_one_message_and_exit_2(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "wavegan.data",
            "data=audio_dir",
            f"data.path={tmp_path / 'missing'}",
            f"hydra.run.dir={tmp_path / 'out'}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "error: data.path=" in result.stderr and "Traceback" not in result.stderr
