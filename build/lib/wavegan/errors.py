"""Errors a user can cause. Entry points turn these into one clear message and exit code 2."""


class WaveganError(Exception):
    """A problem the user can fix (bad config, bad audio, unreachable storage)."""


class ConfigError(WaveganError):
    """A config value is invalid; the message names the key and the fix."""


class DataError(WaveganError):
    """Input data is unusable; the message names the source and the fix."""
