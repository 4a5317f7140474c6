"""Trials, faults and the table: what every fault row shares."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass
class Trial:
    """One injected fault and what the recovery showed."""

    point: str  # where the fault was injected (e.g. "checkpoint.save@2+0.013")
    survived: bool = True  # the recovery ended as promised (completed, or one clear message)
    data_lost: bool = False  # something finished before the fault is gone after it
    wrong: bool = False  # a result differs from the uninterrupted run's, or a half-built thing was used
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # False when the process finished before the fault's moment came: nothing was tested, so run_fault
    # draws the trial again rather than count it as survived.
    injected: bool = True

    def finished_first(self) -> None:
        self.point += " (finished first)"
        self.injected = False

    def died(self, problem: str) -> None:
        """The recovery did not end as promised: a crash, a hang, a traceback, a wrong exit status."""
        self.problems.append(problem)
        self.survived = False

    def lost(self, problem: str) -> None:
        """Something finished before the fault is gone after the recovery."""
        self.problems.append(problem)
        self.data_lost = True

    def wrong_result(self, problem: str) -> None:
        """A result differs from the uninterrupted run's, is duplicated, or a half-built thing was used."""
        self.problems.append(problem)
        self.wrong = True

    @property
    def ok(self) -> bool:
        return self.survived and not self.data_lost and not self.wrong


class Fault(Protocol):
    name: str  # the row's label
    unavailable: str | None  # why it cannot run here (e.g. no tmpfs without root), or None

    def prepare(self, root: Path) -> None:
        """Build what every trial shares (reference runs, templates) under `root`; run once."""

    def trial(self, rng: random.Random, root: Path) -> Trial:
        """Inject the fault once at a point drawn from `rng`, recover, check the invariants."""


REDRAWS = 5  # a trial whose fault never landed is drawn again, at most this many times


def run_fault(fault: Fault, trials: int, rng: random.Random, root: Path, log=print) -> dict:
    """`trials` trials of one fault; its row of the table (with each failing trial's problems). A trial
    whose process finished before the fault's moment tested nothing: it is drawn again (up to REDRAWS
    times; `redrawn` counts them), and one that never lands counts as not survived."""
    row = {"fault": fault.name, "trials": 0, "survived": 0, "data_lost": 0, "wrong": 0, "seconds": 0.0,
           "redrawn": 0}
    if fault.unavailable:
        log(f"{fault.name}: skipped ({fault.unavailable})")
        return row | {"skipped": fault.unavailable}
    started = time.perf_counter()
    fault.prepare(root)
    failures = []
    for i in range(trials):
        begun = time.perf_counter()
        trial = fault.trial(rng, root)
        for _ in range(REDRAWS):
            if trial.injected or not trial.ok:
                break
            log(f"{fault.name} [{i + 1}/{trials}] {trial.point}: drawn again")
            row["redrawn"] += 1
            trial = fault.trial(rng, root)
        if not trial.injected and trial.ok:
            trial.died(f"the fault never landed in {REDRAWS + 1} draws: every run finished first")
        trial.seconds = round(time.perf_counter() - begun, 1)
        row["trials"] += 1
        row["survived"] += trial.survived
        row["data_lost"] += trial.data_lost
        row["wrong"] += trial.wrong
        verdict = "ok" if trial.ok else "; ".join(trial.problems)
        log(f"{fault.name} [{i + 1}/{trials}] {trial.point} ({trial.seconds:.0f} s): {verdict}")
        if not trial.ok:
            failures.append({"point": trial.point, "problems": trial.problems})
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row | ({"failures": failures} if failures else {})


def table(rows: list[dict]) -> str:
    header = f"{'fault':<34} {'trials':>6} {'survived':>8} {'data lost':>9} {'wrong':>6} {'seconds':>8}"
    lines = [header, "-" * len(header)]
    for row in rows:
        note = f"  skipped: {row['skipped']}" if row.get("skipped") else ""
        lines.append(
            f"{row['fault']:<34} {row['trials']:>6} {row['survived']:>8} {row['data_lost']:>9} "
            f"{row['wrong']:>6} {row['seconds']:>8.0f}{note}"
        )
    return "\n".join(lines)
