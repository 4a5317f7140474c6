"""TensorFlow without its start-up chatter, so a command's first lines are the project's own.

TensorFlow 2.21 logs through absl's C++ logger before anything can configure it (TF_CPP_MIN_LOG_LEVEL no
longer reaches those lines): "oneDNN custom operations are on", "Could not find cuda drivers", "failed
call to cuInit" on a machine without a GPU. `wavegan/__init__.py` installs an import hook: whoever first
imports TensorFlow in a wavegan process does so with the process's stderr (file descriptor 2) captured,
TensorFlow also looks for GPUs inside the capture, and every captured line that is not one of those
known start-up notices is written back, so real warnings and errors still show.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

# Start-up notices only: each says what TensorFlow found on this machine, none is a problem.
STARTUP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on"
    r"|Could not find cuda drivers|failed call to cuInit|cudart_stub|Unable to register cu(DNN|FFT|BLAS)"
    r"|computation_placer|This TensorFlow binary is optimized|TF-TRT Warning"
    r"|rebuild TensorFlow with the appropriate compiler flags|Attempting to register factory for plugin"
)
# Python loggers that report routine progress at INFO.
CHATTY_LOGGERS = ("absl", "mlflow", "alembic", "h5py", "matplotlib", "PIL", "numba", "urllib3")


def quiet_loggers() -> None:
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def filtered_stderr(noise: re.Pattern = STARTUP_NOISE) -> Iterator[None]:
    """Capture file descriptor 2 (C++ libraries write there directly) and write back what is not noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode(errors="replace").splitlines()
                if line.strip() and not noise.search(line)
            ]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec):  # noqa: ANN001, ANN201
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:  # noqa: ANN001
        with filtered_stderr():
            self.loader.exec_module(module)
            module.config.list_physical_devices("GPU")  # the probe that logs cuInit's failure without a GPU


class _QuietTensorflowFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):  # noqa: ANN001, ANN201
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one import only; the real finder does the finding
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install_quiet_tensorflow_import() -> None:
    if "tensorflow" not in sys.modules and not any(
        isinstance(f, _QuietTensorflowFinder) for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _QuietTensorflowFinder())
