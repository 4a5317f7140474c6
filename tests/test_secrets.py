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
