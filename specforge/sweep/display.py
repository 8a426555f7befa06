"""What ``specforge sweep`` shows: a live table of the trials on a terminal (a line per finished trial
elsewhere), then the trials sorted by the objective, the best run and ``best.yaml``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from rich.live import Live

from specforge.runs import directory as runs
from specforge.sweep.results import RUNNING, SweepResult, TrialRecord, table
from specforge.sweep.space import SweepConfig
from specforge.training.progress import format_value


class LiveTable:
    """The trials in a table redrawn in place (rich), in the order they started."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self._live: Live | None = None

    def __call__(self, sweep: SweepConfig, records: list[TrialRecord]) -> None:
        view = table(sorted(records, key=lambda record: record.number), sweep, title=_counts(records))
        if self._live is None:
            self._live = Live(view, console=self.console, refresh_per_second=4, transient=True)
            self._live.start()
        else:
            self._live.update(view)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()


class TrialLines:
    """One line per trial when it ends, for logs and pipes."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self._seen: set[int] = set()

    def __call__(self, sweep: SweepConfig, records: list[TrialRecord]) -> None:
        for record in sorted(records, key=lambda record: record.number):
            if record.state == RUNNING or record.number in self._seen:
                continue
            self._seen.add(record.number)
            params = " ".join(f"{key}={_short(value)}" for key, value in record.params.items())
            value = "" if record.value is None else f" {sweep.metric} {format_value(record.value)}"
            self.console.print(
                f"trial {record.number} {record.state}{value} {params}" + (f": {record.error}" if record.error else ""),
                highlight=False,
                soft_wrap=True,
            )

    def close(self) -> None:
        pass


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _counts(records: list[TrialRecord]) -> str:
    counts = Counter(record.state for record in records)
    return f"{len(records)} trials: " + ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))


def print_result(result: SweepResult, console: Any) -> None:
    """The final table, best first, and where the best run and best.yaml are."""
    direction = "maximized" if result.direction == "maximize" else "minimized"
    console.print(
        table(
            result.trials,
            result.sweep,
            title=f"sweep {runs.display_path(result.sweep_dir)}: {_counts(result.trials)}; {result.metric} {direction}",
        )
    )
    best, best_spec = result.best, result.best_spec
    if best is None or best.value is None or best_spec is None:  # a best trial has its value and best.yaml
        console.print("no trial completed; see the errors above", highlight=False)
        return
    run = f", run {runs.display_path(Path(best.run))}" if best.run else ""
    console.print(
        f"best: trial {best.number}, {result.metric} {format_value(best.value)}{run}", highlight=False, soft_wrap=True
    )
    console.print(f"best spec: {runs.display_path(best_spec)}", highlight=False, soft_wrap=True)
