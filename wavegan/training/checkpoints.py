"""A run's checkpoints: what they hold, writing them so a full disk is one clear message, and finding the
latest complete one to resume from.

What a checkpoint holds: the trainer's objects (GANTrainer.checkpoint: optimizers, which hold the trainable
weights, step counters, the latent and noise streams) plus every variable of G, D and the EMA generator,
non-trainable ones included (batch-norm statistics, spectral-norm vectors, phase-shuffle seed states, the
EMA weights: a Keras 3 model is not tracked by tf.train.Checkpoint itself, so without them a resumed run
would continue with fresh ones), and whatever else the run adds (`extra`: the quality monitors' memory).
The data order needs nothing: it is a function of the seed and the step (wavegan/data/pipeline.py).

Complete: TensorFlow writes a checkpoint's files, then names it in the `checkpoint` state file. Resuming
scans the folder for `ckpt-<step>.index` files, newest first, and takes the first whose every tensor
reads back (each carries a CRC32C that TensorFlow checks) and matches the run's objects. A broken one is
moved to `unreadable/` with a warning; if none is complete while the state file names one, resuming
fails with a message instead of starting over.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import tensorflow as tf

from wavegan import failpoints
from wavegan.errors import WaveganError, error_detail, is_disk_full

log = logging.getLogger(__name__)

PREFIX = "ckpt"
KEEP = 2  # checkpoints kept: the newest and one to fall back to
STATE_FILE = "checkpoint"  # TensorFlow's list of the checkpoints it finished writing
UNREADABLE = "unreadable"
_INDEX = re.compile(rf"^{PREFIX}-(\d+)\.index$")
_DATA = re.compile(rf"^{PREFIX}-(\d+)\.data-")


class CheckpointError(WaveganError):
    """No complete checkpoint to resume from, or a checkpoint could not be written."""


def training_checkpoint(trainer, extra: Mapping[str, object] | None = None) -> tf.train.Checkpoint:
    """The trainer's checkpoint plus every model variable and `extra` trackables (see the docstring)."""
    checkpoint = trainer.checkpoint()
    models = {"generator": trainer.generator, "discriminator": trainer.discriminator}
    if trainer.g_ema is not None:
        models["g_ema"] = trainer.g_ema
    for name, model in models.items():
        # Attribute assignment adds a dependency to a tf.train.Checkpoint; the list keeps the model's order.
        setattr(checkpoint, f"{name}_variables", list(model.variables))
    for name, trackable in (extra or {}).items():
        setattr(checkpoint, name, trackable)
    return checkpoint


def manager(checkpoint: tf.train.Checkpoint, directory: Path) -> tf.train.CheckpointManager:
    return tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=KEEP, checkpoint_name=PREFIX)


def save(checkpoints: tf.train.CheckpointManager, step: int) -> None:
    """Write the checkpoint of `step`. On failure nothing half-written is left, the previous checkpoints
    stay, and a full disk is one CheckpointError naming the folder."""
    failpoints.reach("checkpoint.save")
    directory = Path(checkpoints.directory)
    try:
        checkpoints.save(checkpoint_number=step)
    except Exception as exc:
        _remove_partial(directory, step)
        if not is_disk_full(exc):
            raise
        kept = candidates(directory)
        previous = f"the step-{kept[0][0]} checkpoint is intact" if kept else "no earlier checkpoint exists"
        raise CheckpointError(
            f"disk full while writing the step-{step} checkpoint to {directory} "
            f"({error_detail(exc)}); {previous}. Fix: free space on that disk (or point "
            "trainer.checkpoint_dir / WAVEGAN_CHECKPOINT_DIR at another one), then continue with "
            "trainer.resume=true."
        ) from None


def _remove_partial(directory: Path, step: int) -> None:
    for path in directory.glob(f"{PREFIX}-{step}[._]*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def candidates(directory: Path) -> list[tuple[int, str]]:
    """(step, prefix) of every checkpoint whose index file exists, newest first (not yet verified)."""
    found = []
    for path in directory.glob(f"{PREFIX}-*.index") if directory.is_dir() else ():
        match = _INDEX.match(path.name)
        if match:
            found.append((int(match.group(1)), str(path.with_suffix(""))))
    return sorted(found, reverse=True)


def _unindexed_steps(directory: Path, newer_than: int) -> list[int]:
    """Steps above `newer_than` that have a data file but no index file."""
    matches = (_DATA.match(path.name) for path in directory.glob(f"{PREFIX}-*.data-*"))
    steps = {int(m.group(1)) for m in matches if m}
    return sorted((s for s in steps if s > newer_than), reverse=True)


def listed_in_state(directory: Path) -> bool | None:
    """Whether TensorFlow's state file names a finished checkpoint; None when it is unreadable."""
    if not (directory / STATE_FILE).exists():
        return False
    try:
        state = tf.train.get_checkpoint_state(str(directory))
    except Exception:
        return None
    return state is not None and bool(state.model_checkpoint_path)


def _state_names(directory: Path, prefix: str) -> bool:
    """Whether the state file is readable and names `prefix` as the latest checkpoint."""
    try:
        state = tf.train.get_checkpoint_state(str(directory))
    except Exception:
        return False
    return state is not None and Path(state.model_checkpoint_path).name == Path(prefix).name


def verify(prefix: str) -> None:
    """Read every tensor of the checkpoint (TensorFlow checks each one's CRC32C); raises if one fails."""
    reader = tf.train.load_checkpoint(prefix)
    for key in reader.get_variable_to_dtype_map():
        reader.get_tensor(key)


def restore_latest_complete(checkpoint: tf.train.Checkpoint, directory: Path) -> int | None:
    """Restore the newest complete checkpoint in `directory`; its step, or None when no checkpoint was
    ever finished there (a run killed before its first one: it starts at step 0, nothing is lost).

    Raises CheckpointError when checkpoints were finished but none is readable now."""
    problems: list[str] = []
    _remove_save_staging(directory)
    was_listed = listed_in_state(directory)
    found = candidates(directory)
    if found:
        # Data files newer than the newest index: that checkpoint's index was deleted, or its write was cut
        # short. Either way it cannot be read: set it aside by name, as a broken one.
        for step in _unindexed_steps(directory, newer_than=found[0][0]):
            moved = _set_aside(directory, step)
            problems.append(f"ckpt-{step}: no index file")
            log.warning(
                "checkpoint ckpt-%d in %s is not complete (no index file: deleted, or its write was cut "
                "short); moved to %s, trying the one before", step, directory, moved,
            )  # fmt: skip
    for step, prefix in found:
        try:
            verify(prefix)
            checkpoint.restore(prefix).assert_existing_objects_matched()
        except Exception as exc:  # TensorFlow maps read errors to OpError, IndexError, ValueError, ...
            reason = error_detail(exc, 300)
            problems.append(f"ckpt-{step}: {reason}")
            moved = _set_aside(directory, step)
            log.warning(
                "checkpoint ckpt-%d in %s is not complete (%s); moved to %s, trying the one before",
                step, directory, reason, moved,
            )  # fmt: skip
            continue
        if problems:
            log.warning("resuming from ckpt-%d, the newest complete checkpoint", step)
        if problems or not _state_names(directory, prefix):
            _rewrite_state(directory)  # TensorFlow's CheckpointManager reads it and must find this one
        return step
    if problems or was_listed is not False:
        detail = "; ".join(problems) or f"{directory / STATE_FILE} names checkpoints that are gone"
        raise CheckpointError(
            f"no complete checkpoint to resume from in {directory} ({detail}). Nothing was restored, and the "
            "run does not start over by itself. Fix: run without trainer.resume to train from step 0 (this "
            "replaces the checkpoints), or restore the folder from a backup."
        )
    leftovers = [p.name for p in directory.glob(f"{PREFIX}-*")]
    if leftovers:
        log.warning("discarding an interrupted first checkpoint: %s", ", ".join(sorted(leftovers)))
        for path in directory.glob(f"{PREFIX}-*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return None


def _remove_save_staging(directory: Path) -> None:
    """TensorFlow writes a checkpoint's shards into `ckpt-<step>_temp/` and merges them into place; a process
    killed after the merge, before the folder was deleted, leaves it behind beside a complete checkpoint
    that is never written again. No save of this run has begun yet, so any such folder is a dead one's."""
    for path in directory.glob(f"{PREFIX}-*_temp*"):
        log.info("removing %s, left by a checkpoint write that was cut short", path)
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def _set_aside(directory: Path, step: int) -> Path:
    target = directory / UNREADABLE
    target.mkdir(exist_ok=True)
    for path in directory.glob(f"{PREFIX}-{step}[._]*"):
        destination = target / path.name
        if destination.exists():
            shutil.rmtree(destination) if destination.is_dir() else destination.unlink()
        path.rename(destination)
    return target


def _rewrite_state(directory: Path) -> None:
    """The state file names the checkpoints that are left (a broken one was moved away)."""
    remaining = [prefix for _, prefix in sorted(candidates(directory))]
    if remaining:
        # What CheckpointManager itself calls (the public tf.compat.v1 wrapper is deprecated and says so).
        from tensorflow.python.checkpoint.checkpoint_management import update_checkpoint_state_internal

        update_checkpoint_state_internal(
            str(directory), remaining[-1], all_model_checkpoint_paths=remaining, save_relative_paths=True
        )


def write_text_atomically(path: Path, text: str) -> None:
    """A small file that is either the old or the new text, never half of it (rename is atomic)."""
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    partial.write_text(text)
    os.replace(partial, path)
