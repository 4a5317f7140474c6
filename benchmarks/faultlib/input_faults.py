"""Fault 8: hostile and broken inputs. Three rows: audio files in a data folder (hostile_files.py), config
values of the wrong type, out of range, NaN/inf or absurdly large for every entry point (train, data,
evaluate, sweep), and study files that are not YAML, huge, alias bombs or name code to run.

Each trial draws one case, runs it through a `case_worker` process (one process for all cases: start-up
is paid once) and expects one clear message (exit status 2, one `error:` line naming the key or file)
or, for audio, the hostile file skipped with a reason, used or ignored, and the store built. The parent
watches the worker: no answer within the time limit is a hang, memory above the limit an out-of-memory
risk; either kills the worker (a fresh one takes the next case) and fails the trial.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import hostile_files
from .harness import Trial
from .processes import Workspace

WORKER = Path(__file__).with_name("case_worker.py")
CASE_SECONDS = 600.0  # a case that takes longer hangs (the slowest, an hour of audio, takes 0.5-2 min)
MEMORY_LIMIT = 6 << 30  # resident bytes; the worker with TensorFlow loaded holds ~1 GB


class CaseRunner:
    """One `case_worker` process, restarted when a case kills it or is killed."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.process: subprocess.Popen | None = None
        self.buffer = b""

    def _start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-u", str(WORKER)],
            cwd=self.workspace.root,
            env=self.workspace.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.buffer = b""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def run(self, case: dict) -> dict:
        """The case's {"rc", "stdout", "stderr", "peak_rss"}, or {"problem": ...} (hang, memory, death)."""
        if self.process is None or self.process.poll() is not None:
            self._start()
        self.process.stdin.write((json.dumps(case) + "\n").encode())
        self.process.stdin.flush()
        started, peak = time.perf_counter(), 0
        while True:
            peak = max(peak, _resident_bytes(self.process.pid))
            if peak > MEMORY_LIMIT:
                self.stop()
                return {"problem": f"memory above {MEMORY_LIMIT >> 30} GB (an out-of-memory kill)"}
            if time.perf_counter() - started > CASE_SECONDS:
                self.stop()
                return {"problem": f"no answer in {CASE_SECONDS:.0f} s (a hang)"}
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 1 << 16)
                if not chunk:
                    code = self.process.wait()
                    self.process = None
                    return {
                        "problem": f"the process died ({signal.Signals(-code).name if code < 0 else code})"
                    }
                self.buffer += chunk
                for line in self.buffer.split(b"\n")[:-1]:
                    if line.startswith(b"@@case "):
                        self.buffer = self.buffer[self.buffer.index(line) + len(line) + 1 :]
                        return json.loads(line[7:]) | {"peak_rss": peak}


def _resident_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def expect_one_error(trial: Trial, result: dict, *mentions: str) -> None:
    """Exit status 2 and exactly one line on stderr, `error: ...`, naming each of `mentions`."""
    if "problem" in result:
        trial.died(result["problem"])
        return
    lines = [line for line in result["stderr"].strip().splitlines() if line.strip()]
    if result["rc"] != 2 or len(lines) != 1 or not lines[0].startswith("error:"):
        trial.died(f"exit {result['rc']}, stderr {result['stderr'][-300:]!r}")
    elif not all(m in lines[0] for m in mentions):
        trial.wrong_result(f"the message does not name {mentions}: {lines[0][:200]}")


class _Inputs:
    """What the three rows share: a workspace, one worker, the tiny configs."""

    unavailable = None

    def __init__(self) -> None:
        self.runner: CaseRunner | None = None

    def prepare(self, root: Path) -> None:
        self.root = root / f"inputs-{self.__class__.__name__}"
        self.workspace = Workspace.fresh(self.root, self.root / "data")
        self.runner = CaseRunner(self.workspace)

    def run(self, command: str, argv: list[str]) -> dict:
        if command in ("train", "data", "evaluate"):
            argv = [*argv, f"hydra.run.dir={self.root / 'hydra'}"]
        return self.runner.run({"command": command, "argv": argv})


class HostileAudio(_Inputs):
    name = "hostile audio files"

    def trial(self, rng: random.Random, root: Path) -> Trial:
        make = rng.choice(hostile_files.MAKERS)
        case = self.root / f"case-{rng.randrange(1 << 30):08x}"
        folder = case / "audio"
        folder.mkdir(parents=True)
        hostile_files.good_file(folder)
        expected = make(folder, rng)
        trial = Trial(f"{make.__name__} ({', '.join(sorted(p.name for p in folder.iterdir()))})")
        argv = ["data=audio_dir", f"data.path={folder}", "data.slice_len=4096", "data.valid_fraction=0",
                f"data.store_dir={case / 'store'}"]  # fmt: skip
        result = self.run("data", argv)
        trial.point += f", {result.get('peak_rss', 0) / 2**30:.1f} GB resident at most"
        if "problem" in result or result["rc"] != 0:
            trial.died(result.get("problem") or f"exit {result['rc']}: {result['stderr'][-300:]}")
        else:
            summary = json.loads(next((case / "store").glob("*/summary.json")).read_text())
            hostile = [s for s in summary["skipped"] if s["source"].split("#")[0] != "good.wav"]
            used = summary["num_clips"] - 2
            fine = {
                "skipped": used == 0 and len(hostile) == 1 and bool(hostile[0]["reason"]),
                "used": used > 0,
                "ignored": used == 0 and not hostile,
            }.get(expected, used > 0 or (len(hostile) == 1 and bool(hostile[0]["reason"])))
            if not fine:
                trial.wrong_result(f"expected {expected}: {used} clips from it, skipped {hostile[:2]}")
        _remove(case)
        return trial


def _remove(folder: Path) -> None:
    subprocess.run(["rm", "-rf", str(folder)], check=False)


TINY = [
    *("data.num_samples=48", "data.slice_len=1024", "model.dim=4", "trainer.batch_size=4"),
    *("trainer.n_critic=1", "trainer.max_steps=2", "trainer.progress=false", "eval.enabled=false"),
    *("tracking.log_model=false", "tracking.experiment=hostile"),
]
# (key, value) a user might type: wrong type, out of range, NaN/inf, absurdly large.
TRAINING_VALUES = [
    ("trainer.batch_size", "abc"), ("trainer.batch_size", "1e9"), ("trainer.batch_size", "1000000000"),
    ("trainer.max_steps", "1000000000000"), ("trainer.max_steps", "-1"), ("trainer.max_steps", "2.5"),
    ("optimizer.lr", "nan"), ("optimizer.lr", "inf"), ("optimizer.lr", "-inf"), ("trainer.loss_bound", "nan"),
    ("trainer.g_ema", "inf"), ("penalty.weight", "nan"), ("model.dim", "1000000"), ("model.latent_dim", "0"),
    ("trainer.n_critic", "1000000000"), ("trainer.num_previews", "100000"), ("trainer.checkpoint_every", "0"),
    ("seed", "abc"), ("trainer.resume", "maybe"),
]  # fmt: skip
DATA_VALUES = [
    ("data.slice_len", "1099511627776"), ("data.num_samples", "1000000000000"), ("data.sample_rate", "0"),
    ("data.sample_rate", "-16000"), ("data.valid_fraction", "nan"), ("data.test_fraction", "0.95"),
    ("data.min_duration_s", "inf"), ("data.silence_peak", "-1"),
]  # fmt: skip
EVAL_VALUES = [
    ("eval.num_samples", "1000000000000"), ("eval.bootstrap", "1000000000"), ("eval.ndb_k", "0"),
    ("eval.is_splits", "1e9"), ("eval.classifier.cnn.epochs", "1000000000"), ("eval.features.n_mels", "nan"),
]  # fmt: skip


class HostileConfig(_Inputs):
    name = "hostile config values"

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        self.samples = self.root / "generated"  # `wavegan evaluate` needs two files to score
        for name in ("a", "b"):
            (self.samples / name).mkdir(parents=True)
            hostile_files.good_file(self.samples / name)
        self.study = self.root / "tiny.yaml"
        self.study.write_text(
            json.dumps(
                {
                    "overrides": TINY,
                    "search_space": {"optimizer.lr": "tag(log, interval(1e-5, 1e-3))"},
                    "n_trials": 1,
                    "storage": f"sqlite:///{self.root / 'optuna.db'}",
                }
            )  # fmt: skip
        )

    def trial(self, rng: random.Random, root: Path) -> Trial:
        command = rng.choice(("train", "data", "evaluate", "sweep"))
        pool = {
            "train": TRAINING_VALUES + DATA_VALUES + EVAL_VALUES,
            "data": DATA_VALUES,
            "evaluate": DATA_VALUES + EVAL_VALUES,
            "sweep": TRAINING_VALUES + DATA_VALUES + EVAL_VALUES + [("search space", "")],
        }[command]
        key, value = rng.choice(pool)
        if key == "search space":  # a searched key whose interval reaches far out of its range
            key, value = rng.choice([("penalty.every", "1000000000"), ("model.dim", "1000000")])
            override = f"sweep.search_space.{key}=int(interval(1, {value}))"
        else:
            override = f"{key}={value}"
        trial = Trial(f"wavegan {command} {override}")
        argv = {
            "train": [*TINY, override],
            "data": ["data.num_samples=48", override],
            "evaluate": ["data.num_samples=48", "data.slice_len=4096", f"samples={self.samples}", override],
            "sweep": [f"sweep={self.study}", override, "--cfg", "job"],
        }[command]
        expect_one_error(trial, self.run(command, argv), key)
        if (self.root / "optuna.db").exists():
            trial.wrong_result("the study started")
            (self.root / "optuna.db").unlink()
        return trial


def _study_cases(rng: random.Random, folder: Path, marker: Path) -> tuple[str, str, str]:
    """(label, file text, what the message names) of one hostile study file."""
    touch = f"touch {marker}"
    space = "search_space: {optimizer.lr: 'interval(1e-5, 1e-3)'}\n"
    bomb = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    nested = (
        "sampler: {_target_: optuna.samplers.PartialFixedSampler, fixed_params: {}, "
        f"base_sampler: {{_target_: subprocess.Popen, args: [{touch!r}]}}}}\n"
    )
    package = "# @package _global_\nhydra: {callbacks: {x: {_target_: os.system}}}\n"
    huge = "description: " + "x" * rng.randint(1_000_001, 3_000_000) + "\n"
    broken = rng.choice(["", "{", ": :", "\t- x", "key: 'open"])  # each leaves the YAML invalid
    cases = [
        ("not YAML", f"{space}overrides: [unclosed\n{broken}", "not valid YAML"),
        ("binary", rng.randbytes(rng.randint(16, 4096)).decode("latin-1"), "study.yaml"),
        ("huge", space + huge, "is not a study file"),
        ("alias bomb", "\n".join(bomb) + "\n", "aliases"),
        ("recursive alias", "a: &a [*a, *a]\n" + space, "study.yaml"),
        (
            "_target_ os.system",
            f"{space}sampler: {{_target_: os.system, command: '{touch}'}}\n",
            "not allowed",
        ),
        ("_target_ builtins.eval", space + "pruner: {_target_: builtins.eval, source: '1'}\n", "not allowed"),
        ("nested _target_", space + nested, "not allowed"),
        ("python tag", f"{space}sampler: !!python/object/apply:os.system [{touch!r}]\n", "not valid YAML"),
        ("@package _global_", package + space, "@package"),
        ("defaults outside", "defaults: [../../../../etc/passwd]\n" + space, "defaults"),
    ]
    return rng.choice(cases)


class HostileStudy(_Inputs):
    name = "hostile study files"

    def trial(self, rng: random.Random, root: Path) -> Trial:
        marker = self.root / "code-ran"
        label, text, mention = _study_cases(rng, self.root, marker)
        path = self.root / "study.yaml"
        path.write_text(text, encoding="latin-1" if label == "binary" else "utf-8")
        trial = Trial(label)
        expect_one_error(trial, self.run("sweep", [f"sweep={path}", "--cfg", "job"]), mention)
        if marker.exists():
            trial.wrong_result("code named in the study file ran")
            marker.unlink()
        return trial


def stop_workers(faults: list) -> None:
    for fault in faults:
        if isinstance(fault, _Inputs) and fault.runner is not None:
            fault.runner.stop()
