"""No secret reaches MLflow: tokens from the environment, config keys marked secret, passwords in URLs
and secret environment values pasted into overrides are masked in params, tags and every artifact."""

from pathlib import Path

from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from tests.conftest import TINY
from wavegan import tracking
from wavegan.cli.app import compose
from wavegan.secret_masking import MASK, mask_text, masked_config
from wavegan.training.run import train

TOKEN = "tok-4f9a0c1e77b2d5aa"  # read through ${oc.env:...}
PASSWORD = "pw-9c2e51b08d4f"  # in a URL
PASTED = "paste-3b7d9e0a1c55"  # the value of a *_API_KEY variable, typed into an override by hand


def test_the_nsynth_token_is_masked_in_params_and_config(monkeypatch):
    monkeypatch.setenv("ACTIVELOOP_TOKEN", TOKEN)
    cfg = compose(["data=nsynth"])
    assert OmegaConf.to_container(cfg, resolve=True)["data"]["token"] == TOKEN  # the source still gets it
    masked = masked_config(cfg)
    assert masked["data"]["token"] == MASK
    assert TOKEN not in OmegaConf.to_yaml(OmegaConf.create(masked))
    assert TOKEN not in str(tracking.flatten(cfg))


def test_urls_env_references_and_pasted_values_are_masked(monkeypatch):
    monkeypatch.setenv("WAVEGAN_TEST_API_KEY", PASTED)
    monkeypatch.setenv("WAVEGAN_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("WAVEGAN_TEST_PLAIN", "not-a-secret-value")
    cfg = OmegaConf.create(
        {
            "a": {"url": f"postgresql+psycopg://alice:{PASSWORD}@127.0.0.1:5432/optuna"},
            "b": {"token_ref": "${oc.env:WAVEGAN_TEST_TOKEN}", "plain_ref": "${oc.env:WAVEGAN_TEST_PLAIN}"},
            "c": [f"run-{PASTED}", 3, None],
            "eval": {"quality_key": "eval/frechet_distance"},  # a key named *key* is not a secret
        }
    )
    masked = masked_config(cfg)
    text = str(masked)
    assert PASSWORD not in text and TOKEN not in text and PASTED not in text
    assert masked["a"]["url"] == "postgresql+psycopg://***@127.0.0.1:5432/optuna"
    assert masked["b"] == {"token_ref": MASK, "plain_ref": "not-a-secret-value"}
    assert masked["c"] == [f"run-{MASK}", 3, None]
    assert masked["eval"]["quality_key"] == "eval/frechet_distance"
    assert PASTED not in mask_text(f"error while reading {PASTED}")


def test_a_training_run_writes_no_secret_to_mlflow(monkeypatch, tmp_path):
    monkeypatch.setenv("WAVEGAN_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("WAVEGAN_TEST_API_KEY", PASTED)
    cfg = compose(
        [
            *TINY,
            "+notes.token=${oc.env:WAVEGAN_TEST_TOKEN}",
            f"+notes.storage=postgresql+psycopg://alice:{PASSWORD}@127.0.0.1:5432/optuna",
            f"+notes.comment=key {PASTED} pasted",
        ]
    )
    result = train(cfg)
    assert result.outcome == "completed"
    client = MlflowClient(tracking.configure())
    run = client.get_run(result.run_id)
    assert run.data.params["notes.token"] == MASK
    seen = [str(run.data.params), str(run.data.tags), run.info.run_name or ""]
    folder = Path(client.download_artifacts(result.run_id, "", str(tmp_path)))
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.name == "config.yaml" for p in files)
    seen += [p.read_bytes().decode("latin-1") for p in files]
    for secret in (TOKEN, PASSWORD, PASTED):
        assert not any(secret in text for text in seen), secret


def _secrets_in(texts: list[str]) -> list[str]:
    return [secret for secret in (TOKEN, PASSWORD, PASTED, LITERAL) if any(secret in t for t in texts)]


LITERAL = "lit-7e1d2c3b4a59"  # typed as data.token, a key marked secret


def test_console_job_log_and_hydra_record_of_a_training_command_hold_no_secret(tmp_path):
    """Issue 13: secrets through every route into `wavegan train`, and a user error that echoes a value:
    stdout, stderr, Hydra's job log and its .hydra record are grepped for them."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    env = os.environ | {"WAVEGAN_TEST_TOKEN": TOKEN, "WAVEGAN_TEST_API_KEY": PASTED}
    routes = [
        "+notes.token=${oc.env:WAVEGAN_TEST_TOKEN}",
        f"+notes.storage=postgresql://alice:{PASSWORD}@127.0.0.1:5432/optuna",
        f"+notes.comment=key {PASTED} pasted",
        f"+data.token={LITERAL}",
    ]
    runs = {
        "run": [*TINY, "trainer.max_steps=2", "tracking.log_model=false", *routes],
        "error": [*TINY, *routes, f"optimizer.lr={PASTED}"],  # a user error that names the value
    }
    seen = []
    for name, overrides in runs.items():
        folder = tmp_path / name
        done = subprocess.run(
            [sys.executable, "-m", "wavegan.train", *overrides, f"hydra.run.dir={folder}"],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == (0 if name == "run" else 2), done.stderr[-2000:]
        seen += [done.stdout, done.stderr]
        files = [p for p in folder.rglob("*") if p.is_file()]
        if name == "run":
            assert {"train.log", "config.yaml", "overrides.yaml", "hydra.yaml"} <= {p.name for p in files}
            assert "${oc.env:WAVEGAN_TEST_TOKEN}" in (folder / ".hydra" / "overrides.yaml").read_text()
        seen += [p.read_text(errors="replace") for p in files]
    assert "***" in "".join(seen)
    assert _secrets_in(seen) == []


def test_a_study_report_and_its_mlflow_copy_hold_no_secret(tmp_path, monkeypatch):
    """A study whose file carries secrets (a pasted value in its description and overrides, a password in
    an override URL, a literal data.token): the report's files and what it logs to MLflow hold none."""
    import optuna
    import yaml

    from tests.study.test_report import add
    from wavegan.study.compose import load_spec
    from wavegan.study.report import build_report, log_report

    monkeypatch.setenv("WAVEGAN_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("WAVEGAN_TEST_API_KEY", PASTED)
    path = tmp_path / "secretive.yaml"
    study_file = {
        "description": f"uses the key {PASTED}",
        "overrides": [
            "+notes.token=${oc.env:WAVEGAN_TEST_TOKEN}",
            f"+notes.url=postgresql://alice:{PASSWORD}@db/optuna",
            f"data.token={LITERAL}",
            f"+notes.comment={PASTED}",
        ],
        "search_space": {"loss": "choice(bce, wgan_gp)"},
        "storage": f"sqlite:///{tmp_path / 'optuna.db'}",
    }
    path.write_text(yaml.safe_dump(study_file))
    spec = load_spec(str(path))
    study = optuna.create_study(study_name="secretive", storage=spec.storage)
    study.set_user_attr("sweep", spec.summary())
    add(study, {"loss": "bce"}, [1.0, 2.0])
    add(study, {"loss": "wgan_gp"}, [3.0, None])
    report = build_report(study, tmp_path / "report")
    files = [p for p in (tmp_path / "report").rglob("*") if p.is_file()]
    seen = [report.text] + [p.read_text(errors="replace") for p in files]
    client = MlflowClient(tracking.configure())
    run = client.create_run(client.create_experiment("secret-report"))
    log_report(report, client, run.info.run_id)
    logged = client.get_run(run.info.run_id)
    seen += [str(logged.data.params), str(logged.data.tags)]
    folder = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "dl")))
    seen += [p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file()]
    seen += [yaml.safe_dump(spec.summary())]  # what the sweep logs as sweep.yaml and keeps in the study
    assert any("uses the key ***" in s for s in seen)
    assert _secrets_in(seen) == []
