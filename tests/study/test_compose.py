"""Study files (wavegan.study.compose, schema, targets): where `sweep=<name>` finds them, what a file may
say and do (schema, the `_target_` allow-list, no reach into Hydra's settings), and the Hydra app's
`--cfg job`, `--help` and tab completion. No training: everything here stops before the first trial."""

import sys

import optuna
import pytest

from tests.study.studies import write_study
from wavegan.cli.sweep import main
from wavegan.errors import ConfigError
from wavegan.study.compose import load_spec
from wavegan.study.plan import plan_study


def test_study_file_keys_and_types_are_checked_naming_the_key(tmp_path, capsys):
    assert main([f"sweep={write_study(tmp_path, name='bad_key', n_trial=3)}"]) == 2
    assert "bad_key.yaml: n_trial: Key 'n_trial' not in 'SweepSchema'" in capsys.readouterr().err
    assert main([f"sweep={write_study(tmp_path, name='bad_type', n_jobs='two')}"]) == 2
    err = capsys.readouterr().err
    assert "bad_type.yaml: n_jobs: Value 'two' of type 'str' could not be converted to Integer" in err
    assert main([f"sweep={write_study(tmp_path, name='bad_enum', divergence={'seed_value': 'x'})}"]) == 2
    err = capsys.readouterr().err
    assert "divergence.seed_value: Invalid value 'x', expected one of [worst, ignore]" in err
    not_yaml = tmp_path / "not_yaml.yaml"
    not_yaml.write_text("search_space: [unclosed\n")
    assert main([f"sweep={not_yaml}"]) == 2
    assert "not_yaml.yaml: not valid YAML" in capsys.readouterr().err
    huge = tmp_path / "huge.yaml"
    huge.write_text("description: " + "x" * 1_100_000 + "\n")
    assert main([f"sweep={huge}"]) == 2
    assert "is not a study file (at most 1000000)" in capsys.readouterr().err


EVIL = "wavegan_test_evil_module"  # writes a marker file when imported or instantiated


@pytest.fixture
def evil_module(tmp_path, monkeypatch):
    (tmp_path / f"{EVIL}.py").write_text(
        "from pathlib import Path\n"
        f"Path({str(tmp_path / 'imported')!r}).touch()\n"
        "class Evil:\n"
        "    def __init__(self, *args, **kwargs):\n"
        f"        Path({str(tmp_path / 'instantiated')!r}).touch()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    assert EVIL not in sys.modules
    assert not (tmp_path / "imported").exists() and not (tmp_path / "instantiated").exists()


@pytest.mark.parametrize(
    ("place", "target"),
    [
        ("sampler", "os.system"),
        ("sampler", "subprocess.Popen"),
        ("sampler", "builtins.eval"),
        ("sampler", f"{EVIL}.Evil"),
        ("pruner", f"{EVIL}.Evil"),
        ("pruner", "optuna.samplers.RandomSampler"),  # a sampler class is no pruner
        ("nested", f"{EVIL}.Evil"),
        ("objective", f"{EVIL}.Evil"),
        ("command line", f"{EVIL}.Evil"),
    ],
)
def test_targets_outside_the_allow_list_are_rejected_before_any_import(evil_module, capsys, place, target):
    """Issue 13: a study file is data. Only optuna.samplers.* / optuna.pruners.* classes may be named."""
    tmp_path, argv = evil_module, []
    keys = {
        "sampler": {"sampler": {"_target_": target, "command": f"touch {tmp_path / 'ran'}"}},
        "pruner": {"pruner": {"_target_": target}},
        "nested": {
            "sampler": {
                "_target_": "optuna.samplers.PartialFixedSampler",
                "fixed_params": {},
                "base_sampler": {"_target_": target},
            }
        },
        "objective": {"objective": {"metric": "train/wasserstein", "_target_": target}},
        "command line": {},
    }[place]
    if place == "command line":
        argv = [f"++sweep.sampler._target_={target}"]
    path = write_study(tmp_path, **keys)
    assert main([f"sweep={path}", *argv]) == 2
    err = capsys.readouterr().err
    assert f"_target_={target!r} is not allowed" in err and err.count("error:") == 1
    assert not (tmp_path / "ran").exists() and not (tmp_path / "optuna.db").exists()


def test_a_study_file_cannot_reach_hydras_settings(evil_module, capsys):
    """`# @package _global_` would put `hydra.callbacks` (instantiated by Hydra at start) in reach."""
    path = evil_module / "global.yaml"
    path.write_text(
        "# @package _global_\n"
        f"hydra: {{callbacks: {{x: {{_target_: {EVIL}.Evil}}}}}}\n"
        "sweep: {search_space: {optimizer.lr: 'interval(1e-5, 1e-3)'}}\n"
    )
    assert main([f"sweep={path}"]) == 2
    assert "`# @package _global_`: a study file's keys belong to `sweep`" in capsys.readouterr().err
    path.write_text("defaults: [{override /hydra/callbacks: x}]\nsearch_space: {x: '1,2'}\n")
    assert main([f"sweep={path}"]) == 2
    assert "a study's defaults list names other studies only" in capsys.readouterr().err


def test_allowed_targets_and_short_names_make_optuna_objects(tmp_path):
    from wavegan.study.plan import make_pruner, make_sampler

    path = write_study(
        tmp_path,
        sampler={"_target_": "optuna.samplers.RandomSampler", "seed": 3},
        pruner={"_target_": "optuna.pruners.PercentilePruner", "percentile": 25.0},
    )
    plan = plan_study(load_spec(str(path)))
    assert isinstance(make_sampler(plan), optuna.samplers.RandomSampler)
    assert isinstance(make_pruner(plan.spec), optuna.pruners.PercentilePruner)
    spec = load_spec(str(path), ["sweep.sampler=grid", "sweep.pruner=median"])  # a name replaces all
    assert spec.sampler["_target_"] == "optuna.samplers.GridSampler"
    assert isinstance(make_pruner(spec), optuna.pruners.MedianPruner) and spec.pruner_name == "median"


def test_study_files_in_the_working_directory_extend_and_override_the_shipped_ones(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "conf" / "sweep").mkdir(parents=True)
    (tmp_path / "sweeps" / "loss_comparison.yaml").write_text(
        "description: my own loss comparison\nsearch_space: {loss: 'choice(bce, hinge)'}\n"
    )
    (tmp_path / "conf" / "sweep" / "mine.yaml").write_text(
        "defaults: [optimizer_stability, _self_]\ndescription: mine\nn_trials: 3\n"
    )
    assert main(["sweep=loss_comparison", "--cfg", "job"]) == 0
    out = capsys.readouterr().out
    assert "description: my own loss comparison" in out and "hinge" in out
    spec = load_spec("mine")  # extends the shipped optimizer_stability: its space, its overrides
    assert (spec.n_trials, spec.description, spec.study_name) == (3, "mine", "mine")
    assert "optimizer.g_lr" in spec.space.params and "model=wavegan" in spec.overrides
    assert main(["--help"]) == 0
    help_text = capsys.readouterr().out
    assert "  mine " in help_text and "my own loss comparison" in help_text


def test_cfg_job_prints_the_checked_study_and_a_trials_config_and_runs_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path)
    assert main([f"sweep={path}", "--cfg", "job", "trainer.max_steps=7", "sweep.n_trials=5"]) == 0
    out = capsys.readouterr().out
    assert "study_name: tiny" in out and "n_trials: 5" in out and "optimizer.lr: tag(log" in out
    assert "# training config of a trial" in out and "max_steps: 7" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]  # no database, no Hydra outputs
    assert main(["--cfg", "job"]) == 0  # no study: Hydra's own print of the composed config
    assert "sweep:\n  description: ''" in capsys.readouterr().out


def test_help_lists_the_studies_the_training_groups_and_the_study_keys(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("`wavegan sweep sweep=<name>")
    assert "optimizer_stability" in out and "loss_comparison" in out
    assert "model: audiosynth, dcgan, wavegan" in out and "heartbeat_interval: 10" in out


def test_tab_completion_knows_the_studies_and_their_keys(monkeypatch, capsys):
    monkeypatch.setenv("COMP_LINE", "sweep sweep=optimizer_stab")
    assert main(["--shell-completion", "query=bash"]) == 0
    assert capsys.readouterr().out.split() == ["sweep=optimizer_stability"]
    monkeypatch.setenv("COMP_LINE", "sweep sweep=optimizer_stability sweep.n_t")
    assert main(["--shell-completion", "query=bash"]) == 0
    assert capsys.readouterr().out.split() == ["sweep.n_trials="]


def test_spec_rejects_unknown_file_keys(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("search_space: {optimizer.lr: interval(0, 1)}\nn_trial: 3\n")
    with pytest.raises(ConfigError, match="bad.yaml: n_trial: Key 'n_trial' not in 'SweepSchema'"):
        load_spec(str(path))


def test_yaml_alias_bombs_and_python_tags_are_refused_before_loading(tmp_path, capsys):
    """Issue 13: nine lines whose aliases expand to 9^9 strings would hang OmegaConf; a python/object tag
    would run code under an unsafe loader."""
    bomb = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(bomb) + "\n")
    assert main([f"sweep={path}"]) == 2
    assert "more than 100000 values once its YAML aliases (*name) are expanded" in capsys.readouterr().err
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text(f'sampler: !!python/object/apply:os.system ["touch {tmp_path / "ran"}"]\n')
    assert main([f"sweep={tagged}"]) == 2
    assert "tagged.yaml: not valid YAML" in capsys.readouterr().err and not (tmp_path / "ran").exists()


def test_search_space_bounds_outside_a_keys_range_are_refused_before_any_trial(tmp_path, capsys):
    space = {"penalty.every": "int(interval(1, 1000000000))"}
    assert main([f"sweep={write_study(tmp_path, search_space=space)}"]) == 2
    err = capsys.readouterr().err
    assert "search space: penalty.every: penalty.every=1000000000 must be a finite number" in err
    assert not (tmp_path / "optuna.db").exists()
