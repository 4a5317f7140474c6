"""`wavegan.study.report` on synthetic studies (no training): tables, plots, summary, the command line."""

from html.parser import HTMLParser

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from wavegan.cli.report import main
from wavegan.secret_masking import mask_url
from wavegan.study.report import build_report, log_report, parent_run_for
from wavegan.study.spec import fingerprint

QUALITY = "median of train/wasserstein"
DISTS = {
    "loss": CategoricalDistribution(["bce", "wgan_gp"]),
    "model": CategoricalDistribution(["dcgan", "wavegan"]),
    "optimizer.lr": FloatDistribution(1e-5, 1e-2, log=True),
}


def add(
    study,
    params,
    seed_values,
    state=None,
    reference=None,
    planned=None,
    seconds=None,
    quality=QUALITY,
    learning=None,
):
    """A trial as wavegan.study.runner records it: per-seed values (None = diverged) and divergence
    counts; with `reference` each seed's real-data reference, with `planned` > len(seed_values) a
    truncated trial."""
    outcomes = ["diverged" if v is None else "completed" for v in seed_values]
    finite = [v for v in seed_values if v is not None]
    n_div = outcomes.count("diverged")
    value = float(np.median([np.inf if v is None else v for v in seed_values]))
    outcome = "completed" if np.isfinite(value) else "diverged"
    state = state or (TrialState.COMPLETE if outcome == "completed" else TrialState.PRUNED)
    attrs = {
        "outcome": outcome if state != TrialState.FAIL else "failed",
        "seeds": list(range(len(seed_values))),
        "seed_outcomes": outcomes,
        "seed_values": {quality: list(seed_values)},
        "n_diverged": n_div,
        "divergence_rate": n_div / len(seed_values),
    }
    if reference is not None:
        attrs["seed_references"] = {quality: [reference] * len(seed_values)}
    if planned is not None:
        attrs |= {
            "seeds_planned": planned,
            "seeds_run": len(seed_values),
            "truncated": "divergence" if planned > len(seed_values) else "",
        }
    if learning is not None:
        attrs["seed_learning"] = list(learning)
    if seconds is not None:
        attrs |= {"seconds": seconds * len(seed_values), "seed_seconds": [seconds] * len(seed_values)}
    study.add_trial(
        optuna.trial.create_trial(
            state=state,
            params=params,
            distributions={k: DISTS[k] for k in params},
            value=value if state == TrialState.COMPLETE else None,
            user_attrs=attrs,
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
        "comparisons.csv",
        "optimization_history.png",
        "parallel_coordinate.png",
        "slice.png",
        "optimization_history.html",
        "parallel_coordinate.html",
        "slice.html",
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

    # Intervals per setting: Wilson for 6/9 diverged, a bootstrap interval around the median.
    assert (cell.iloc[0]["rate_ci_low"], cell.iloc[0]["rate_ci_high"]) == pytest.approx(
        (0.354, 0.879), abs=1e-3
    )
    assert cell.iloc[0]["median_ci_low"] <= cell.iloc[0]["median"] <= cell.iloc[0]["median_ci_high"]
    assert cell.iloc[0]["quality_runs"] == 3 and cell.iloc[0]["trials"] == 3

    text = (tmp_path / "summary.md").read_text()
    assert text == report.text
    assert "36 seed run(s), 6 diverged (17%, 95 % interval [8%, 32%])" in text
    assert "Every trial ran all its planned seeds" in text
    # 12 trials over 3 parameters: no importances (needs 30), and no "best trial" ranking.
    assert "not reported: 9 complete trial(s) is too few for importances" in text
    assert "param_importances.png" not in names and "Best trial" not in text
    assert "param_importances.html" not in names
    # loss: 6/18 vs 0/18 diverged; Wilson [16%, 56%] and [0%, 18%] overlap: not ranked for stability.
    assert "6/18 at loss=bce vs 0/18 at loss=wgan_gp (not distinguishable)" in text
    assert "Most important for stability" not in text and "nothing is ranked for stability" in text
    assert "| loss x model | loss=bce model=dcgan | 3 | 0 | 9 | 6 | 0.6667 | [35%, 88%] | 3 |" in text
    # Pairwise: bce/dcgan's 6/9 against 0/9 elsewhere is apart; the qualities all overlap.
    assert (
        "- loss=bce model=dcgan vs loss=wgan_gp model=dcgan: quality not distinguishable with 3 and 9 seeds; "
        "divergence rate distinguishable, lower: loss=wgan_gp model=dcgan." in text
    )
    assert "every setting's 95 % interval overlaps that of the lowest" in text
    comparisons = pd.read_csv(tmp_path / "comparisons.csv")
    assert len(comparisons[comparisons["parameter"] == "loss x model"]) == 6
    assert report.metrics["runs/divergence_rate"] == pytest.approx(6 / 36)


def test_too_few_trials_is_a_note_not_an_error(tmp_path):
    study = optuna.create_study(study_name="few")
    report = build_report(study, tmp_path / "empty")
    assert "0 trial(s)" in report.text and (tmp_path / "empty" / "trials.csv").is_file()
    add(study, {"loss": "bce"}, [1.0])
    add(study, {"loss": "wgan_gp"}, [None])
    report = build_report(study, tmp_path / "two")
    assert "not reported: 1 complete trial(s) is too few for importances" in report.text
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
    assert {"pareto_front.png", "pareto_front.html"} <= {p.name for p in report.files}
    assert "1 failed" in report.text and "Pareto front" in report.text


def test_report_command(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    loss_grid_study(storage, name="grid")
    out = tmp_path / "out"
    argv = [f"report.storage={storage}", "report.study=grid", f"report.out={out}", "report.mlflow=false"]
    assert main(argv) == 0
    assert (out / "summary.md").is_file() and "# Study grid" in capsys.readouterr().out
    assert main([f"report.storage={storage}", "report.study=nope"]) == 2
    err = capsys.readouterr().err
    assert "no study 'nope'" in err and "grid" in err and err.count("error:") == 1
    assert main(["report.storage=postgresql://alice:s3cr3t@127.0.0.1:1/x", "report.study=grid"]) == 2
    err = capsys.readouterr().err
    assert "s3cr3t" not in err and "postgresql://***@127.0.0.1:1/x" in err
    assert main([]) == 2
    assert "which study?" in capsys.readouterr().err
    assert main(["--storage", storage]) == 2  # the old flags are gone: Hydra's usage error


def test_report_command_reads_the_study_file(tmp_path, capsys):
    """`sweep=<study file>`: storage, study name and folder come from the file, `sweep.*` overrides them."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    loss_grid_study(storage, name="grid")
    study = tmp_path / "grid_study.yaml"
    study.write_text(f"search_space: {{loss: 'choice(bce, wgan_gp)'}}\nstorage: {storage}\nstudy_name: x\n")
    argv = [f"sweep={study}", f"sweep.results_dir={tmp_path / 'res'}", "report.mlflow=false"]
    assert main([*argv, "sweep.study_name=grid"]) == 0
    assert (tmp_path / "res" / "summary.md").is_file()
    assert main(argv) == 2 and "no study 'x'" in capsys.readouterr().err
    assert main(["sweep=grid_study"]) == 2  # a name, not a path: looked up in sweeps/ only
    assert "Could not find 'sweep/grid_study'" in capsys.readouterr().err
    assert main(["--help"]) == 0
    help_text = capsys.readouterr().out
    assert "report:\n  storage: null" in help_text and "optimizer_stability" in help_text


FD = "median of eval/frechet_distance"
FD_DISTS = {"loss": CategoricalDistribution(["bce", "wgan_gp"])}


def two_settings(bce, wgan, **kwargs):
    """Two settings of `loss`, one trial of len(values) seeds each, on the Fréchet distance."""
    study = optuna.create_study(study_name="two")
    study.set_metric_names([FD])
    study.set_user_attr("sweep", {"seeds": [0, 1, 2, 3, 4], "sampler": {"name": "grid"}})
    for loss, values in (("bce", bce), ("wgan_gp", wgan)):
        add(study, {"loss": loss}, values, quality=FD, **kwargs)
    return study


def test_overlapping_settings_are_not_distinguishable_and_not_ranked(tmp_path):
    study = two_settings([900.0, 1500.0, 1200.0, 2000.0, 800.0], [1000.0, 1400.0, 1100.0, 1800.0, 950.0])
    report = build_report(study, tmp_path)
    assert "- loss=bce vs loss=wgan_gp: quality not distinguishable with 5 seeds each;" in report.text
    assert "divergence rate not distinguishable with 5 seeds each." in report.text
    assert "no setting is ranked" in report.text and " is best" not in report.text
    assert "not ranked above them" in report.text  # the best trial is not a ranking either
    assert "a grid study runs every combination once" in report.text


def test_settings_far_apart_are_distinguishable_and_ranked(tmp_path):
    study = two_settings([900.0, 1500.0, 1200.0, 2000.0, 800.0], [30.0, 31.0, 29.0, 33.0, 28.0])
    report = build_report(study, tmp_path)
    assert "- loss=bce vs loss=wgan_gp: quality distinguishable, better: loss=wgan_gp;" in report.text
    assert "eval/frechet_distance (median over seed runs): loss=wgan_gp is best, 30 [" in report.text
    assert "its interval is apart from every other complete trial's" in report.text
    comparisons = pd.read_csv(tmp_path / "comparisons.csv")
    assert (
        comparisons.iloc[0]["quality_distinguishable"]
        and comparisons.iloc[0]["better_quality"] == "loss=wgan_gp"
    )
    # Divergence: 5/5 against 0/5 is apart; Wilson [57%, 100%] vs [0%, 43%].
    diverging = two_settings([None] * 5, [30.0, 31.0, 29.0, 33.0, 28.0])
    text = build_report(diverging, tmp_path / "div").text
    assert "divergence rate distinguishable, lower: loss=wgan_gp" in text
    assert "Divergence rate: loss=wgan_gp is best, 0% [0%, 43%]" in text


def test_reference_line_is_drawn_and_tabled(tmp_path):
    study = two_settings([900.0, 1500.0, 1200.0], [1000.0, 1400.0, 1100.0], reference=27.0, seconds=12.0)
    report = build_report(study, tmp_path)
    drawn = report.plots["objective_by_loss.png"]
    assert drawn["reference"] == 27.0 and drawn["references"] == [27.0, 27.0]
    assert drawn["log_scale"]  # 27 against ~1000: a log axis shows both
    assert report.plots["optimization_history.png"]["reference"] == 27.0
    assert report.plots["optimization_history.html"]["reference"] == 27.0
    assert (
        "real-data reference 27 (held-out real clips: the ceiling)"
        in (tmp_path / "optimization_history.html").read_text()
    )
    assert "Reference 27 for every setting" in report.text
    assert "Caution: with 3 seed run(s) a bootstrap interval of a median is at most [min, max]" in report.text
    assert "Setting medians are 40.7x-44.4x their reference: far from the ceiling" in report.text
    settings = pd.read_csv(tmp_path / "settings.csv")
    assert settings["reference"].tolist() == [27.0, 27.0] and settings["seconds_per_run"].tolist() == [12, 12]
    assert "Wall-clock per seed run: median 12.0 s" in report.text
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert runs["reference"].tolist() == [27.0] * 6


def test_learning_bar_is_counted_per_setting(tmp_path):
    """final/first per seed (stability/final_over_first): a run learned at or below a third."""
    study = optuna.create_study(study_name="learn")
    study.set_metric_names([FD])
    study.set_user_attr("sweep", {"seeds": [0, 1, 2, 3], "sampler": {"name": "grid"}})
    for loss, values, learning in (
        ("bce", [900.0, 800.0, 700.0, 600.0], [0.2, 0.3, 0.5, None]),
        ("wgan_gp", [500.0, 400.0, 450.0, 420.0], [0.1, 0.2, 1 / 3, 0.25]),
    ):
        add(study, {"loss": loss}, values, quality=FD, reference=27.0, learning=learning)
    report = build_report(study, tmp_path)
    settings = pd.read_csv(tmp_path / "settings.csv").set_index("setting")
    assert (
        settings.loc["loss=bce", "learning_runs"] == 3 and settings.loc["loss=bce", "learned_rate"] == 2 / 3
    )
    assert settings.loc["loss=wgan_gp", "learned_rate"] == 1.0  # exactly a third counts
    assert settings.loc["loss=bce", "final_over_first"] == pytest.approx(0.3)
    assert (
        "Learning bar (the last evaluation's quality at most a third of the first's): 6 of 7 seed runs "
        in (report.text)
    )
    assert (
        "loss=bce 2/3 [21%, 94%]" in report.text and "most runs trained long enough to learn" in report.text
    )
    assert pd.read_csv(tmp_path / "runs.csv")["final_over_first"].isna().sum() == 1
    barely = optuna.create_study(study_name="barely")
    barely.set_metric_names([FD])
    barely.set_user_attr("sweep", {"seeds": [0, 1], "sampler": {"name": "grid"}})
    for loss in ("bce", "wgan_gp"):
        add(barely, {"loss": loss}, [900.0, 800.0], quality=FD, reference=27.0, learning=[0.9, 0.5])
    assert "0 of 4 seed runs met it; most runs did not" in build_report(barely, tmp_path / "b").text


def test_different_ceilings_are_shown_per_setting(tmp_path):
    study = optuna.create_study(study_name="ceilings")
    study.set_metric_names([FD])
    add(study, {"loss": "bce"}, [100.0, 120.0], quality=FD, reference=20.0)
    add(study, {"loss": "wgan_gp"}, [100.0, 120.0], quality=FD, reference=60.0)
    report = build_report(study, tmp_path)
    assert report.plots["objective_by_loss.png"]["references"] == [20.0, 60.0]
    band = report.plots["optimization_history.html"]  # a band over the ceilings, on the Plotly page too
    assert (band["reference_low"], band["reference_high"]) == (20.0, 60.0)
    assert (
        "Ceilings differ by setting, so compare each setting against its own: loss=bce 20; loss=wgan_gp 60"
        in (report.text)
    )


def test_truncated_trials_are_counted_and_rates_use_seeds_run(tmp_path):
    study = optuna.create_study(study_name="truncated")
    study.set_metric_names([FD])
    add(study, {"loss": "bce"}, [None, None], quality=FD, planned=3)  # stopped after 2 of 3 seeds
    add(study, {"loss": "wgan_gp"}, [30.0, 31.0, 29.0], quality=FD, planned=3)
    report = build_report(study, tmp_path)
    assert "1 trial(s) ran fewer seeds than planned (1 divergence)" in report.text
    assert report.metrics["trials/truncated"] == 1
    trials = pd.read_csv(tmp_path / "trials.csv", keep_default_na=False)
    assert trials["seeds_planned"].tolist() == [3, 3] and trials["seeds_run"].tolist() == [2, 3]
    assert trials["truncated"].tolist() == ["divergence", ""]
    settings = pd.read_csv(tmp_path / "settings.csv")
    bce = settings[settings["setting"] == "loss=bce"].iloc[0]
    assert (bce["runs"], bce["diverged"], bce["truncated_trials"]) == (2, 2, 1)  # over the seeds run


def test_importances_are_reported_only_with_enough_trials(tmp_path):
    study = optuna.create_study(study_name="many")
    study.set_metric_names([FD])
    rng = np.random.default_rng(0)
    for _ in range(20):  # one parameter: the floor of 20 trials
        lr = float(10 ** rng.uniform(-5, -2))
        add(study, {"optimizer.lr": lr}, [1000 * lr + 1, 1000 * lr + 2], quality=FD)
    report = build_report(study, tmp_path)
    assert "fANOVA importance: optimizer.lr 1.00" in report.text
    assert {"param_importances.png", "param_importances.html"} <= {p.name for p in report.files}
    study = optuna.create_study(study_name="fewer")
    for _ in range(19):
        add(study, {"optimizer.lr": float(10 ** rng.uniform(-5, -2))}, [1.0, 2.0], quality=FD)
    assert "not reported: 19 complete trial(s) is too few" in build_report(study, tmp_path / "few").text


class ExternalReferences(HTMLParser):
    """Every src/href of a page's tags that is not a data: URI (script bodies are not parsed as tags)."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.found += [
            f"<{tag} {k}={v}>" for k, v in attrs if k in ("src", "href") and v and not v.startswith("data:")
        ]


def test_plotly_pages_are_self_contained_and_logged_to_the_parent_run(tmp_path):
    """MLflow shows an HTML artifact in an iframe built from its text: a page that loads plotly.js from a
    CDN or a relative path shows nothing there. Each page inlines plotly.js and is logged with the rest."""
    from mlflow.tracking import MlflowClient

    from wavegan import tracking

    study = loss_grid_study()
    assert parent_run_for(study) == (None, None)  # no parent run recorded: nothing to log to
    uri = tracking.configure()
    client = MlflowClient()
    experiment = client.create_experiment("report-test", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    study.set_user_attr("mlflow_parent_runs", {fingerprint(mask_url(uri)): run_id})
    client, found = parent_run_for(study)
    assert found == run_id

    report = build_report(study, tmp_path / "report")
    pages = [p for p in report.files if p.suffix == ".html"]
    assert {p.name for p in pages} == {"optimization_history.html", "parallel_coordinate.html", "slice.html"}
    for page in pages:
        text = page.read_text()
        parser = ExternalReferences()
        parser.feed(text)
        assert parser.found == [], (page.name, parser.found)
        assert "plotly.js v" in text and "Plotly.newPlot" in text  # the library itself, and the figure

    log_report(report, client, run_id)
    logged = {a.path for a in client.list_artifacts(run_id, "report")}
    assert logged == {f"report/{p.name}" for p in report.files}
