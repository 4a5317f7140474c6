"""A real file system of a chosen size, so a disk fills up where the product writes (checkpoints, MLflow
artifacts): a tmpfs mounted on a folder. Mounting needs root (CAP_SYS_ADMIN); without it the disk-full
row is skipped and says why, and tests/training/test_checkpoints.py covers the same messages by injecting
OSError(ENOSPC) at the write call."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

PAGE = 4096


def unavailable() -> str | None:
    """Why a small tmpfs cannot be mounted here, or None when it can."""
    if os.geteuid() != 0:
        return "mounting a small tmpfs needs root"
    if shutil.which("mount") is None:
        return "no mount command"
    with tempfile.TemporaryDirectory() as folder:
        try:
            with mounted(Path(folder), PAGE * 4):
                pass
        except (OSError, subprocess.CalledProcessError) as exc:
            return f"cannot mount a tmpfs ({exc})"
    return None


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def mounted(folder: Path, size: int) -> Iterator[Path]:
    """`folder` as a tmpfs of `size` bytes (rounded up to whole pages) until the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={pages(size)}", "tmpfs", str(folder))
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def resize(folder: Path, size: int) -> None:
    """Give the mounted tmpfs `size` bytes: the user freeing space on the full disk."""
    _mount("-o", f"remount,size={pages(size)}", str(folder))


def pages(size: int) -> int:
    return max(PAGE, -(-int(size) // PAGE) * PAGE)


def used_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
