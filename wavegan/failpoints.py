"""Named places where the fault-injection harness (benchmarks/faults.py) can kill a process on purpose.

    WAVEGAN_FAILPOINT=checkpoint.save@3          SIGKILL at the 3rd time this process reaches checkpoint.save
    WAVEGAN_FAILPOINT=checkpoint.save@3+0.02     ... 0.02 s after it (a thread kills it mid-way through
                                                 whatever follows: the checkpoint's files being written)

A kill is `kill -9` from inside: no Python handler, `finally` block or atexit hook runs, exactly as when
the machine's OOM killer or a scheduler ends the job. Without the variable, `reach` is a dictionary
lookup. The places, in the order a training run reaches them:

    train.start        the MLflow run is open, before its params and step-0 figures are logged
    train.step         a training step is about to take its batches
    mlflow.log         metrics of a step are about to be logged
    preview.log        a preview (image, WAVs, page) is about to be logged
    eval               a sample-quality evaluation is about to run
    checkpoint.save    a checkpoint is about to be written
    features.build     the feature cache of a data store is being computed (wavegan/data/pipeline.py)
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

ENV = "WAVEGAN_FAILPOINT"
_reached: Counter[str] = Counter()


def parse(spec: str) -> tuple[str, int, float | None]:
    """`name@n[+seconds]` -> (name, n, seconds or None)."""
    name, _, rest = spec.partition("@")
    count, _, delay = rest.partition("+")
    return name, int(count or 1), float(delay) if delay else None


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def reach(name: str) -> None:
    """Mark that this process reached the place `name`; dies here if WAVEGAN_FAILPOINT says so."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    target, count, delay = parse(spec)
    if target != name:
        return
    _reached[name] += 1
    if _reached[name] != count:
        return
    if delay is None:
        _kill()
    timer = threading.Timer(delay, _kill)
    timer.daemon = True
    timer.start()
