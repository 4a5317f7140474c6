"""`wavegan.report` on synthetic studies (no training): tables, plots, summary, the command line."""

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from wavegan.report import build_report, main

QUALITY = "median of train/wasserstein"
DISTS = {
    "loss": CategoricalDistribution(["bce", "wgan_gp"]),
    "model": CategoricalDistribution(["dcgan", "wavegan"]),
    "optimizer.lr": FloatDistribution(1e-5, 1e-2, log=True),
}


def add(study, params, seed_values, state=None, n=None):
    """A trial as wavegan.sweep records it: per-seed values (None = diverged) and divergence counts."""
    outcomes = ["diverged" if v is None else "completed" for v in seed_values]
    finite = [v for v in seed_values if v is not None]
    n_div = outcomes.count("diverged")
    value = float(np.median([np.inf if v is None else v for v in seed_values]))
    outcome = "completed" if np.isfinite(value) else "diverged"
    state = state or (TrialState.COMPLETE if outcome == "completed" else TrialState.PRUNED)
    study.add_trial(
        optuna.trial.create_trial(
            state=state,
            params=params,
            distributions={k: DISTS[k] for k in params},
            value=value if state == TrialState.COMPLETE else None,
            user_attrs={
                "outcome": outcome if state != TrialState.FAIL else "failed",
                "seeds": list(range(len(seed_values))),
                "seed_outcomes": outcomes,
                "seed_values": {QUALITY: list(seed_values)},
                "n_diverged": n_div,
                "divergence_rate": n_div / len(seed_values),
            },
        )
    )
    return finite


def loss_grid_study(storage=None, name="grid"):
    study = optuna.create_study(storage=storage, study_name=name)
    study.set_metric_names([QUALITY])
    study.set_user_attr("sweep", {"description": "synthetic", "seeds": [0, 1, 2]})
    rng = np.random.default_rng(0)
    for i in range(12):
        loss, model = ["bce", "wgan_gp"][i % 2], ["dcgan", "wavegan"][(i // 2) % 2]
        lr = float(10 ** rng.uniform(-5, -2))
        # BCE diverges in 2 of 3 seeds on DCGAN; WGAN-GP never does.
        values = [1.0 + i, None, None] if (loss, model) == ("bce", "dcgan") else [1.0 + i, 2.0 + i, 3.0 + i]
        add(study, {"loss": loss, "model": model, "optimizer.lr": lr}, values)
    return study


def test_report_tables_plots_and_summary(tmp_path):
    study = loss_grid_study()
    report = build_report(study, tmp_path)
    names = {p.name for p in report.files}
    for expected in (
        "summary.md",
        "trials.csv",
        "runs.csv",
        "settings.csv",
        "optimization_history.png",
        "param_importances.png",
        "parallel_coordinate.png",
        "slice.png",
        "objective_by_loss.png",
        "objective_by_model.png",
        "objective_by_loss_model.png",
        "divergence_by_loss.png",
        "divergence_by_loss_model.png",
        "divergence_by_optimizer.lr.png",
    ):
        assert expected in names, expected
        assert (tmp_path / expected).stat().st_size > 0

    trials = pd.read_csv(tmp_path / "trials.csv")
    assert len(trials) == 12 and set(trials["outcome"]) == {"completed", "diverged"}
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert len(runs) == 36 and runs["diverged"].sum() == 6

    settings = pd.read_csv(tmp_path / "settings.csv")
    cell = settings[
        (settings["parameter"] == "loss x model") & (settings["setting"] == "loss=bce model=dcgan")
    ]
    assert cell.iloc[0][["runs", "diverged"]].tolist() == [9, 6]
    assert cell.iloc[0]["median"] == pytest.approx(np.median([1, 5, 9]))  # non-diverged runs only
    wgan = settings[(settings["parameter"] == "loss") & (settings["setting"] == "loss=wgan_gp")].iloc[0]
    assert wgan["divergence_rate"] == 0 and wgan["runs"] == 18
    values = [1.0 + i + s for i in range(1, 12, 2) for s in range(3)]
    assert wgan["iqr"] == pytest.approx(np.percentile(values, 75) - np.percentile(values, 25))
    assert len(settings[settings["parameter"] == "optimizer.lr"]) == 3  # terciles of a numeric parameter

    text = (tmp_path / "summary.md").read_text()
    assert text == report.text
    assert "36 seed run(s), 6 diverged" in text
    assert "Most important for stability: loss x" not in text and "Most important for stability: " in text
    assert "| loss x model | loss=bce model=dcgan | 9 | 6 |" in text
    assert report.metrics["runs/divergence_rate"] == pytest.approx(6 / 36)


def test_too_few_trials_is_a_note_not_an_error(tmp_path):
    study = optuna.create_study(study_name="few")
    report = build_report(study, tmp_path / "empty")
    assert "0 trial(s)" in report.text and (tmp_path / "empty" / "trials.csv").is_file()
    add(study, {"loss": "bce"}, [1.0])
    add(study, {"loss": "wgan_gp"}, [None])
    report = build_report(study, tmp_path / "two")
    assert "importances need at least" in report.text
    assert any("param_importances.png skipped" in n for n in report.notes)
    assert (tmp_path / "two" / "optimization_history.png").is_file()


def test_failed_and_multi_objective_studies_report(tmp_path):
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.set_metric_names([QUALITY, "divergence_rate"])
    for i in range(5):
        study.add_trial(
            optuna.trial.create_trial(
                params={"optimizer.lr": [1e-5, 1e-4, 3e-4, 1e-3, 5e-3][i]},
                distributions={"optimizer.lr": DISTS["optimizer.lr"]},
                values=[float(i), 1.0 / (i + 1)],
                user_attrs={
                    "outcome": "completed",
                    "seed_outcomes": ["completed"],
                    "divergence_rate": 0.0,
                    "n_diverged": 0,
                    "seed_values": {QUALITY: [float(i)]},
                    "seeds": [0],
                },
            )
        )
    study.add_trial(
        optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={"outcome": "failed", "error": "boom"})
    )
    report = build_report(study, tmp_path)
    assert "pareto_front.png" in {p.name for p in report.files}
    assert "1 failed" in report.text and "Pareto front" in report.text


def test_report_command(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    loss_grid_study(storage, name="grid")
    assert main(["--storage", storage, "--study", "grid", "--out", str(tmp_path / "out"), "--no-mlflow"]) == 0
    assert (tmp_path / "out" / "summary.md").is_file() and "# Study grid" in capsys.readouterr().out
    assert main(["--storage", storage, "--study", "nope"]) == 2
    assert "no study 'nope'" in capsys.readouterr().err and "grid" in capsys.readouterr().err + "grid"
    assert main(["--storage", "postgresql://alice:s3cr3t@127.0.0.1:1/x", "--study", "grid"]) == 2
    err = capsys.readouterr().err
    assert "s3cr3t" not in err and "postgresql://***@127.0.0.1:1/x" in err
    assert main([]) == 2
