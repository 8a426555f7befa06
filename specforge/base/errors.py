"""User-facing errors.

Every mistake a user can make is one of these exceptions.  Each carries where it
happened (file, line, column, spec path) so the CLI can print one line
``FILE:LINE:COL: error: PATH: message`` and exit with status 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Location:
    """Where in a user's file something is: 1-based line and column, and the spec path."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str = ""

    def prefix(self) -> str:
        """``FILE:LINE:COL`` with the parts that are known."""
        parts = [self.file or "<input>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


#: The most characters of a message that an error shows.  A message that quotes what it was given (the
#: header of a CSV with a million columns, a value pasted into a spec) would otherwise be a line of megabytes.
MAX_MESSAGE = 2_000


def capped(message: str, limit: int = MAX_MESSAGE) -> str:
    """``message``, or its start and end with the count of characters left out between them when it is longer
    than ``limit`` (the end says what would work)."""
    if len(message) <= limit:
        return message
    head, tail = limit * 2 // 3, limit // 3
    return f"{message[:head]} ... [{len(message) - head - tail:,} characters left out] ... {message[-tail:]}"


@dataclass
class Problem:
    """One error message at one place (at most MAX_MESSAGE characters and a note of what was left out)."""

    message: str
    location: Location = field(default_factory=Location)
    #: ``error``, or ``warning`` for a remark that does not stop anything
    severity: str = "error"
    #: the spec setting a problem found in a data file comes from (``data.num_classes``), for ``Spec.located``
    setting: str = ""

    def __post_init__(self):
        self.message = capped(self.message)

    def format(self) -> str:
        path = f"{self.location.path}: " if self.location.path else ""
        return f"{self.location.prefix()}: {self.severity}: {path}{self.message}"

    def to_json(self) -> dict:
        return {
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
            "path": self.location.path,
            "message": self.message,
        }


class SpecforgeError(Exception):
    """Base of all user errors: one or more problems, reported together."""

    kind = "error"

    def __init__(
        self,
        message: str | None = None,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        path: str = "",
        setting: str = "",
        problems: list[Problem] | None = None,
    ):
        if problems is None:
            problems = [Problem(message or "", Location(file, line, column, path), setting=setting)]
        self.problems = problems
        super().__init__("\n".join(p.format() for p in problems))

    def format(self) -> str:
        return "\n".join(p.format() for p in self.problems)

    def to_json(self) -> list[dict]:
        return [p.to_json() for p in self.problems]


class SpecError(SpecforgeError):
    """The spec text or its content is wrong (syntax, schema, semantics)."""


class ShapeError(SpecforgeError):
    """A layer cannot take the shape it is given."""


class DataError(SpecforgeError):
    """A data file is missing, corrupt, or does not fit the spec."""


class ExportError(SpecforgeError):
    """The model cannot be exported, or the export does not match the numpy forward."""


class RunError(SpecforgeError):
    """A run directory is missing, incomplete, or cannot be resumed."""


class TrainingInterrupted(Exception):
    """Ctrl-C during training: the last epoch's checkpoint is on disk and the run is marked interrupted.

    ``shown`` is the run directory as the user would type it, for the resume command in the message.
    """

    def __init__(self, run_dir: Path, epoch: int, batch: int, shown: str):
        self.run_dir, self.epoch, self.batch = run_dir, epoch, batch
        super().__init__(f"interrupted at epoch {epoch}, batch {batch}; resume with: specforge train --resume {shown}")


class SweepInterrupted(Exception):
    """Ctrl-C during a sweep: finished trials are in its journal; the same command continues it."""
