"""Folders that appear complete or not at all: the data store, cached features, the metrics cache.

Each is built under a temporary sibling name and renamed into place when done (a rename is atomic on
one file system), so an interrupted build (Ctrl-C, SIGKILL, a crash) never leaves a folder that a later
run takes as finished, and two processes building the same folder at once both end up using one.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def clear_dead_partials(target: Path) -> None:
    """Remove interrupted builds of `target` whose builder process is gone."""
    for partial in target.parent.glob(f".{target.name}.partial-*"):
        pid = partial.name.rsplit("-", 1)[-1]
        if not (pid.isdigit() and pid_alive(int(pid))):
            log.info("removing an interrupted build: %s", partial)
            shutil.rmtree(partial, ignore_errors=True)


@contextmanager
def build_atomically(target: Path, marker: str) -> Iterator[Path]:
    """Yields an empty folder to build `target` in; renames it into place when the block succeeds.

    `marker` is a file the finished folder always holds: if another process renamed its own build into
    place first, ours is discarded and theirs is used. On any error or interruption the partial folder
    is removed and the error propagates.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    clear_dead_partials(target)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        yield partial
        try:
            os.rename(partial, target)
        except OSError:
            if not (target / marker).is_file():
                raise
            log.info("another process finished %s first; using it", target)
            shutil.rmtree(partial, ignore_errors=True)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
