"""Checkpoints (wavegan/training/checkpoints.py): what they hold, a full disk while writing one, and
resuming from the newest complete one when the latest is corrupt, truncated or half written."""

import errno
import logging
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import TINY
from wavegan.cli.app import compose
from wavegan.training import checkpoints
from wavegan.training.run import build_for_training
from wavegan.training.trainer import GANTrainer

REAL = tf.random.uniform((1, 4, 1024, 1), -1, 1, seed=1)


def make_trainer(*overrides: str) -> GANTrainer:
    cfg = compose([*TINY, "loss=hinge", "penalty=r1", "trainer.g_ema=0.9", *overrides])
    generator, discriminator, loss, penalty = build_for_training(cfg)
    return GANTrainer(cfg, generator, discriminator, loss, seed=0, penalty=penalty)


def trained(directory: Path, steps=(2, 4)) -> tuple[GANTrainer, dict[int, list[np.ndarray]]]:
    """A trainer saved at each of `steps`; the values of all its checkpointed model variables at each."""
    trainer = make_trainer()
    manager = checkpoints.manager(checkpoints.training_checkpoint(trainer), directory)
    values = {}
    for step in steps:
        while int(trainer.step.numpy()) < step:
            trainer.iteration(REAL)
        checkpoints.save(manager, step)
        values[step] = [v.numpy().copy() for v in model_variables(trainer)]
    return trainer, values


def model_variables(trainer: GANTrainer) -> list:
    return [*trainer.generator.variables, *trainer.discriminator.variables, *trainer.g_ema.variables]


def restore_into_fresh(directory: Path) -> tuple[GANTrainer, int | None]:
    fresh = make_trainer()
    return fresh, checkpoints.restore_latest_complete(checkpoints.training_checkpoint(fresh), directory)


def test_every_model_variable_is_restored_ema_and_phase_shuffle_seeds_included(tmp_path):
    _, values = trained(tmp_path, steps=(3,))
    fresh, step = restore_into_fresh(tmp_path)
    assert step == 3 and int(fresh.step.numpy()) == 3
    names = [v.path for v in model_variables(fresh)]
    assert any("seed_generator" in n for n in names)  # phase shuffle's RNG state: not trainable
    for name, saved, restored in zip(names, values[3], model_variables(fresh), strict=True):
        np.testing.assert_array_equal(saved, restored.numpy(), err_msg=name)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 16):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


CORRUPTIONS = {
    "truncated data": lambda d: truncate(next(d.glob("ckpt-4.data-*"))),
    "flipped bytes in data": lambda d: flip_bytes(next(d.glob("ckpt-4.data-*"))),
    "truncated index": lambda d: truncate(d / "ckpt-4.index"),
    "empty index": lambda d: (d / "ckpt-4.index").write_bytes(b""),
    "missing data": lambda d: next(d.glob("ckpt-4.data-*")).unlink(),
    "missing index": lambda d: (d / "ckpt-4.index").unlink(),  # found by benchmarks/faults.py at N = 20
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_broken_latest_checkpoint_falls_back_to_the_previous_one_with_a_warning(
    tmp_path, caplog, corruption
):
    _, values = trained(tmp_path)
    CORRUPTIONS[corruption](tmp_path)
    with caplog.at_level(logging.WARNING, logger="wavegan.training.checkpoints"):
        fresh, step = restore_into_fresh(tmp_path)
    assert step == 2 and int(fresh.step.numpy()) == 2
    for saved, restored in zip(values[2], model_variables(fresh), strict=True):
        np.testing.assert_array_equal(saved, restored.numpy())
    assert "ckpt-4" in caplog.text and "not complete" in caplog.text
    assert not list(tmp_path.glob("ckpt-4*")) and list((tmp_path / "unreadable").glob("ckpt-4*"))
    # TensorFlow's own manager works on the repaired folder: the next save goes after ckpt-2
    manager = checkpoints.manager(checkpoints.training_checkpoint(fresh), tmp_path)
    assert Path(manager.latest_checkpoint).name == "ckpt-2"


def test_a_garbled_state_file_is_rewritten_and_the_latest_checkpoint_used(tmp_path):
    trained(tmp_path)
    (tmp_path / "checkpoint").write_bytes(b"\x00\xffnot a text proto {{{")
    fresh, step = restore_into_fresh(tmp_path)
    assert step == 4
    assert Path(tf.train.get_checkpoint_state(str(tmp_path)).model_checkpoint_path).name == "ckpt-4"


def test_no_complete_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    trained(tmp_path)
    for index in tmp_path.glob("ckpt-*.index"):
        index.write_bytes(b"garbage")
    with pytest.raises(checkpoints.CheckpointError, match="no complete checkpoint .* does not start over"):
        restore_into_fresh(tmp_path)
    (tmp_path / "unreadable").rename(tmp_path.parent / "elsewhere")  # gone, but the state file names them
    with pytest.raises(checkpoints.CheckpointError, match="names checkpoints that are gone"):
        restore_into_fresh(tmp_path)


def test_a_save_killed_after_its_merge_leaves_no_staging_folder_after_the_resume(tmp_path):
    """Killed after TensorFlow merged ckpt-4 into place, before it deleted ckpt-4_temp/: the resume uses the
    complete ckpt-4 (never written again) and removes the folder (found by the fault harness)."""
    trained(tmp_path)
    (tmp_path / "ckpt-4_temp").mkdir()
    (tmp_path / "ckpt-4_temp" / "part-00000-of-00001.index").write_bytes(b"merged already")
    fresh, step = restore_into_fresh(tmp_path)
    assert step == 4 and not list(tmp_path.glob("*_temp*"))


def test_a_run_killed_during_its_first_checkpoint_starts_at_step_0(tmp_path):
    (tmp_path / "ckpt-2_temp").mkdir()
    (tmp_path / "ckpt-2_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"half")
    fresh, step = restore_into_fresh(tmp_path)
    assert step is None and int(fresh.step.numpy()) == 0 and not list(tmp_path.iterdir())
    assert restore_into_fresh(tmp_path / "never-written")[1] is None


def test_a_full_disk_while_saving_names_the_folder_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    trainer, _ = trained(tmp_path)
    manager = checkpoints.manager(checkpoints.training_checkpoint(trainer), tmp_path)
    real_save = tf.train.CheckpointManager.save

    def fills_the_disk(self, checkpoint_number=None, **kwargs):
        (Path(self.directory) / f"ckpt-{checkpoint_number}.data-00000-of-00001").write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tf.train.CheckpointManager, "save", fills_the_disk)
    with pytest.raises(checkpoints.CheckpointError) as caught:
        checkpoints.save(manager, 6)
    message = str(caught.value)
    assert message.startswith(f"disk full while writing the step-6 checkpoint to {tmp_path}")
    assert "the step-4 checkpoint is intact" in message and "trainer.resume=true" in message
    assert not list(tmp_path.glob("ckpt-6*"))
    monkeypatch.setattr(tf.train.CheckpointManager, "save", real_save)
    assert restore_into_fresh(tmp_path)[1] == 4
    # TensorFlow's own text for the same failure (it keeps no errno) is recognised too
    assert checkpoints.is_disk_full(tf.errors.ResourceExhaustedError(None, None, "No space left on device"))
