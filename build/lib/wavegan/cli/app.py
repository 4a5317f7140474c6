"""What every `wavegan <command>` (and `python -m wavegan.<command>`) shares: the config folders, and
turning user errors into one clear message instead of a traceback.

conf/ and sweeps/ live at the top of the repository (the product layout) and ship inside the package:
`wavegan/conf` and `wavegan/sweeps` are links to them in a checkout and real folders in an installed wheel,
so PACKAGE_DIR / "conf" is the one place both are found.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig

from wavegan.config.schema import register as register_schemas
from wavegan.errors import WaveganError

PACKAGE_DIR = Path(__file__).resolve().parents[1]
CONF_DIR = PACKAGE_DIR / "conf"
SWEEPS_DIR = PACKAGE_DIR / "sweeps"
log = logging.getLogger("wavegan")
register_schemas()  # the typed schemas conf/ builds on (wavegan/config/schema.py)


def log_to_files(level: int, message: str) -> None:
    """A record for the job's log file only: the console already shows the message once."""
    record = logging.LogRecord("wavegan", level, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def entry_point(
    config_name: str = "config",
) -> Callable[[Callable[[DictConfig], object]], Callable[[], object]]:
    """`hydra.main` over conf/, where a WaveganError ends in one line on stderr (and in the job's log
    file) and exit status 2."""

    def decorate(task: Callable[[DictConfig], object]) -> Callable[[], object]:
        @functools.wraps(task)
        def guarded(cfg: DictConfig) -> object:
            from wavegan.runtime import quiet_loggers

            quiet_loggers()
            try:
                return task(cfg)
            except WaveganError as exc:
                log_to_files(logging.ERROR, f"error: {exc}")
                print(f"error: {exc}", file=sys.stderr)
                sys.exit(2)

        return hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")(guarded)

    return decorate


def compose(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
    """The same config a command line with these overrides gets, for tests and benchmarks."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides or []))
