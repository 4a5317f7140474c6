"""`python -m wavegan.sweep`: studies end to end on tiny configs (a few seconds per trial on a CPU).

The expensive tests run the real command in subprocesses: a study killed with SIGKILL and resumed, and
two worker processes sharing one SQLite study. The in-process ones monkeypatch training to inject a crash.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

import wavegan.training.run
from tests.conftest import REPO_ROOT
from tests.study.studies import write_study
from wavegan.cli.sweep import main
from wavegan.secret_masking import mask_text, mask_url
from wavegan.study import storage as storage_module
from wavegan.study.compose import load_spec
from wavegan.study.plan import plan_study
from wavegan.study.spec import Objective
from wavegan.study.storage import count_trials
from wavegan.study.workers import run_sweep

SECRET = "s3cr3t-pw"


def load(tmp_path: Path, name: str = "tiny") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'optuna.db'}")


def runs_of(experiment: str):
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


def sweep_command(path: Path, *extra: str, **kwargs):
    return [sys.executable, "-m", "wavegan.sweep", f"sweep={path}", *extra]


def run_sweep_cli(path: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    """The sweep command in its own process, as a user runs it."""
    return subprocess.run(
        sweep_command(path, *extra), cwd=cwd, env=_env(), capture_output=True, text=True, timeout=400
    )


# --- errors before any trial -------------------------------------------------------------------------


def test_unknown_search_keys_fail_before_any_trial_naming_them(tmp_path, capsys):
    path = write_study(
        tmp_path,
        search_space={
            "optimizer.lrr": "interval(1e-5, 1e-3)",
            "trainer.bogus": "choice(1, 2)",
            "loss": "choice(bce)",
        },
    )
    assert main([f"sweep={path}"]) == 2
    err = capsys.readouterr().err
    assert "optimizer.lrr (did you mean optimizer.lr?)" in err and "trainer.bogus" in err
    assert "Traceback" not in err
    assert not (tmp_path / "optuna.db").exists()  # nothing was created, no trial ran


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sweep=no_such_study"], "Could not find 'sweep/no_such_study'. Fix: one of loss_comparison"),
        (["sweep=/no/such/study.yaml"], "sweep=/no/such/study.yaml: no study file"),
        (["sweep={path}", "sweep.search_space.loss=choice(bce, nope)"], "no option(s) nope in conf/loss/"),
        (["sweep={path}", "optimizer.lr=1e-3"], "both searched and fixed"),
        (["sweep={path}", "sweep.search_space.optimizer.lr=interval(1,"], "cannot parse optimizer.lr"),
        (["sweep={path}", "sweep.n_trials=many"], "sweep.n_trials: Value 'many' of type 'str' could not be"),
        (["sweep={path}", "sweep.n_trials=0"], "sweep.n_trials=0 must be an integer >= 1"),
        (["sweep={path}", "sweep.sampler.nope=1"], "sweep.sampler.nope: Key 'nope' is not in struct"),
        (["sweep={path}", "+sweep.sampler.nope=1"], "unexpected keyword argument 'nope'"),
        (["sweep={path}", "sweep.objective.direction=down"], "expected one of [minimize, maximize]"),
        (["sweep={path}", "sweep.bogus=1"], "sweep.bogus: Key 'bogus' not in 'SweepSchema'"),
        (["sweep={path}", "+sweep.bogus=1"], "sweep.bogus: Key 'bogus' not in 'SweepSchema'"),
        (["sweep={path}", "sweep.divergence.seed_value=best"], "expected one of [worst, ignore]"),
        (["sweep={path}", "sweep.grace_period=1"], "must exceed sweep.heartbeat_interval"),
        (["sweep={path}", "model=nope"], "Could not find 'model/nope'. Fix: one of audiosynth"),
        (["sweep={path}", "trainer.bogus=1"], "Key 'bogus' not in 'TrainerConfig'"),
        (["sweep={path}", "sweep.search_space.seed=choice(1, 2)"], "`seed` cannot be searched"),
    ],
)
def test_user_errors_are_one_message_and_exit_2(tmp_path, capsys, argv, message):
    path = write_study(tmp_path)
    assert main([a.format(path=path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.count("error:") == 1 and err.startswith("error:")  # printed once, nothing else
    assert not (tmp_path / "optuna.db").exists()


def test_unreachable_storage_is_a_clear_error_without_the_password(tmp_path, capsys):
    path = write_study(tmp_path)
    url = f"postgresql://alice:{SECRET}@127.0.0.1:1/optuna"
    assert main([f"sweep={path}", f"sweep.storage={url}"]) == 2
    captured = capsys.readouterr()
    assert "cannot open the study storage postgresql://***@127.0.0.1:1/optuna" in captured.err
    assert SECRET not in captured.err + captured.out


def test_a_full_disk_under_the_study_database_is_one_message(tmp_path, capsys, monkeypatch):
    """Fault 4 of issue 13 for the study database: SQLite's "database or disk is full" (here injected where
    the study runs, as SQLAlchemy raises it) ends in one message naming the database, exit 2."""
    import sqlalchemy.exc

    import wavegan.study.workers as workers

    def disk_full(*args, **kwargs):
        full = Exception("database or disk is full")
        raise sqlalchemy.exc.OperationalError("INSERT INTO trials ...", {}, full)

    monkeypatch.setattr(workers, "run_sweep", disk_full)
    path = write_study(tmp_path)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert main([f"sweep={path}", f"sweep.storage={url}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: disk full while writing the study database sqlite:///")
    assert "Traceback" not in err
    assert "run the same command again to resume the study" in err and err.count("error:") == 1


def test_masking():
    assert mask_url(f"postgresql://alice:{SECRET}@db:5432/optuna") == "postgresql://***@db:5432/optuna"
    assert (
        mask_url("mysql+pymysql://bob@db/x?password=hunter2&x=1")
        == "mysql+pymysql://***@db/x?password=***&x=1"
    )
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    url = f"postgresql://alice:{SECRET}@db/optuna"
    assert SECRET not in mask_text(f"failed for {SECRET} at db", url)


@pytest.mark.parametrize("name", ["optimizer_stability", "loss_comparison"])
def test_builtin_studies_are_valid(name, capsys):
    plan = plan_study(load_spec(name))
    assert plan.spec.n_trials == plan.n_trials  # a grid is never cut short
    assert plan.spec.divergence["stop_trial"] is False  # divergence rates over a fixed number of seeds
    if name == "loss_comparison":  # every loss x model cell gets the same D-update budget
        assert {int(v.trainer.n_critic) for v in plan.variants} == {5}
    assert main([f"sweep={name}", "--cfg", "job"]) == 0
    assert f"study_name: {name}" in capsys.readouterr().out


# --- counting toward n_trials -----------------------------------------------------------------------


def test_count_trials_counts_results_not_retried_deaths_or_surplus():
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}

    def trial(state, value=None, **kw):
        return optuna.trial.create_trial(
            state=state, params={"x": 0.5}, distributions=dist, value=value, **kw
        )

    study = optuna.create_study()
    study.add_trial(trial(TrialState.COMPLETE, 1.0))  # 0
    study.add_trial(trial(TrialState.FAIL))  # 1: its process died, retried as 3
    study.add_trial(trial(TrialState.PRUNED))  # 2
    study.add_trial(trial(TrialState.WAITING, system_attrs={"failed_trial": 1, "retry_history": [1]}))  # 3
    study.add_trial(trial(TrialState.FAIL, user_attrs={"outcome": "failed"}))  # 4: a crash: counts
    study.add_trial(trial(TrialState.FAIL, user_attrs={"outcome": "surplus"}))  # 5: never counts
    counts = count_trials(study.get_trials())
    assert (counts.done, counts.running, counts.waiting) == (3, 0, 1)
    assert count_trials(study.get_trials(), before=3).done == 2


def test_objective_aggregates_seeds_with_divergences():
    median = Objective("train/x")
    assert median.combine([1.0, 3.0, 2.0], 0, "worst") == 2.0
    assert median.combine([1.0, None, 2.0], 1, "worst") == 2.0  # a diverged seed counts as worst
    assert median.combine([1.0, None, None], 2, "worst") == float("inf")  # the median seed diverged
    assert median.combine([1.0, None, None], 2, "ignore") == 1.0
    assert Objective("divergence_rate").combine([None, 1.0], 1, "worst") == 0.5
    assert Objective("train/x", direction="maximize").worst == float("-inf")


# --- whole studies --------------------------------------------------------------------------------


def test_tiny_study_end_to_end_with_divergence_crash_and_masked_credentials(
    tmp_path, monkeypatch, capsys, caplog
):
    """Three trials: one completes, one diverges (lr=1e6), one crashes (injected); the study goes on,
    records each, writes the report, nests MLflow runs, resumes without repeating anything, and never
    shows the storage password (the URL is a PostgreSQL one; the database under it is SQLite)."""
    url = f"postgresql://alice:{SECRET}@dbhost:5432/optuna"
    real_rdb, sqlite = storage_module._rdb, f"sqlite:///{tmp_path / 'optuna.db'}"
    monkeypatch.setattr(storage_module, "_rdb", lambda _url, **kw: real_rdb(sqlite, **kw))
    real_train = wavegan.training.run.train

    def train(cfg, **kwargs):
        if float(cfg.optimizer.lr) == 2e-4:
            raise RuntimeError(f"injected crash (storage {url})")
        return real_train(cfg, **kwargs)

    monkeypatch.setattr(wavegan.training.run, "train", train)
    path = write_study(
        tmp_path, search_space={"optimizer.lr": "choice(1e-4, 1e6, 2e-4)"}, sampler="grid", storage=url
    )
    spec = load_spec(str(path))
    started = time.perf_counter()
    study = run_sweep(spec)
    print(f"tiny study: {time.perf_counter() - started:.1f} s", file=sys.stderr)

    by_lr = {t.params["optimizer.lr"]: t for t in study.get_trials()}
    assert len(study.get_trials()) == 3
    ok, diverged, crashed = by_lr[1e-4], by_lr[1e6], by_lr[2e-4]
    assert ok.state == TrialState.COMPLETE and ok.user_attrs["outcome"] == "completed"
    assert ok.user_attrs["seed_values"]["median of train/wasserstein"] == [ok.value]
    assert diverged.state == TrialState.PRUNED and diverged.user_attrs["outcome"] == "diverged"
    assert diverged.user_attrs["n_diverged"] == 1 and diverged.user_attrs["divergence_rate"] == 1.0
    for t in (ok, diverged):  # seed counts, wall-clock; train/wasserstein has no real-data reference
        assert (t.user_attrs["seeds_planned"], t.user_attrs["seeds_run"], t.user_attrs["truncated"]) == (
            1,
            1,
            "",
        )
        # seed_seconds are rounded to the millisecond
        assert t.user_attrs["seconds"] >= t.user_attrs["seed_seconds"][0] - 1e-3 > 0
        assert t.user_attrs["seed_references"] == {}
    assert crashed.state == TrialState.FAIL and "injected crash" in crashed.user_attrs["error"]

    runs = runs_of(f"test-{tmp_path.name}")
    studies = [r for r in runs if r.data.tags.get("role") == "study"]
    assert len(studies) == 1 and studies[0].info.status == "FINISHED"
    trial_runs = {r.data.tags["optuna_trial"]: r for r in runs if r.data.tags.get("role") == "trial"}
    assert {r.data.tags["mlflow.parentRunId"] for r in trial_runs.values()} == {studies[0].info.run_id}
    assert trial_runs[str(ok.number)].data.tags["state"] == "complete"
    assert trial_runs[str(diverged.number)].data.tags["state"] == "diverged"
    assert trial_runs[str(crashed.number)].data.tags["state"] == "failed"
    assert trial_runs[str(ok.number)].data.params["optimizer.lr"] == "0.0001"
    seed_runs = [r for r in runs if "sweep_seed_index" in r.data.tags]
    assert {r.data.tags["mlflow.parentRunId"] for r in seed_runs} == {
        trial_runs[str(t.number)].info.run_id for t in (ok, diverged)
    }

    report = tmp_path / "results"
    for name in ("summary.md", "trials.csv", "runs.csv", "settings.csv", "optimization_history.png"):
        assert (report / name).is_file(), name
    assert "1 diverged" in (report / "summary.md").read_text()

    # Resuming a finished study trains nothing and reuses the parent run.
    assert len(run_sweep(spec, report=False).get_trials()) == 3
    assert len([r for r in runs_of(f"test-{tmp_path.name}") if r.data.tags.get("role") == "study"]) == 1

    # The password appears nowhere: output, logs, MLflow params/tags/artifacts, study attrs, report files.
    captured = capsys.readouterr()
    seen = [captured.out, captured.err, caplog.text, json.dumps(load(tmp_path).user_attrs)]
    seen += [json.dumps(t.user_attrs) for t in load(tmp_path).get_trials()]
    client = mlflow.MlflowClient()
    for run in runs_of(f"test-{tmp_path.name}"):
        seen += [json.dumps(run.data.params), json.dumps(run.data.tags)]
        local = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "dl" / run.info.run_id)))
        seen += [
            p.read_text(errors="ignore")
            for p in local.rglob("*")
            if p.suffix in (".yaml", ".md", ".csv", ".json", ".txt", ".html")
        ]
    seen += [p.read_text(errors="ignore") for p in report.glob("*.md")] + [
        p.read_text() for p in report.glob("*.csv")
    ]
    assert any("postgresql://***@dbhost" in s for s in seen)
    assert not [s[:200] for s in seen if SECRET in s]


def test_pruner_stops_a_trial_on_the_intermediate_metric(tmp_path):
    # ThresholdPruner(upper=-1e9) prunes at the first reported value: the wiring, not the policy, is tested.
    path = write_study(
        tmp_path,
        search_space={"optimizer.lr": "choice(1e-4)"},
        seeds=[0, 1],
        n_trials=1,
        pruner={"name": "threshold", "upper": -1e9, "metric": "train/d_loss"},
    )
    (trial,) = run_sweep(load_spec(str(path)), report=False).get_trials()
    assert trial.state == TrialState.PRUNED and trial.user_attrs["outcome"] == "pruned"
    assert trial.user_attrs["seed_outcomes"] == ["pruned"]  # the second seed never ran
    assert list(trial.intermediate_values) == [1]


def test_truncated_seeds_references_and_seconds_are_recorded(tmp_path, monkeypatch):
    """divergence.stop_trial stops a trial's seeds once divergences decide its median: the trial records
    seeds_planned/seeds_run/truncated and the report counts it; each seed's real-data reference (the
    run's eval/reference/<metric>) is recorded. Training is faked: the recording is what is tested."""
    from wavegan.training.run import TrainResult

    def train(cfg, **kwargs):
        seed, diverges = int(cfg.seed), float(cfg.optimizer.lr) > 1
        outcome = "diverged" if diverges and seed < 2 else "completed"
        metrics = {"eval/frechet_distance": 900.0 + seed, "eval/reference/frechet_distance": 25.0}
        metrics["stability/final_over_first"] = 0.25 + 0.1 * seed
        return TrainResult(outcome, f"run-{seed}", 3, 1 if outcome == "diverged" else None, metrics)

    monkeypatch.setattr(wavegan.training.run, "train", train)
    path = write_study(
        tmp_path,
        search_space={"optimizer.lr": "choice(1e-4, 1e6)"},
        sampler="grid",
        seeds=[0, 1, 2],
        n_trials=2,
        objective={"metric": "eval/frechet_distance"},
        divergence={"seed_value": "worst", "stop_trial": True},
    )
    study = run_sweep(load_spec(str(path)))
    by_lr = {t.params["optimizer.lr"]: t for t in study.get_trials()}
    ok, cut = by_lr[1e-4], by_lr[1e6]
    name = "median of eval/frechet_distance"
    assert ok.state == TrialState.COMPLETE and ok.value == 901.0
    assert (ok.user_attrs["seeds_planned"], ok.user_attrs["seeds_run"], ok.user_attrs["truncated"]) == (
        3,
        3,
        "",
    )
    assert ok.user_attrs["seed_references"] == {name: [25.0, 25.0, 25.0]}
    assert ok.user_attrs["seed_learning"] == pytest.approx([0.25, 0.35, 0.45])
    assert len(ok.user_attrs["seed_seconds"]) == 3 and ok.user_attrs["seconds"] > 0
    # Seeds 0 and 1 diverge: the median of three is then infinite whatever seed 2 does, so it never runs.
    assert cut.user_attrs["outcome"] == "diverged" and cut.user_attrs["seed_outcomes"] == ["diverged"] * 2
    assert (cut.user_attrs["seeds_planned"], cut.user_attrs["seeds_run"], cut.user_attrs["truncated"]) == (
        3,
        2,
        "divergence",
    )
    text = (tmp_path / "results" / "summary.md").read_text()
    assert "1 trial(s) ran fewer seeds than planned (1 divergence)" in text
    assert "Reference 25 for every setting" in text


def test_trials_in_one_process_do_not_leak_tensorflow_state(tmp_path):
    """The same parameters twice in one worker give the same objective: nothing carries over."""
    path = write_study(tmp_path, n_trials=2)
    spec = load_spec(str(path))
    study = optuna.create_study(storage=spec.storage, study_name=spec.study_name)
    study.enqueue_trial({"optimizer.lr": 3e-4})
    study.enqueue_trial({"optimizer.lr": 3e-4})
    first, second = run_sweep(spec, report=False).get_trials()
    assert first.state == second.state == TrialState.COMPLETE
    assert first.value == second.value


def _env():
    return dict(os.environ, PYTHONPATH=str(REPO_ROOT), CUDA_VISIBLE_DEVICES="")


def test_killed_study_resumes_with_two_workers_without_losing_or_repeating_trials(tmp_path):
    """SIGKILL mid-study, then the same command with two worker processes on the same SQLite study:
    finished trials stay as they were, the killed one is retried, the study ends with exactly n_trials."""
    path = write_study(tmp_path, n_trials=5)
    log = open(tmp_path / "first.log", "w")  # noqa: SIM115
    first = subprocess.Popen(
        sweep_command(path), cwd=tmp_path, env=_env(), stdout=log, stderr=subprocess.STDOUT
    )
    deadline, trials = time.time() + 240, []
    while time.time() < deadline:
        try:
            trials = load(tmp_path).get_trials()
        except Exception:
            trials = []
        # Kill while trial 1 trains (its MLflow run exists), so the resumed study must close that run too.
        if any(
            t.number == 1 and t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs
            for t in trials
        ):
            break
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    finished = {t.number: (t.state, t.params, t.value) for t in trials if t.state.is_finished()}
    assert finished and 1 not in finished

    second = run_sweep_cli(path, tmp_path, "sweep.n_jobs=2")
    assert second.returncode == 0, second.stderr[-3000:]
    trials = load(tmp_path).get_trials()
    for number, before in finished.items():  # finished trials untouched
        assert (trials[number].state, trials[number].params, trials[number].value) == before
    killed = trials[1]
    assert killed.state == TrialState.FAIL
    (retry,) = [t for t in trials if 1 in t.system_attrs.get("retry_history", [])]
    assert retry.params == killed.params and retry.state == TrialState.COMPLETE
    assert count_trials(trials).done == 5 and len(trials) == 6  # 5 results + the dead attempt
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 5
    assert len({tuple(t.params.items()) for t in trials if t.state == TrialState.COMPLETE}) == 5
    resumed = [t for t in trials if t.number not in finished and t.number != 1]
    assert len({t.user_attrs["worker"] for t in resumed}) == 2  # both workers trained
    runs = runs_of(f"test-{tmp_path.name}")
    assert len([r for r in runs if r.data.tags.get("role") == "study"]) == 1
    trial_runs = [r for r in runs if r.data.tags.get("role") == "trial"]
    assert sorted(int(r.data.tags["optuna_trial"]) for r in trial_runs) == [t.number for t in trials]
    dead = [r for r in trial_runs if r.info.run_id == killed.user_attrs["mlflow_run_id"]]
    assert dead[0].info.status == "KILLED" and dead[0].data.tags["state"] == "failed"
    assert not list(Path(tempfile.gettempdir()).glob(f"wavegan-sweep-ckpt-{first.pid}-*"))  # its checkpoints


@pytest.mark.slow
def test_two_worker_processes_share_one_fresh_sqlite_study(tmp_path):
    path = write_study(tmp_path, n_trials=4)
    result = run_sweep_cli(path, tmp_path, "sweep.n_jobs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = load(tmp_path).get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]  # none lost, none beyond n_trials
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both workers trained
    assert len({tuple(t.params.items()) for t in trials}) == 4  # no parameters repeated across workers


@pytest.mark.slow
def test_two_commands_at_once_share_one_study(tmp_path):
    path = write_study(tmp_path, n_trials=5)
    procs = [
        subprocess.Popen(
            sweep_command(path), cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.wait(timeout=600) == 0, proc.stderr.read()[-3000:]
    trials = load(tmp_path).get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert all(t.state == TrialState.COMPLETE for t in trials)


def test_config_error_in_a_sampled_value_fails_only_that_trial(tmp_path):
    # beta1 in [0, 1) is checked by the training config: a sampled 1.5 fails its trial, not the study.
    path = write_study(
        tmp_path, search_space={"optimizer.beta1": "choice(0.5, 1.5)"}, sampler="grid", n_trials=2
    )
    trials = run_sweep(load_spec(str(path)), report=False).get_trials()
    by_beta = {t.params["optimizer.beta1"]: t for t in trials}
    assert by_beta[0.5].state == TrialState.COMPLETE
    assert by_beta[1.5].state == TrialState.FAIL and "optimizer.beta1=1.5" in by_beta[1.5].user_attrs["error"]


def test_missing_objective_metric_stops_the_study_with_a_clear_message(tmp_path, capsys):
    path = write_study(tmp_path, objective={"metric": "eval/not_logged"}, n_trials=3)
    assert main([f"sweep={path}"]) == 2
    err = capsys.readouterr().err
    assert "'eval/not_logged' was never logged" in err and "train/wasserstein" in err
    (trial,) = load(tmp_path).get_trials()
    assert trial.user_attrs["outcome"] == "aborted" and count_trials([trial]).done == 0  # not a result


def test_a_dead_trials_run_is_closed_whatever_outcome_it_had_recorded(tmp_path, monkeypatch):
    """A worker killed after recording outcome=completed but before closing its trial's MLflow run: the
    trial is failed and retried, and its run (with its seed runs) must not stay RUNNING."""
    from wavegan.study.tracker import Tracker

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    tracker = Tracker("orphans")
    trial_run = tracker.client.create_run(tracker.experiment_id).info.run_id
    seed_run = tracker.client.create_run(
        tracker.experiment_id, tags={"mlflow.parentRunId": trial_run}
    ).info.run_id
    dead = optuna.trial.create_trial(
        state=TrialState.FAIL, user_attrs={"mlflow_run_id": trial_run, "outcome": "completed"}
    )
    tracker.close_orphan(dead)
    assert tracker.client.get_run(trial_run).info.status == "KILLED"
    assert tracker.client.get_run(trial_run).data.tags["state"] == "failed"
    assert tracker.client.get_run(seed_run).info.status == "KILLED"
