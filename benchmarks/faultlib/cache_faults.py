"""Fault 2: kill -9 while a cache is built: the data store (ingestion, `wavegan data`), the feature cache
(`wavegan data`), the classifier cache (`wavegan evaluate`). Each is built under a partial name and
renamed into place when complete (wavegan/atomic.py), so after a kill the cache under its own name is
either absent or complete, and the next command builds or reuses it.

The feature build is killed at its failpoint (wavegan/failpoints.py, between splits, or a random moment
after one); the store and the classifier are killed a random time after their partial folder appears,
within the time an uninterrupted build takes. The rebuilt cache is compared with an uninterrupted build:
the store's rows and summary, the features' arrays, the evaluation figures the classifier gives.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path

import numpy as np

from .harness import Trial
from .processes import Finished, Workspace, run, template_store

CONFIG = ["data.num_samples=240", "data.slice_len=4096", "data.seed=99"]  # a store of its own
EVAL = ["eval.num_samples=32", "eval.classifier.cv_folds=0", "eval.classifier.cnn.epochs=6"]
TARGETS = ("store", "features", "classifier")


def _json_line(finished: Finished) -> dict:
    return json.loads(finished.stdout.strip().splitlines()[-1])


class KillCaching:
    name = "kill -9 cache builds"
    unavailable = None

    def __init__(self) -> None:
        self.root: Path | None = None
        self.seconds: dict[str, float] = {}
        self.figures: dict = {}

    # -- the uninterrupted build --------------------------------------------------------------------------

    def prepare(self, root: Path) -> None:
        self.root = root
        self.template = template_store(root / "template.db")
        self.samples = root / "generated"
        if not self.samples.is_dir():
            import soundfile as sf

            self.samples.mkdir()
            noise = np.random.default_rng(0).uniform(-0.5, 0.5, (4, 4096)).astype(np.float32)
            for i, clip in enumerate(noise):
                sf.write(self.samples / f"clip_{i}.wav", clip, 16000)
        reference = self.workspace("cache-reference", None)
        for command, args in (("data", CONFIG), ("evaluate", self.evaluate_args())):
            started = time.perf_counter()
            finished = run(reference, command, args)
            if finished.returncode != 0:
                raise RuntimeError(f"the uninterrupted `wavegan {command}` failed: {finished.tail(20)}")
            self.seconds[command] = time.perf_counter() - started
        self.figures = _json_line(finished)
        self.store = next(
            p for p in reference.data_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        self.seconds["store"] = json.loads((self.store / "summary.json").read_text())["build_seconds"]

    def evaluate_args(self) -> list[str]:
        return [*CONFIG, *EVAL, f"samples={self.samples}"]

    def workspace(self, name: str, keep: str | None) -> Workspace:
        """A workspace whose data folder holds the reference store without `keep`'s cache and later ones."""
        workspace = Workspace.fresh(self.root / name, self.root / name / "data", self.template)
        workspace.data_dir.mkdir()
        if keep is not None:
            copy = workspace.data_dir / self.store.name
            skip = {"features": ("features", "classifier"), "classifier": ("classifier",)}[keep]
            shutil.copytree(self.store, copy, ignore=lambda folder, names: [n for n in names if n in skip])
        return workspace

    # -- one trial -------------------------------------------------------------------------------------

    def trial(self, rng: random.Random, root: Path) -> Trial:
        target = rng.choice(TARGETS)
        workspace = self.workspace("trial", None if target == "store" else target)
        command, args = ("evaluate", self.evaluate_args()) if target == "classifier" else ("data", CONFIG)
        if target == "features":
            delay = "" if rng.random() < 0.5 else f"+{rng.uniform(0, 0.05):.3f}"
            trial = Trial(f"features: features.build@{rng.randint(1, 3)}{delay}")
            killed = run(workspace, command, args, failpoint=trial.point.split(": ")[1])
        else:
            partial_parent = workspace.data_dir if target == "store" else workspace.data_dir / self.store.name
            pattern = ".*.partial-*" if target == "store" else "classifier/.*.partial-*"
            longest = self.seconds["store"] if target == "store" else self.seconds["evaluate"] * 0.6
            delay = rng.uniform(0, longest)
            trial = Trial(f"{target}: {delay:.2f} s into the build")

            def building() -> bool:
                return any(partial_parent.glob(pattern))

            killed = run(workspace, command, args, kill_when=(building, delay))
        if killed.returncode == 0:
            trial.finished_first()
        elif not killed.killed:
            trial.died(f"ended with {killed.returncode} before the kill: {killed.tail()}")
            return trial
        self.check_no_half_cache(trial, workspace)
        again = run(workspace, command, args)
        if again.returncode != 0 or "Traceback" in again.stderr:
            trial.died(f"the next `wavegan {command}` exited {again.returncode}: {again.tail()}")
            return trial
        self.check_no_half_cache(trial, workspace)
        self.compare(trial, workspace, target, again)
        leftovers = [p.name for p in workspace.data_dir.rglob(".*.partial-*")]
        if leftovers:
            trial.wrong_result(f"interrupted builds left behind: {leftovers}")
        return trial

    # -- the invariants ----------------------------------------------------------------------------------

    def check_no_half_cache(self, trial: Trial, workspace: Workspace) -> None:
        """Under its own name, each cache is complete: the folder and marker a reader trusts."""
        for store in (p for p in workspace.data_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if not (store / "summary.json").is_file():
                trial.wrong_result(f"store {store.name} without summary.json")
            for features in (store / "features").glob("[!.]*"):
                if not (features / "complete").is_file():
                    trial.wrong_result(f"feature cache {features.name} without its marker")
            for cache in (store / "classifier").glob("[!.]*"):
                if not (cache / "info.json").is_file():
                    trial.wrong_result(f"classifier cache {cache.name} without info.json")

    def compare(self, trial: Trial, workspace: Workspace, target: str, again: Finished) -> None:
        store = workspace.data_dir / self.store.name
        if not store.is_dir():
            trial.lost(f"no store {self.store.name} after the rebuild")
            return
        if target == "store":
            mine, theirs = (json.loads((s / "summary.json").read_text()) for s in (store, self.store))
            for summary in (mine, theirs):  # how long and where it was built, not what it holds
                summary.pop("build_seconds")
                summary["config"].pop("store_dir")
            if mine != theirs:
                trial.wrong_result("the rebuilt store's summary differs from an uninterrupted build's")
        if target in ("store", "features"):
            for reference in sorted((self.store / "features").rglob("*.npy")):
                mine = store / reference.relative_to(self.store)
                if not mine.is_file():
                    trial.lost(f"{mine.relative_to(store)} missing")
                elif not np.array_equal(np.load(mine), np.load(reference)):
                    trial.wrong_result(f"{mine.relative_to(store)} differs from an uninterrupted build's")
        if target == "classifier" and _json_line(again) != self.figures:
            trial.wrong_result("the figures with the rebuilt classifier differ from an uninterrupted build's")
