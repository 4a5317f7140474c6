"""Study files as Hydra's config group `sweep`: where they are found, what loading one may do, and the
configs of the `wavegan sweep` and `wavegan report` apps.

`sweep=<name>` is `<name>.yaml` in the first of these folders that has it:
    sweep=path/to/study.yaml   the file's own folder (any path ending in .yaml, or with a `/`)
    ./sweeps/                  the working directory's study files (a user's own, or overriding ours)
    ./conf/sweep/              the same, laid out as a Hydra config group
    <project>/sweeps/          the shipped studies (wavegan.cli.app.SWEEPS_DIR)
A study file may extend another (`defaults: [optimizer_stability, _self_]`, then its own keys).

Loading a study file (`StudySource`) treats it as data: at most 1 MB of YAML and 100,000 values once its
aliases are expanded, its keys always go under `sweep` (a `# @package` line cannot reach Hydra's own
settings, e.g. `hydra.callbacks`), its defaults list names other studies only, and a `_target_` outside
the allow-list (wavegan/study/targets.py) is rejected before anything is imported or instantiated. The
merged study is checked against wavegan/study/schema.py.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra.core.config_store import ConfigStore
from hydra.core.object_type import ObjectType
from hydra.core.plugins import Plugins
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from wavegan.cli.app import SWEEPS_DIR, hydra_error_text
from wavegan.errors import ConfigError, error_detail
from wavegan.study.schema import SCHEMA_NAME, ReportOptions, SweepSchema, checked
from wavegan.study.spec import SweepSpec, build_spec
from wavegan.study.targets import check_targets

SCHEME = "wavegan-sweeps"
GROUP = "sweep"
MAX_STUDY_BYTES = 1_000_000  # a study file is a page of YAML; anything this big is a mistake
MAX_STUDY_VALUES = 100_000  # values (keys, list items) after YAML aliases are expanded
SWEEP_APP, REPORT_APP = "wavegan_sweep", "wavegan_report"  # the apps' primary configs in the ConfigStore
_ALLOWED_PACKAGES = (None, "_group_", GROUP)
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")  # a study's name (and `_self_`)


class StudySource(ConfigSource):
    """A folder of study files, seen by Hydra as the config group `sweep` and nothing else."""

    @staticmethod
    def scheme() -> str:
        return SCHEME

    def _file(self, config_path: str) -> Path | None:
        group, _, name = config_path.partition("/")
        if group != GROUP or not name or "/" in name:
            return None
        return study_file([Path(self.path)], name.removesuffix(".yaml"))

    def load_config(self, config_path: str) -> ConfigResult:
        path = self._file(config_path)
        if path is None:
            raise ConfigLoadError(f"Config not found: {config_path}")
        header = {"package": None}  # the group's package, whatever the file says (read_study rejects that)
        config = read_study(path)
        return ConfigResult(config=config, path=self.full_path(), provider=self.provider, header=header)

    def available(self) -> bool:
        return Path(self.path).is_dir()

    def is_group(self, config_path: str) -> bool:
        return config_path in ("", GROUP) and self.available()

    def is_config(self, config_path: str) -> bool:
        return self._file(config_path) is not None

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        if not self.available():
            return []
        if config_path == "":
            return [GROUP] if results_filter in (None, ObjectType.GROUP) else []
        if config_path != GROUP or results_filter == ObjectType.GROUP:
            return []
        return sorted({p.stem for p in Path(self.path).iterdir() if p.suffix in (".yaml", ".yml")})


Plugins.instance().register(StudySource)


def read_study(path: Path) -> DictConfig:
    """One study file as data, checked before Hydra merges it (see the module's docstring)."""
    size = path.stat().st_size
    if size > MAX_STUDY_BYTES:
        raise ConfigError(f"{path}: {size} bytes is not a study file (at most {MAX_STUDY_BYTES}).")
    text = path.read_text(encoding="utf-8", errors="replace")
    package = ConfigSource._get_header_dict(text[:512]).get("package")
    if package not in _ALLOWED_PACKAGES:
        raise ConfigError(
            f"{path}: `# @package {package}`: a study file's keys belong to `sweep`. Fix: remove that line."
        )
    _check_expanded_size(path, text)
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:
        raise ConfigError(f"{path}: not valid YAML: {error_detail(exc, None)}") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path}: a study file is a mapping of keys (search_space:, overrides:, ...).")
    content = OmegaConf.to_container(cfg)
    defaults = content.pop("defaults", [])
    if not isinstance(defaults, list) or not all(isinstance(d, str) and _NAME.fullmatch(d) for d in defaults):
        raise ConfigError(
            f"{path}: defaults: {defaults}: a study's defaults list names other studies only (e.g. "
            "[optimizer_stability, _self_])."
        )
    check_targets(content, where=f"{path}: ")
    checked(SweepSchema, content, where=f"{path}: ")  # the keys it has (the rest come from elsewhere)
    return cfg


def _check_expanded_size(path: Path, text: str) -> None:
    """Refuse a file whose YAML aliases expand to more than MAX_STUDY_VALUES values (a "billion laughs":
    nine lines that become 10^9 strings when OmegaConf copies them): counted on the parsed node graph,
    stopping at the limit, so counting costs nothing either."""
    try:
        stack = [yaml.compose(text, Loader=yaml.SafeLoader)]
    except yaml.YAMLError:
        return  # OmegaConf.load says what is wrong with it
    seen = 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_STUDY_VALUES:
            raise ConfigError(
                f"{path}: more than {MAX_STUDY_VALUES} values once its YAML aliases (*name) are expanded; "
                "a study file is a page of settings. Fix: write the values out, without aliases."
            )
        if isinstance(node, yaml.MappingNode):
            stack.extend(item for pair in node.value for item in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


# --- where studies are -----------------------------------------------------------------------------


def study_dirs(explicit: Path | None = None) -> list[Path]:
    """The folders `sweep=<name>` looks in, in order (see the module's docstring)."""
    found: list[Path] = []
    for folder in (explicit, Path.cwd() / "sweeps", Path.cwd() / "conf" / GROUP, SWEEPS_DIR):
        if folder is not None and folder.is_dir() and folder.resolve() not in found:
            found.append(folder.resolve())
    return found


def study_file(dirs: Sequence[Path], name: str) -> Path | None:
    """`<name>.yaml` (or .yml) in the first of `dirs` that has it."""
    return next((p for d in dirs for p in (d / f"{name}.yaml", d / f"{name}.yml") if p.is_file()), None)


def known_studies(dirs: Sequence[Path]) -> list[str]:
    return sorted({p.stem for d in dirs for p in d.iterdir() if p.suffix in (".yaml", ".yml")})


def study_argument(value: str) -> tuple[str, Path | None]:
    """`sweep=<value>` as (the option name Hydra gets, the folder of an explicit path or None)."""
    if not (value.endswith((".yaml", ".yml")) or "/" in value or os.sep in value):
        return value, None
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"sweep={value}: no study file {path}. Fix: pass one of "
            f"{', '.join(known_studies(study_dirs())) or '(none yet)'}, or the path of a YAML file."
        )
    return path.stem, path.parent.resolve()


def _quoted(value: str) -> str:
    """A search-space expression as a quoted Hydra string: `choice(a, b)` stays text, not a Hydra sweep."""
    if value[:1] in ("'", '"') or "'" in value or "\\" in value:
        return value
    return f"'{value}'"


def prepare_command_line(argv: list[str], app: str, usage: str = "") -> list[str]:
    """The command line as Hydra gets it, with the app's config (search path) registered for it:
    `sweep=path.yaml` -> `sweep=<stem>` with its folder searched first; `sweep.search_space.<key>=<expr>`
    -> `++sweep.search_space.<key>='<expr>'` (any key may be added; the expression stays text)."""
    out, explicit = [], None
    for arg in argv:
        key, eq, value = arg.partition("=")
        if eq and key == GROUP:
            name, explicit = study_argument(value)
            arg = f"{GROUP}={name}"
        elif eq and key.lstrip("+").startswith(f"{GROUP}.search_space."):
            arg = f"++{key.lstrip('+')}={_quoted(value)}"
        out.append(arg)
    register_app(app, study_dirs(explicit), usage if "--help" in argv or "-h" in argv else None)
    return out


# --- the apps' configs -----------------------------------------------------------------------------


def _help_text(text: str) -> str:
    """Text for Hydra's help template: no OmegaConf interpolation, `$` escaped for string.Template."""
    return text.replace("${", "$ {").replace("$", "$$")


def _help(app: str, dirs: list[Path], usage: str) -> dict[str, str]:
    lines = []
    for name in known_studies(dirs):
        try:
            description = " ".join(str(read_study(study_file(dirs, name)).get("description", "")).split())
        except Exception:  # the study's own error comes when it is chosen
            description = "(not a valid study file)"
        lines.append(f"  {name:<24} {textwrap.shorten(description, 84)}")
    studies = "\n".join(lines) or "  (none: write sweeps/<name>.yaml, see sweeps/README.md)"
    groups = "== Training config groups (group=option) ==\n$APP_CONFIG_GROUPS\n" if app == SWEEP_APP else ""
    template = (
        f"{_help_text(usage)}\n\n== Studies (sweep=<name>, or sweep=path/to/study.yaml) ==\n"
        f"{_help_text(studies)}\n\n{groups}"
        "== Config (key=value; study keys: sweep.<key>=value) ==\n$CONFIG\n${hydra.help.footer}"
    )
    return {"template": template}


def register_app(app: str, dirs: list[Path], usage: str | None = None) -> None:
    """The primary config of `wavegan sweep` (the training config + the `sweep` group) or `wavegan report`
    (the `sweep` group + `report`), with this invocation's study folders on the search path; with
    `usage`, the `--help` page too."""
    defaults: list[Any] = ["config"] if app == SWEEP_APP else []
    defaults += [
        f"{SCHEMA_NAME}@{GROUP}",
        {GROUP: None},
        {"override hydra/job_logging": "none"},  # the command sets up its own logging
        {"override hydra/hydra_logging": "none"},
        "_self_",
    ]
    searchpath = [f"{SCHEME}://{d}" for d in dirs]  # `wavegan sweep` has conf/ as its main config folder
    node: dict[str, Any] = {
        "defaults": defaults,
        # Results go to the study's results_dir; Hydra writes nothing (no outputs/ folder, no .hydra/).
        "hydra": {"searchpath": searchpath, "run": {"dir": "."}, "output_subdir": None},
    }
    if usage is not None:
        node["hydra"]["help"] = _help(app, dirs, usage)
    if app == REPORT_APP:
        node["report"] = ReportOptions
    ConfigStore.instance().store(name=app, node=node)


# --- composing ---------------------------------------------------------------------------------------


def study_from_config(cfg: DictConfig, hydra_cfg: DictConfig) -> SweepSpec | None:
    """The study of a composed app config (None when the command line chose none); `hydra_cfg` is the
    composition's `hydra` node (HydraConfig.get() in a running app)."""
    name = hydra_cfg.runtime.choices.get(GROUP)
    if name is None:
        return None
    dirs = [Path(s.path) for s in hydra_cfg.runtime.config_sources if s.schema == SCHEME]
    return build_spec(str(name), str(study_file(dirs, name) or name), cfg[GROUP])


def which_study() -> ConfigError:
    known = ", ".join(known_studies(study_dirs())) or "(none yet)"
    return ConfigError(f"which study? Pass sweep=<name> (one of {known}) or sweep=path/to/study.yaml.")


def training_overrides() -> list[str]:
    """The running app's command-line overrides that are not about the study (`sweep`, `sweep.*`)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    task = list(HydraConfig.get().overrides.task)
    parsed = OverridesParser.create().parse_overrides(task)
    return [o.input_line for o in parsed if o.key_or_group.split(".")[0].split("@")[0] != GROUP]


def load_spec(study: str, overrides: Sequence[str] = ()) -> SweepSpec:
    """A study as `wavegan sweep sweep=<study> <overrides>` sees it (overrides: `sweep.<key>=<value>`)."""
    from hydra import compose, initialize
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    argv = prepare_command_line([f"{GROUP}={study}", *overrides], REPORT_APP)
    GlobalHydra.instance().clear()
    try:
        with initialize(config_path=None, version_base="1.3"):
            cfg = compose(config_name=REPORT_APP, overrides=argv, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(hydra_error_text(exc)) from None
    spec = study_from_config(cfg, cfg.hydra)
    assert spec is not None
    return spec
