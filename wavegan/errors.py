"""Errors a user can cause. Entry points turn these into one clear message and exit code 2."""

import errno
import os


class WaveganError(Exception):
    """A problem the user can fix (bad config, bad audio, unreachable storage)."""


class ConfigError(WaveganError):
    """A config value is invalid; the message names the key and the fix."""


class DataError(WaveganError):
    """Input data is unusable; the message names the source and the fix."""


# errno values that mean "this disk cannot take more": full, over quota, over the process's file-size limit.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def is_disk_full(exc: BaseException) -> bool:
    """An OSError with a disk-full errno, or an error that kept only its text (TensorFlow's, SQLite's)."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        return True
    text = str(exc)
    return any(os.strerror(code) in text for code in DISK_FULL_ERRNOS) or "database or disk is full" in text


def error_detail(exc: BaseException, limit: int | None = 200) -> str:
    """The error's own text on one line, cut to `limit` characters (None: whole): for one-line messages."""
    return " ".join(str(exc).split())[:limit]
