"""What every `wavegan <command>` shares: where the configs are, and turning user errors (a WaveganError
from the command, or a command line Hydra cannot compose) into one clear message instead of a traceback.

conf/ and sweeps/ live at the top of the repository (the product layout) and ship inside the package:
`wavegan/conf` and `wavegan/sweeps` are links to them in a checkout and real folders in an installed wheel,
so PACKAGE_DIR is the one place both are found from.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import hydra
from omegaconf import DictConfig

from wavegan.config.schema import register as register_schemas
from wavegan.errors import WaveganError
from wavegan.secret_masking import mask_hydra_record, mask_text

PACKAGE_DIR = Path(__file__).resolve().parents[1]
CONF_DIR = PACKAGE_DIR / "conf"  # the training config groups
SWEEPS_DIR = PACKAGE_DIR / "sweeps"  # the shipped study files, group `sweep` (wavegan/study/compose.py)
log = logging.getLogger("wavegan")
register_schemas()  # the typed schemas conf/ builds on (wavegan/config/schema.py)

Prepare = Callable[[list[str]], list[str]]


def entry_point(
    config_name: str = "config", config_path: Path | None = CONF_DIR, prepare: Prepare | None = None
) -> Callable[[Callable[[DictConfig], object]], Callable[..., object]]:
    """`hydra.main` over `config_path` where a user error ends in one message on stderr and exit status 2.

    The decorated command takes an optional argv (default: the process's); `prepare` may rewrite it (and
    register what the app composes from) before Hydra reads it."""

    def decorate(task: Callable[[DictConfig], object]) -> Callable[..., object]:
        @functools.wraps(task)
        def guarded(cfg: DictConfig) -> object:
            from wavegan.runtime import quiet_loggers

            quiet_loggers()
            _mask_hydra_record()
            # Inside the task, so Hydra's "Error executing job with overrides: [...]" (which would show a
            # password given in an override) is never printed.
            try:
                return task(cfg)
            except WaveganError as exc:
                fail(str(exc))
            except Exception:
                if _multirun():  # Hydra runs the sweep's other jobs, then reports the failures
                    raise
                print(mask_text(traceback.format_exc()), file=sys.stderr, flush=True)  # a bug
                sys.exit(1)

        app = hydra.main(
            config_path=str(config_path) if config_path else None, config_name=config_name, version_base="1.3"
        )(guarded)

        @functools.wraps(task)
        def command(argv: list[str] | None = None) -> object:
            from hydra.core.global_hydra import GlobalHydra
            from hydra.errors import HydraException
            from omegaconf.errors import OmegaConfBaseException

            saved = sys.argv
            try:
                args = list(sys.argv[1:] if argv is None else argv)
                if config_path == CONF_DIR:
                    args = with_user_config_dir(args)
                sys.argv = [sys.argv[0], *(prepare(args) if prepare else args)]
                GlobalHydra.instance().clear()  # a command run before in this process (tests)
                with _hydra_errors_raised():
                    return app()
            except WaveganError as exc:  # from `prepare`, or from loading a study file
                fail(str(exc))
            except (HydraException, OmegaConfBaseException) as exc:  # composing the command line's config
                fail(hydra_error_text(exc))
            finally:
                sys.argv = saved

        return command

    return decorate


def with_user_config_dir(args: list[str]) -> list[str]:
    """A `conf/` folder in the working directory extends the shipped config groups (Hydra's --config-dir,
    searched after the shipped conf/), unless the command line names a config dir itself. Not for the
    sweep and report apps: there, study files are data and are found only by wavegan/study/compose.py."""
    user = Path("conf")
    given = any(a in ("--config-dir", "-cd") or a.startswith(("--config-dir=", "-cd=")) for a in args)
    if given or not user.is_dir() or user.resolve() == CONF_DIR.resolve():
        return args
    return ["--config-dir", str(user.resolve()), *args]


def exit_status(command: Callable[..., object], argv: list[str] | None = None) -> int:
    """Run an `entry_point` command; its exit status instead of SystemExit (for `sys.exit(main())`)."""
    try:
        command(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    return 0


def _mask_hydra_record() -> None:
    """Hydra wrote the job's config and overrides as typed to `<output dir>/.hydra`: mask their secrets."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized() or not HydraConfig.get().output_subdir:
        return
    hydra_cfg = HydraConfig.get()
    mask_hydra_record(Path(hydra_cfg.runtime.output_dir) / str(hydra_cfg.output_subdir))


def _multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@contextlib.contextmanager
def _hydra_errors_raised() -> Iterator[None]:
    """Hydra prints a composition error itself and exits 1; HYDRA_FULL_ERROR makes it raise instead."""
    before = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = before


def fail(message: str) -> None:
    """A user error: one line on stderr (credentials masked), the job's log file too, exit status 2."""
    message = mask_text(message)
    print(f"error: {message}", file=sys.stderr, flush=True)
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "%s", (message,), None)
    for handler in logging.getLogger().handlers:  # the log file only: the console already has the line
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    sys.exit(2)


def hydra_error_text(exc: Exception) -> str:
    """A Hydra or OmegaConf error as one line that names the override, key or option at fault."""
    from hydra.errors import MissingConfigException

    if isinstance(exc, MissingConfigException):
        # "In 'config': Could not find 'model/nope'" + the options (not the search path that follows)
        text = str(exc).split("\n\n")[0]
        if exc.options:
            text += f". Fix: one of {', '.join(exc.options)}"
        return " ".join(text.split())
    if isinstance(exc.__cause__, WaveganError):  # raised while Hydra loaded a config (a study file)
        return str(exc.__cause__)
    parts = [omegaconf_error_text(exc)]
    if exc.__cause__ is not None:
        parts.append(omegaconf_error_text(exc.__cause__))
    return "; ".join(" ".join(p.split()) for p in parts if p)


def omegaconf_error_text(exc: BaseException, prefix: str = "") -> str:
    """`<full key>: <problem>` for an OmegaConf error (the key under `prefix`), else the message itself."""
    msg, key = getattr(exc, "msg", None), getattr(exc, "full_key", None)
    if msg is None:
        return str(exc).strip()
    problem = str(msg).splitlines()[0] if str(msg) else exc.__class__.__name__
    key = ".".join(k for k in (prefix, key) if k)
    return f"{key}: {problem}" if key else problem


def compose(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
    """The same config a command line with these overrides gets, for tests and benchmarks."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides or []))
