"""Sweep directories: ``runs/<spec name>/sweeps/<n>/``, one per study.

A sweep directory holds ``sweep.json`` (what the study searches: the spec's hash, the parameters, the
objective, the example limits), the study's record (``journal.log`` for the local backend), a run
directory per trial under ``trials/<number>/``, ``results.json`` and ``best.yaml`` at the end.
The same command given again continues the newest sweep of the spec when it searches the same thing
and has trials left to run; otherwise a new directory is made.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from specforge.base.errors import RunError
from specforge.runs import directory as runs

SWEEPS = "sweeps"
DEFINITION = "sweep.json"
JOURNAL = "journal.log"
DRIVER_LOCK = "driver.lock"
ASK_LOCK = "ask.lock"
TRIALS = "trials"
RESULTS = "results.json"
BEST_SPEC = "best.yaml"


def sweeps_root(spec_name: str, root: str | Path = runs.RUNS_ROOT) -> Path:
    return Path(root) / spec_name / SWEEPS


def newest(spec_name: str, root: str | Path = runs.RUNS_ROOT) -> Path | None:
    numbered = [path for path in sweeps_root(spec_name, root).glob("*") if path.name.isdigit()]
    return max(numbered, key=lambda path: int(path.name), default=None)


def matches(sweep_dir: Path, definition: dict) -> bool:
    """Whether ``sweep_dir`` searches what ``definition`` describes (an unreadable one does not)."""
    try:
        return runs.read_json(sweep_dir / DEFINITION) == definition
    except RunError:
        return False


def create(spec_name: str, definition: dict, root: str | Path = runs.RUNS_ROOT) -> Path:
    """The next ``sweeps/<n>`` with its ``sweep.json``."""
    parent = sweeps_root(spec_name, root)
    parent.mkdir(parents=True, exist_ok=True)
    latest = newest(spec_name, root)
    number = int(latest.name) + 1 if latest else 1
    while True:
        path = parent / str(number)
        try:
            path.mkdir()
            break
        except FileExistsError:
            number += 1
    runs.write_json(path / DEFINITION, definition)
    return path


def trial_dir(sweep_dir: Path, number: int) -> Path:
    return sweep_dir / TRIALS / str(number)


@contextmanager
def locked(path: Path, *, busy: str | None = None) -> Iterator[None]:
    """Hold the lock file ``path`` while the body runs.  Without ``busy`` a holder elsewhere makes this wait;
    with it, a holder elsewhere is a RunError saying ``busy``.  The lock ends with its process, however it ends."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (fcntl.LOCK_NB if busy else 0))
        except BlockingIOError:
            raise RunError(busy, file=runs.display_path(path.parent)) from None
        yield
    finally:
        os.close(descriptor)
