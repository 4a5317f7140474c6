"""Training end to end: every model x loss pair, determinism, resume, divergence, crashes, bad config,
and what an MLflow run holds."""

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import tensorflow as tf
from mlflow.tracking import MlflowClient

from tests.conftest import REPO_ROOT, TINY
from wavegan.cli.app import compose
from wavegan.errors import ConfigError
from wavegan.training.run import build_for_training, train
from wavegan.training.trainer import GANTrainer

SPEC_TINY = ["model.dim=4", "trainer.batch_size=4", "trainer.n_critic=1"]


def client() -> MlflowClient:
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    return MlflowClient()


def metric_history(run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client().get_metric_history(run_id, key)]


@pytest.mark.parametrize("model", ["wavegan", "dcgan", "audiosynth"])
@pytest.mark.parametrize("loss", ["bce", "wgan_gp", "hinge", "lsgan"])
def test_every_model_trains_with_every_loss(model, loss):
    overrides = [f"model={model}", f"loss={loss}", *SPEC_TINY]
    overrides += ["data.slice_len=1024"] if model == "wavegan" else []
    overrides += ["model.dim=4"] if model == "audiosynth" else []
    cfg = compose(overrides)
    generator, discriminator, gan_loss, penalty = build_for_training(cfg)
    trainer = GANTrainer(cfg, generator, discriminator, gan_loss, seed=0, penalty=penalty)
    real = tf.random.uniform((1, 4, *generator.output_shape[1:]), -1, 1, seed=1)
    g_before = [w.numpy().copy() for w in generator.trainable_weights]
    d_before = [w.numpy().copy() for w in discriminator.trainable_weights]
    for _ in range(2):
        metrics = {k: float(v) for k, v in trainer.iteration(real).items()}
        assert np.isfinite(metrics["d_loss"]) and np.isfinite(metrics["g_loss"])

    def changed(before, model):
        return any(
            not np.array_equal(a, b.numpy()) for a, b in zip(before, model.trainable_weights, strict=True)
        )

    assert changed(g_before, generator) and changed(d_before, discriminator)
    assert int(trainer.step.numpy()) == 2
    if loss == "wgan_gp":
        assert metrics["gradient_penalty"] > 0
    else:
        assert 0.0 <= metrics["d_acc_real"] <= 1.0


def test_run_logs_params_tags_metrics_images_audio_config_and_generator():
    result = train(compose([*TINY, "seed=3"]))
    assert result.outcome == "completed" and result.steps == 4
    run = client().get_run(result.run_id)
    params, tags, metrics = run.data.params, run.data.tags, run.data.metrics
    assert (
        params["model.dim"] == "4"
        and params["optimizer.lr"] == "0.001"
        and params["loss.name"] == "wasserstein"
    )
    assert params["penalty.name"] == "wgan_gp" and params["penalty.weight"] == "10.0"
    assert params["model.d_norm"] == "none" and params["trainer.g_ema"] == "0.0"
    assert "data.store_dir" not in params
    # loss=wgan_gp is the Wasserstein loss with the WGAN-GP penalty: filterable apart
    assert tags["model"] == "wavegan" and tags["loss"] == "wasserstein" and tags["penalty"] == "wgan_gp"
    assert tags["d_norm"] == "none" and tags["g_norm"] == "none" and tags["seed"] == "3"
    assert tags["outcome"] == "completed" and len(tags.get("git_commit", "")) in (0, 40)
    for key in (
        "d_loss",
        "g_loss",
        "wasserstein",
        "gradient_penalty",
        "g_grad_norm",
        "d_grad_norm",
        "samples_per_s",
        "d_loss_rolling_std",
        "g_loss_rolling_std",
    ):
        assert f"train/{key}" in metrics, key
    assert [s for s, _ in metric_history(result.run_id, "train/d_loss")] == [2, 4]
    artifacts = {a.path for a in client().list_artifacts(result.run_id)}
    assert {"config.yaml", "previews", "samples", "model", "images"} <= artifacts
    preview = {a.path for a in client().list_artifacts(result.run_id, "previews/step_000002")}
    assert {
        "previews/step_000002/index.html",
        "previews/step_000002/sample_00.wav",
        "previews/step_000002/spectrograms.png",
    } <= preview
    page = mlflow.artifacts.load_text(f"runs:/{result.run_id}/previews/step_000002/index.html")
    # self-contained: MLflow renders the page in an iframe from its text, where relative links go nowhere
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == 1 + 2 and all(src.startswith("data:") for src in sources)  # image + 2 clips
    assert sources[0].startswith("data:image/png;base64,")
    wav = mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/previews/step_000002/sample_00.wav")
    assert base64.b64decode(sources[1].split(",", 1)[1]) == Path(wav).read_bytes()
    assert "model/generator.keras" in {a.path for a in client().list_artifacts(result.run_id, "model")}
    images = [a.path for a in client().list_artifacts(result.run_id, "images")]
    assert len(images) >= 2  # previews at steps 2 and 4, with a step slider in the UI
    config = mlflow.artifacts.load_text(f"runs:/{result.run_id}/config.yaml")
    assert "slice_len: 1024" in config


def test_same_seed_and_config_give_the_same_losses():
    a = train(compose([*TINY, "seed=5", "tracking.log_model=false"]))
    b = train(compose([*TINY, "seed=5", "tracking.log_model=false"]))
    c = train(compose([*TINY, "seed=6", "tracking.log_model=false"]))
    assert a.history["train/d_loss"] == b.history["train/d_loss"]
    assert a.history["train/g_loss"] == b.history["train/g_loss"]
    assert a.history["train/d_loss"] != c.history["train/d_loss"]


def test_a_thread_setting_tensorflow_can_no_longer_take_is_a_warning(caplog):
    from wavegan.training.trainer import set_op_threads

    tf.constant(1.0) + 1.0  # TensorFlow is running in this process
    set_op_threads(0, 1)  # what it runs with (tests/conftest.py, the defaults): nothing to say
    assert not caplog.records
    set_op_threads(0, 2)
    assert "trainer.inter_op_threads=2 cannot apply" in caplog.text
    assert tf.config.threading.get_inter_op_parallelism_threads() == 1


def test_resume_continues_step_optimizer_and_mlflow_run():
    first = train(compose([*TINY, "seed=7", "trainer.max_steps=4", "tracking.log_model=false"]))
    mlflow.set_experiment("another-experiment")  # an earlier job in this process left another one active
    resumed = train(
        compose([*TINY, "seed=7", "trainer.max_steps=8", "trainer.resume=true", "tracking.log_model=false"])
    )
    assert resumed.run_id == first.run_id and resumed.steps == 8
    steps = [s for s, _ in metric_history(first.run_id, "train/d_loss")]
    assert steps == [2, 4, 6, 8]
    with pytest.raises(ConfigError, match="trainer.resume"):
        train(compose([*TINY, "seed=8", "trainer.resume=true"]))


def test_resume_after_a_death_between_checkpoints_logs_each_step_once_and_keeps_the_history():
    """A run killed after logging past its last checkpoint (issue 13): the re-run steps are not logged
    twice, and the resumed run's stability figures see the points from before the resume."""
    from wavegan.training.run import run_identity

    base = [*TINY, "seed=9", "trainer.log_every=1", "trainer.checkpoint_every=2", "tracking.log_model=false"]
    first = train(compose([*base, "trainer.max_steps=3"]))  # logs steps 1-3, checkpoints at 2 and 3
    ckpt_dir = Path(str(compose(base).trainer.checkpoint_dir)).resolve() / run_identity(compose(base))
    for path in ckpt_dir.glob("ckpt-3*"):  # as if killed after logging step 3, before checkpointing it
        path.unlink()
    tf.compat.v1.train.update_checkpoint_state(str(ckpt_dir), "ckpt-2", ["ckpt-2"])
    resumed = train(compose([*base, "trainer.max_steps=5", "trainer.resume=true"]))
    assert resumed.run_id == first.run_id and resumed.steps == 5
    run = client().get_run(first.run_id)
    for key in [k for k in run.data.metrics if k.startswith("train/")]:
        steps = [s for s, _ in metric_history(first.run_id, key)]
        assert steps == sorted(set(steps)), f"{key} logged a step twice: {steps}"
    assert [s for s, _ in metric_history(first.run_id, "train/d_loss")] == [1, 2, 3, 4, 5]
    assert [s for s, _ in resumed.history["train/d_loss"]] == [1, 2, 3, 4, 5]  # the history before resume too
    assert resumed.history["data/train_clips"][0][0] == 0


def test_resume_restores_the_optimizer_state(tmp_path):
    from wavegan.training.trainer import checkpoint_manager

    cfg = compose(TINY)
    generator, discriminator, loss, penalty = build_for_training(cfg)
    trainer = GANTrainer(cfg, generator, discriminator, loss, seed=0, penalty=penalty)
    real = tf.random.uniform((1, 4, 1024, 1), -1, 1, seed=1)
    for _ in range(3):
        trainer.iteration(real)
    checkpoint_manager(trainer, tmp_path).save()
    generator2, discriminator2, loss2, penalty2 = build_for_training(cfg)
    restored = GANTrainer(cfg, generator2, discriminator2, loss2, seed=0, penalty=penalty2)
    manager = checkpoint_manager(restored, tmp_path)
    manager.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    assert int(restored.step.numpy()) == 3
    assert int(restored.d_optimizer.iterations.numpy()) == int(trainer.d_optimizer.iterations.numpy()) == 3
    for a, b in zip(trainer.d_optimizer.variables, restored.d_optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # the latent stream continues where it stopped
    np.testing.assert_array_equal(trainer.latents.state.numpy(), restored.latents.state.numpy())


@pytest.mark.parametrize("override", ["trainer.loss_bound=1e-9", "optimizer.lr=1e30"])
def test_divergence_ends_the_run_as_a_result(override):
    result = train(compose([*TINY, override, "trainer.max_steps=30", "tracking.log_model=false"]))
    assert result.outcome == "diverged" and result.diverged_step is not None and result.diverged_step < 30
    run = client().get_run(result.run_id)
    assert run.data.tags["outcome"] == "diverged" and run.info.status == "FINISHED"
    assert int(run.data.tags["diverged_step"]) == result.diverged_step


def test_a_crash_is_recorded_as_failed(monkeypatch):
    import wavegan.training.trainer as trainer_module

    def crash(self, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(trainer_module.GANTrainer, "fit", crash)
    with pytest.raises(RuntimeError, match="boom"):
        train(compose([*TINY, "seed=9", "tracking.run_name=crash-test"]))
    runs = client().search_runs(
        [client().get_experiment_by_name("tests").experiment_id], "attributes.run_name = 'crash-test'"
    )
    assert runs[0].info.status == "FAILED" and runs[0].data.tags["outcome"] == "failed"


def test_a_server_lost_while_the_run_is_ended_is_one_message_and_the_run_resumes(monkeypatch):
    """The fault harness's lost-server row found it (issue 13): MLflow's end_run reads the run back from
    the server, so a server lost in the last moment of a run escaped as a traceback (exit 1). Now it is
    the lost-server message, the checkpoint is kept, and resuming ends the same run."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import _tracking_service

    import wavegan.tracking as tracking
    from wavegan.errors import WaveganError

    config = [*TINY, "seed=11", "tracking.log_model=false", "tracking.run_name=lost-at-the-end"]
    original = _tracking_service.client.TrackingServiceClient.set_terminated

    def server_gone(self, run_id, status=None, end_time=None):
        raise MlflowException("API request to http://127.0.0.1:1/api/2.0/mlflow/runs/get failed")

    with monkeypatch.context() as patch:
        patch.setattr(_tracking_service.client.TrackingServiceClient, "set_terminated", server_gone)
        patch.setattr(tracking, "server_unreachable", lambda *a, **k: True)
        with pytest.raises(WaveganError, match="lost the MLflow tracking server .* trainer.resume=true"):
            train(compose(config))
    assert _tracking_service.client.TrackingServiceClient.set_terminated is original
    assert mlflow.active_run() is None
    resumed = train(compose([*config, "trainer.resume=true"]))
    run = client().get_run(resumed.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["outcome"] == "completed"
    assert [s for s, _ in metric_history(resumed.run_id, "train/d_loss")] == [2, 4]


@pytest.mark.parametrize(
    "override, key",
    [
        ("optimizer.lr=-1e-4", "optimizer.lr"),
        ("optimizer.d_lr=0", "optimizer.d_lr"),
        ("optimizer.beta1=1.5", "optimizer.beta1"),
        ("data.slice_len=5000", "data.slice_len"),
        ("trainer.batch_size=0", "trainer.batch_size"),
        ("trainer.batch_size=4096", "trainer.batch_size"),
        ("preprocessing=spectrogram", "preprocessing"),
        ("trainer.n_critic=0", "trainer.n_critic"),
    ],
)
def test_bad_config_fails_before_training_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        train(compose([*TINY, override]))


def _cli(*args: str, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wavegan.train", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_cli_bad_config_is_one_message(tmp_path):
    bad = _cli(*TINY, "optimizer.lr=-1", f"hydra.run.dir={tmp_path}")
    assert bad.returncode == 2 and "optimizer.lr=-1" in bad.stderr and "Traceback" not in bad.stderr
    # the whole of stderr is that one line: printed once, and no TensorFlow/CUDA start-up notices
    assert bad.stderr.strip().splitlines() == [line for line in bad.stderr.splitlines() if "error:" in line]
    assert len(bad.stderr.strip().splitlines()) == 1 and bad.stdout.count("optimizer.lr=-1") == 0
    unknown = _cli(*TINY, "model=nosuchmodel", f"hydra.run.dir={tmp_path}")
    assert unknown.returncode == 2 and "nosuchmodel" in unknown.stderr and "model" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1


def test_cli_diverged_run_exits_zero(tmp_path):
    result = _cli(*TINY, "trainer.loss_bound=1e-9", "tracking.log_model=false", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "DIVERGED" in result.stdout


def test_multirun_gives_one_run_per_job_with_a_common_sweep_id(tmp_path):
    result = _cli(
        "-m",
        *TINY,
        "seed=11,12",
        "tracking.log_model=false",
        "tracking.experiment=multirun-test",
        f"hydra.sweep.dir={tmp_path / 'multi'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    exp = client().get_experiment_by_name("multirun-test")
    runs = client().search_runs([exp.experiment_id])
    jobs = [r for r in runs if r.data.tags.get("kind") != "seed_summary"]
    assert sorted(r.data.tags["seed"] for r in jobs) == ["11", "12"]
    assert len({r.data.tags["sweep_id"] for r in runs}) == 1
    assert all(r.data.tags["outcome"] == "completed" for r in jobs)
    # the two seeds of one setting get an across-seed summary when the multirun ends
    (summary,) = [r for r in runs if r.data.tags.get("kind") == "seed_summary"]
    assert summary.data.metrics["seeds/count"] == 2 and summary.data.metrics["seeds/divergence_rate"] == 0
    assert set(summary.data.tags["member_runs"].split(",")) == {r.info.run_id for r in jobs}


@pytest.mark.parametrize("option", ["trainer.mixed_precision=true", "trainer.xla=true"])
def test_gpu_options_build_and_step_on_the_cpu(option):
    """Mixed precision (loss-scaled float16) and XLA are GPU options; they must at least run here."""
    cfg = compose([*TINY, option])
    generator, discriminator, loss, penalty = build_for_training(cfg)
    trainer = GANTrainer(cfg, generator, discriminator, loss, seed=0, penalty=penalty)
    metrics = {k: float(v) for k, v in trainer.iteration(tf.random.uniform((1, 4, 1024, 1), -1, 1)).items()}
    assert np.isfinite(metrics["d_loss"]) and np.isfinite(metrics["g_loss"])
    if option.startswith("trainer.mixed_precision"):
        assert generator.layers[-1].compute_dtype == "float16"
    compose([*TINY])  # leave the global policy as the next test expects
    from wavegan.training.trainer import configure_tensorflow

    trainer = compose([*TINY]).trainer
    configure_tensorflow(0, False, False, trainer.intra_op_threads, trainer.inter_op_threads)


def test_mlflow_queue_lines_about_a_lost_server_are_left_to_the_one_message():
    """MLflow's background queues log an ERROR line per call that could not reach the server; with the
    server lost the run says so once (above), so those lines are filtered out. Other errors still show."""
    import logging

    import wavegan.tracking as tracking

    tracking.configure()
    for name in tracking.ASYNC_QUEUE_LOGGERS:
        queue_log = logging.getLogger(name)

        def record(text: str, queue_log=queue_log) -> logging.LogRecord:
            return queue_log.makeRecord(queue_log.name, logging.ERROR, __file__, 1, text, None, None)

        lost = "Failed to log run data: API request to http://127.0.0.1:9/x failed: Max retries exceeded"
        assert not queue_log.filter(record(lost))
        assert queue_log.filter(record("Failed to log artifact x.png. Exception: 500 Internal Server Error"))
