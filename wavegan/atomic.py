"""Folders that appear complete or not at all: the data store, cached features, the metrics cache.

Each is built under a temporary sibling name and renamed into place when done (a rename is atomic on
one file system), so an interrupted build (Ctrl-C, SIGKILL, a crash) never leaves a folder that a later
run takes as finished, and two processes building the same folder at once (on one machine or on several
sharing the folder) both end up using one. A temporary folder is named after its builder (`owner_tag`:
this machine and process id); leftovers are removed only when that builder is known to be gone, i.e.
only by a process on the same machine (another machine's process ids cannot be checked from here).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wavegan.caching import text_digest

log = logging.getLogger(__name__)

# This machine, in names of folders that a process owns while it builds (its hostname may hold '-').
HOST_TAG = text_digest(socket.gethostname(), 8)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def owner_tag() -> str:
    """`<host tag>-<pid>`: who owns a folder while building it."""
    return f"{HOST_TAG}-{os.getpid()}"


def owner_gone(tag: str) -> bool:
    """True when the owner named by `tag` (`<host tag>-<pid>`, or a bare pid from older builds: this
    machine) is known to be dead. Another machine's owner is never known to be dead."""
    host, _, pid = tag.rpartition("-")
    if host and host != HOST_TAG:
        return False
    return not (pid.isdigit() and pid_alive(int(pid)))


def clear_dead_partials(target: Path) -> None:
    """Remove interrupted builds of `target` whose builder process is gone."""
    for partial in target.parent.glob(f".{target.name}.partial-*"):
        if owner_gone(partial.name.split(".partial-", 1)[1]):
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
    partial = target.with_name(f".{target.name}.partial-{owner_tag()}")
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
