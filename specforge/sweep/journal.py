"""The local backend's journal file before a sweep opens it again: what a crash can leave, put right or refused.

Optuna appends one JSON record per line.  A process killed while it wrote leaves the last line cut short; Optuna
would skip it on reading, then append the next record onto it, and that merged line breaks the journal for
good.  So the driver, before any worker starts, cuts the file back to its last whole record (with a warning:
what was cut is an update that never completed).  An empty or missing journal beside trial run directories
means the study's record was lost: starting it afresh there would collide with those runs and drop the earlier
trials from the results, so that is refused, naming what to do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from specforge.base.errors import Location, Problem, RunError
from specforge.runs import directory as runs
from specforge.sweep import directory

#: Bytes read at a time, backwards from the end, looking for the start of the last record.
_BLOCK = 1 << 16


def drop_torn_record(path: Path) -> Problem | None:
    """Cut ``path`` back to its last whole record when its last line was cut short (it has no line end: Optuna
    writes a record and its newline at once); the warning to show, if so.  A file that is only a part of a
    line is left for the journal's own checks, as is a whole last line that is not a record (damage, not a cut)."""
    if not path.exists():
        return None
    with path.open("r+b") as stream:
        size = stream.seek(0, os.SEEK_END)
        if size == 0:
            return None
        stream.seek(size - 1)
        if stream.read(1) == b"\n":
            return None
        start = _line_start(stream, size)
        if start == 0:  # only a part of one line: not this file's last record, maybe not a journal at all
            return None
        stream.truncate(start)
        stream.flush()
        os.fsync(stream.fileno())
    return Problem(
        f"its last record was cut short (a crash while it was written); dropped it ({size - start} "
        "bytes), the sweep goes on from the records before it",
        Location(runs.display_path(path)),
        severity="warning",
    )


def _line_start(stream: BinaryIO, end: int) -> int:
    """The offset just after the last newline before ``end`` (0 when there is none)."""
    position = end
    while position > 0:
        step = min(_BLOCK, position)
        position -= step
        stream.seek(position)
        found = stream.read(step).rfind(b"\n")
        if found >= 0:
            return position + found + 1
    return 0


def require_record_of_trials(sweep_dir: Path) -> None:
    """A RunError when the journal is empty or missing while trial run directories exist."""
    journal = sweep_dir / directory.JOURNAL
    if journal.exists() and journal.stat().st_size:
        return
    trials = sweep_dir / directory.TRIALS
    found = len(list(trials.iterdir())) if trials.is_dir() else 0
    if found:
        runs_there = "1 trial run is" if found == 1 else f"{found} trial runs are"
        raise RunError(
            f"the journal is {'empty' if journal.exists() else 'missing'} but {runs_there} in "
            f"{runs.display_path(trials)}: the record of the sweep is lost, and starting it "
            f"again there would drop them; restore {directory.JOURNAL} from a backup, or move "
            f"{runs.display_path(sweep_dir)} aside (its trials stay in it) to start a new sweep",
            file=runs.display_path(journal),
        )


__all__ = ["drop_torn_record", "require_record_of_trials"]
