"""The search-space syntax (Hydra's sweeper grammar) -> Optuna distributions, and back to overrides."""

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from wavegan.errors import ConfigError
from wavegan.study.search_space import describe, format_value, grid, override, parse_expression, parse_space


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("interval(0, 1)", FloatDistribution(0.0, 1.0)),
        ("interval(0.5, 0.999)", FloatDistribution(0.5, 0.999)),
        ("int(interval(1, 5))", IntDistribution(1, 5)),
        ("tag(log, interval(1e-5, 1e-2))", FloatDistribution(1e-5, 1e-2, log=True)),
        ("tag(log, int(interval(4, 64)))", IntDistribution(4, 64, log=True)),
        ("choice(bce, wgan_gp)", CategoricalDistribution(["bce", "wgan_gp"])),
        ("choice(1, 2.5, true, x)", CategoricalDistribution([1, 2.5, True, "x"])),
        ("8,16,32", CategoricalDistribution([8, 16, 32])),
        ("range(1, 4)", CategoricalDistribution([1, 2, 3])),
        ("range(0, 1, 0.25)", CategoricalDistribution([0, 0.25, 0.5, 0.75])),
        (["bce", "wgan_gp"], CategoricalDistribution(["bce", "wgan_gp"])),
    ],
)
def test_expressions_become_optuna_distributions(expression, expected):
    assert parse_expression("some.key", expression) == expected


@pytest.mark.parametrize("value", [5, 0.5, True, "bce", None])
def test_plain_values_are_fixed_not_searched(value):
    space = parse_space({"a.b": value if value != "bce" else "bce", "c": "interval(0, 1)"})
    assert list(space.params) == ["c"]
    assert space.fixed == {"a.b": value}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("interval(0,", "cannot parse"),
        ("interval(1, 0)", "low < high"),
        ("tag(log, interval(0, 1))", "positive low"),
        ("tag(int, interval(1, 4))", "unknown tag"),
        ("tag(log, choice(1, 2))", "interval"),
        ("choice(a, a)", "twice"),
    ],
)
def test_bad_expressions_are_one_clear_config_error(expression, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_expression("optimizer.lr", expression)
    assert "optimizer.lr" in str(info.value)


def test_bad_key_is_rejected():
    with pytest.raises(ConfigError, match="not a config key"):
        parse_space({"optimizer lr": "interval(0, 1)"})


@pytest.mark.parametrize(
    "value", [1e-4, 0.5, 3, True, False, None, "bce", "wgan_gp", "a b", "1e-3", "true", "x'y"]
)
def test_format_value_round_trips_through_hydras_parser(value):
    parsed = OverridesParser.create().parse_override(override("k", value)).value()
    assert parsed == value and type(parsed) is type(value)


def test_describe_is_the_sweep_syntax_again():
    for expression in ("tag(log, interval(1e-05, 0.01))", "int(interval(1, 5))", "choice(bce, wgan_gp)"):
        assert describe(parse_expression("k", expression)) == expression
    assert format_value(float("inf")) == "+inf"


def test_grid_expands_choices_and_small_int_intervals():
    space = parse_space({"loss": "choice(bce, wgan_gp)", "trainer.n_critic": "int(interval(1, 3))"})
    assert grid(space) == {"loss": ["bce", "wgan_gp"], "trainer.n_critic": [1, 2, 3]}
    with pytest.raises(ConfigError, match="grid needs a finite set"):
        grid(parse_space({"optimizer.lr": "interval(0.1, 1)"}))
