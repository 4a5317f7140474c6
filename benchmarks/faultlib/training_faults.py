"""Faults of a training run: kill -9 anywhere (1), a full disk under its checkpoints or its MLflow
artifacts (4), a corrupt or truncated latest checkpoint (5). Each trial's recovery is `trainer.resume=true`
and its run is compared with an uninterrupted run of the same config (mlflow_checks.py).

The config trains a tiny WaveGAN with everything that carries state across steps switched on: phase
shuffle, a penalty, the generator EMA, n_critic = 2 (two batches per step), previews and sample-quality
evaluation every 2 steps, a checkpoint every 2. Its loss is hinge + R1 because their randomness is
checkpointed on this branch; WGAN-GP's and DRAGAN's draws join the checkpoint with the trainer's
`penalty_noise` generator (issue 11's branch), after which loss=wgan_gp is as reproducible.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

from . import small_disk
from .harness import Trial
from .mlflow_checks import RunRecord, compare, read_run
from .processes import Finished, Workspace, run, template_store

EXPERIMENT = "faults"
MAX_STEPS = 6
CONFIG = [
    "data.num_samples=240",
    "data.slice_len=4096",
    "model.dim=4",
    "loss=hinge",
    "penalty=r1",
    "trainer.g_ema=0.9",
    "trainer.batch_size=4",
    "trainer.n_critic=2",
    f"trainer.max_steps={MAX_STEPS}",
    "trainer.log_every=1",
    "trainer.preview_every=2",
    "trainer.checkpoint_every=2",
    "trainer.num_previews=2",
    "trainer.progress=false",
    "eval.every=2",
    "eval.num_samples=32",
    "eval.classifier.cv_folds=0",
    "tracking.log_model=false",
    f"tracking.experiment={EXPERIMENT}",
    "seed=7",
]
RESUME = [*CONFIG, "trainer.resume=true"]


class Reference:
    """The uninterrupted run every trial is compared with, and what the trials are sized by."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.template = template_store(root / "template.db")
        self.record: RunRecord | None = None
        self.seconds = 0.0
        self.checkpoint_bytes = 0  # one checkpoint's files
        self.artifact_bytes = 0  # the whole run's artifacts

    def ensure(self) -> None:
        if self.record is not None:
            return
        workspace = Workspace.fresh(self.root / "trial", self.data_dir, self.template)
        finished = run(workspace, "train", CONFIG)
        if finished.returncode != 0:
            raise RuntimeError(f"the reference run failed: {finished.tail(20)}")
        self.seconds = finished.seconds
        self.record = read_run(workspace.db, EXPERIMENT)
        folder = next(workspace.checkpoints.glob("*/"))
        self.checkpoint_bytes = sum(p.stat().st_size for p in folder.glob(f"ckpt-{MAX_STEPS}.*"))
        self.artifact_bytes = small_disk.used_bytes(workspace.artifacts)

    def workspace(self, saved: Path | None = None) -> Workspace:
        """The trial workspace: empty, or a copy of `saved` (kept at the same path, as the MLflow store
        and the checkpoint state file name absolute paths)."""
        path = self.root / "trial"
        if saved is None:
            return Workspace.fresh(path, self.data_dir, self.template)
        if path.exists():
            shutil.rmtree(path)
        shutil.copytree(saved, path, symlinks=True)
        return Workspace(path, self.data_dir)


def checkpoint_folder(workspace: Workspace) -> Path | None:
    return next((p.parent for p in workspace.checkpoints.glob("*/mlflow_run_id")), None)


def expect_completed(trial: Trial, finished: Finished, what: str) -> bool:
    if finished.returncode != 0 or f"completed: {MAX_STEPS} steps" not in finished.stdout:
        trial.died(f"{what} exited {finished.returncode}: {finished.tail()}")
        return False
    if "Traceback" in finished.stderr:
        trial.wrong_result(f"{what} printed a traceback")
    return True


def check_checkpoints(trial: Trial, workspace: Workspace, latest: int | None = MAX_STEPS) -> None:
    """Every checkpoint left reads back whole, the newest is `latest`, and none was found broken."""
    import wavegan  # noqa: F401  (deeplake before tensorflow)
    from wavegan.training import checkpoints

    folder = checkpoint_folder(workspace)
    if folder is None:
        trial.lost("no checkpoint folder")
        return
    found = checkpoints.candidates(folder)
    if latest is not None and (not found or found[0][0] != latest):
        trial.lost(f"newest checkpoint {found[0][0] if found else None}, expected ckpt-{latest}")
    for step, prefix in found:
        try:
            checkpoints.verify(prefix)
        except Exception as exc:
            trial.wrong_result(f"ckpt-{step} does not read back: {str(exc)[:100]}")
    leftovers = [p.name for p in folder.glob("ckpt-*") if "_temp" in p.name]
    if leftovers:
        trial.wrong_result(f"half-written checkpoint files left: {leftovers}")


class KillTraining:
    """Fault 1: kill -9 of `wavegan train` at a failpoint (optionally a random moment after it: inside the
    checkpoint write, the MLflow call, the evaluation) or at a random time, then `trainer.resume=true`."""

    name = "kill -9 wavegan train"
    unavailable = None
    # (failpoint, how many times a run reaches it, the longest delay after it in seconds)
    PLACES = (
        ("train.start", 1, 0.05),
        ("train.step", MAX_STEPS, 0.5),
        ("mlflow.log", 10, 0.02),
        ("preview.log", 3, 0.5),
        ("eval", 3, 3.0),
        ("checkpoint.save", 3, 0.05),
    )

    def __init__(self, reference: Reference) -> None:
        self.reference = reference

    def prepare(self, root: Path) -> None:
        self.reference.ensure()

    def trial(self, rng: random.Random, root: Path) -> Trial:
        workspace = self.reference.workspace()
        if rng.random() < 1 / 7:
            at = rng.uniform(0.3, 1.0) * self.reference.seconds
            trial = Trial(f"time {at:.1f} s")
            first = run(workspace, "train", CONFIG, kill_after=at)
        else:
            place, reached, longest = rng.choice(self.PLACES)
            delay = "" if rng.random() < 0.3 else f"+{rng.uniform(0, longest):.3f}"
            trial = Trial(f"{place}@{rng.randint(1, reached)}{delay}")
            first = run(workspace, "train", CONFIG, failpoint=trial.point)
        if first.returncode == 0:
            trial.finished_first()
        elif not first.killed:
            trial.died(f"the run ended with {first.returncode} before the kill: {first.tail()}")
            return trial
        if checkpoint_folder(workspace) is None:  # killed before the run existed: nothing to resume
            trial.point += " (before the run existed)"
            second = run(workspace, "train", CONFIG)
        else:
            second = run(workspace, "train", RESUME)
            if "not complete" in second.stdout + second.stderr:  # Hydra's job log goes to stdout
                trial.wrong_result("a kill left a checkpoint that looked complete but was not")
        if expect_completed(trial, second, "the resumed run"):
            compare(trial, read_run(workspace.db, EXPERIMENT), self.reference.record)
            check_checkpoints(trial, workspace)
        return trial


class CorruptCheckpoint:
    """Fault 5: the newest checkpoint truncated, bit-flipped, emptied or deleted in part (or the state
    file garbled, or every checkpoint broken) in a run killed after it; then `trainer.resume=true`."""

    name = "corrupt latest checkpoint"
    unavailable = None
    KILLED_AT = "train.step@5"  # after ckpt-4 was written (with ckpt-2 kept), before step 5 is logged
    MODES = ("truncate data", "flip bytes in data", "truncate index", "empty index", "delete data",
             "delete index", "garble state file", "break every checkpoint")  # fmt: skip

    def __init__(self, reference: Reference) -> None:
        self.reference = reference
        self.saved: Path | None = None

    def prepare(self, root: Path) -> None:
        self.reference.ensure()
        workspace = self.reference.workspace()
        killed = run(workspace, "train", CONFIG, failpoint=self.KILLED_AT)
        if not killed.killed:
            raise RuntimeError(f"the run to corrupt was not killed at {self.KILLED_AT}: {killed.tail()}")
        self.saved = root / "killed-after-ckpt-4"
        if self.saved.exists():
            shutil.rmtree(self.saved)
        shutil.copytree(workspace.root, self.saved, symlinks=True)

    def trial(self, rng: random.Random, root: Path) -> Trial:
        workspace = self.reference.workspace(self.saved)
        folder = checkpoint_folder(workspace)
        mode = rng.choice(self.MODES)
        trial = Trial(mode)
        for step in (2, 4) if mode == "break every checkpoint" else (4,):
            damage = rng.choice(self.MODES[:6]) if mode == "break every checkpoint" else mode
            corrupt(folder, step, damage, rng)
        resumed = run(workspace, "train", RESUME)
        if mode == "break every checkpoint":
            lines = resumed.stderr.strip().splitlines()
            if resumed.returncode != 2 or len(lines) != 1 or "no complete checkpoint" not in lines[0]:
                trial.died(
                    f"expected one 'no complete checkpoint' error, got {resumed.returncode}: {resumed.tail()}"
                )
            return trial
        if mode != "garble state file" and "ckpt-4 in" not in resumed.stdout + resumed.stderr:
            trial.wrong_result("no warning named the broken ckpt-4")
        if expect_completed(trial, resumed, "the resumed run"):
            compare(trial, read_run(workspace.db, EXPERIMENT), self.reference.record)
            check_checkpoints(trial, workspace)
        return trial


def corrupt(folder: Path, step: int, mode: str, rng: random.Random) -> None:
    data, index = next(folder.glob(f"ckpt-{step}.data-*")), folder / f"ckpt-{step}.index"
    if mode == "truncate data":
        _truncate(data, rng)
    elif mode == "flip bytes in data":
        raw = bytearray(data.read_bytes())
        for at in rng.sample(range(len(raw)), k=min(len(raw), rng.randint(1, 64))):
            raw[at] ^= 1 << rng.randrange(8)
        data.write_bytes(bytes(raw))
    elif mode == "truncate index":
        _truncate(index, rng)
    elif mode == "empty index":
        index.write_bytes(b"")
    elif mode == "delete data":
        data.unlink()
    elif mode == "delete index":
        index.unlink()
    elif mode == "garble state file":
        (folder / "checkpoint").write_bytes(rng.randbytes(rng.randint(1, 200)))


def _truncate(path: Path, rng: random.Random) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: rng.randrange(len(raw))])


class DiskFull:
    """Fault 4: the checkpoint folder or the MLflow artifact folder on a disk that fills up at a random
    point of the run; then space is freed and the run resumed."""

    name = "disk full (checkpoint, artifact)"

    def __init__(self, reference: Reference) -> None:
        self.reference = reference
        self.unavailable = small_disk.unavailable()

    def prepare(self, root: Path) -> None:
        self.reference.ensure()
        self.artifact_template = root / "template-artifact-disk.db"
        if not self.artifact_template.exists():
            shutil.copyfile(self.reference.template, self.artifact_template)
            _create_experiment(self.artifact_template, root / "trial" / "artifact-disk")

    def trial(self, rng: random.Random, root: Path) -> Trial:
        workspace = self.reference.workspace()
        target = rng.choice(("checkpoint", "artifact"))
        if (
            target == "checkpoint"
        ):  # two checkpoints fit, the third (written before the oldest goes) not always
            size = rng.uniform(1.2, 3.0) * self.reference.checkpoint_bytes
            folder = workspace.checkpoints
        else:
            size = rng.uniform(0.05, 0.95) * self.reference.artifact_bytes
            folder = workspace.root / "artifact-disk"
        trial = Trial(f"{target} disk of {small_disk.pages(size)} bytes")
        if target == "artifact":  # the experiment exists, its artifacts on the small disk
            shutil.copyfile(self.artifact_template, workspace.db)
        with small_disk.mounted(folder, size):
            full = run(workspace, "train", CONFIG)
            small_disk.resize(folder, 256 << 20)  # the user frees space
            if full.returncode == 0:
                trial.point += " (it fitted)"
            else:
                lines = full.stderr.strip().splitlines()
                wanted = (
                    "disk full while writing the step-"
                    if target == "checkpoint"
                    else "disk full while writing"
                )
                if (
                    full.returncode != 2
                    or len(lines) != 1
                    or wanted not in lines[0]
                    or str(folder) not in lines[0]
                ):
                    trial.died(
                        f"expected one disk-full message naming {folder}: {full.returncode} {full.tail()}"
                    )
                    return trial
                trial.point += f": {lines[0][7:80]}..."
                resumed = run(workspace, "train", RESUME)
                if not expect_completed(trial, resumed, "the resumed run"):
                    return trial
            compare(trial, read_run(workspace.db, EXPERIMENT), self.reference.record)
            check_checkpoints(trial, workspace)
        return trial


def _create_experiment(db: Path, artifacts: Path) -> None:
    """The trials' experiment in the store `db`, its artifacts in `artifacts` (where each trial mounts its
    small disk). In a process of its own: this one's MLflow would keep an engine on the store's path."""
    code = (
        "import sys; from mlflow.tracking import MlflowClient; "
        "MlflowClient(tracking_uri=sys.argv[1]).create_experiment(sys.argv[2], sys.argv[3])"
    )
    argv = [sys.executable, "-c", code, f"sqlite:///{db}", EXPERIMENT, artifacts.as_uri()]
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
