"""A sweep's trials as records every backend produces, and what is shown and written from them:
the table (live and final), ``results.json``, ``best.yaml`` and the ``--json`` report."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.table import Table

from specforge.base.fileio import write_text
from specforge.runs import directory as runs
from specforge.sweep import directory
from specforge.sweep.space import SweepConfig
from specforge.sweep.trial import COMPLETE, FAILED, PRUNED
from specforge.training.progress import format_value

RUNNING, INTERRUPTED = "running", "interrupted"
#: States in the order the final table lists them (each sorted by the objective within).
_ORDER = {COMPLETE: 0, PRUNED: 1, RUNNING: 2, FAILED: 3, INTERRUPTED: 4}


@dataclass
class TrialRecord:
    """One trial as a backend recorded it."""

    number: int
    state: str
    params: dict[str, Any]
    values: list[float] = field(default_factory=list)
    run: str | None = None
    error: str | None = None
    seconds: float | None = None

    @property
    def value(self) -> float | None:
        return self.values[-1] if self.values else None


@dataclass
class SweepResult:
    """What ``sweep`` returns: the trials sorted best first, the best complete one, and where things are."""

    sweep: SweepConfig
    sweep_dir: Path
    metric: str
    direction: str
    trials: list[TrialRecord]
    best: TrialRecord | None
    best_spec: Path | None

    @property
    def best_run(self) -> runs.Run | None:
        """The best trial's run directory, as ``specforge.runs.directory.Run`` (evaluate, export, predict take it)."""
        return runs.open_run(self.best.run) if self.best is not None and self.best.run else None

    def to_json(self) -> dict:
        return {
            "sweep": str(self.sweep_dir),
            "metric": self.metric,
            "direction": self.direction,
            "best": asdict(self.best) if self.best else None,
            "best_spec": str(self.best_spec) if self.best_spec else None,
            "trials": [{**asdict(record), "value": record.value} for record in self.trials],
        }


def sorted_records(records: list[TrialRecord], maximize: bool) -> list[TrialRecord]:
    """Complete trials best first, then pruned (best first), running, failed and interrupted ones."""

    def key(record: TrialRecord) -> tuple:
        value = record.value if record.value is not None and math.isfinite(record.value) else None
        score = math.inf if value is None else (-value if maximize else value)
        return _ORDER.get(record.state, 5), score, record.number

    return sorted(records, key=key)


def table(records: list[TrialRecord], sweep: SweepConfig, title: str | None = None) -> Any:
    """A rich Table, one line per trial however many epochs it ran: number, state, the parameters, the epochs
    run, the metric's course as a sparkline, its best value and epoch, the objective, the run or the error."""
    grid = Table(title=title, title_justify="left")
    grid.add_column("#", justify="right", no_wrap=True)
    grid.add_column("state", no_wrap=True)
    for parameter in sweep.parameters:
        grid.add_column(parameter.key, justify="right", no_wrap=True)
    grid.add_column("epochs", justify="right", no_wrap=True)
    grid.add_column(f"{sweep.metric} per epoch", no_wrap=True)
    grid.add_column("best (epoch)", justify="right", no_wrap=True)
    grid.add_column(sweep.metric, justify="right", no_wrap=True)
    grid.add_column("run / error")  # the one column that wraps (a long error) where the width runs out
    every = [value for record in records for value in record.values if math.isfinite(value)]
    span = (min(every), max(every)) if every else None
    for record in records:
        grid.add_row(
            str(record.number),
            record.state,
            *(_show(record.params.get(p.key)) for p in sweep.parameters),
            str(len(record.values)) if record.values else "",
            sparkline(record.values, span),
            _best(record.values, sweep.maximize),
            "" if record.value is None else format_value(record.value),
            record.error or (runs.display_path(Path(record.run)) if record.run else ""),
        )
    return grid


#: The most characters a trial's sparkline takes: longer runs show the value at the end of each stretch of epochs.
SPARKLINE_WIDTH = 20
_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], span: tuple[float, float] | None = None) -> str:
    """``values`` as block characters from ``span``'s low to its high (default: their own lowest and highest;
    the table gives every trial the same span, so that their lines compare), ``×`` for a value that is not
    finite, at most ``SPARKLINE_WIDTH`` long."""
    if not values:
        return ""
    stretches = min(len(values), SPARKLINE_WIDTH)
    shown = [values[(index + 1) * len(values) // stretches - 1] for index in range(stretches)]
    finite = [value for value in shown if math.isfinite(value)]
    low, high = span or ((min(finite), max(finite)) if finite else (0.0, 0.0))
    span_width = (high - low) or 1.0
    return "".join(
        _BARS[round((value - low) / span_width * (len(_BARS) - 1))] if math.isfinite(value) else "×" for value in shown
    )


def _best(values: list[float], maximize: bool) -> str:
    finite = [(value, epoch) for epoch, value in enumerate(values, 1) if math.isfinite(value)]
    if not finite:
        return ""
    value, epoch = (max if maximize else min)(finite, key=lambda pair: pair[0])
    return f"{format_value(value)} ({epoch})"


def _show(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def finish(sweep: SweepConfig, sweep_dir: Path, records: list[TrialRecord]) -> SweepResult:
    """Sort the trials, write ``results.json`` and, when a trial completed, ``best.yaml``."""
    ordered = sorted_records(records, sweep.maximize)
    best = next(
        (
            record
            for record in ordered
            if record.state == COMPLETE and record.value is not None and math.isfinite(record.value)
        ),
        None,
    )
    best_spec = write_best_spec(sweep, best.params, sweep_dir / directory.BEST_SPEC) if best else None
    result = SweepResult(sweep, sweep_dir, sweep.metric, sweep.direction, ordered, best, best_spec)
    runs.write_json(sweep_dir / directory.RESULTS, result.to_json())
    return result


def write_best_spec(sweep: SweepConfig, values: dict[str, Any], path: Path) -> Path:
    """The spec with ``values`` written in and without its sweep section: ``specforge train`` takes it as it is.
    Relative data paths are made absolute, since the file lives elsewhere than the spec."""
    data = sweep.trial_spec(values).document.data
    data = {key: value for key, value in data.items() if key != "sweep"}
    if isinstance(data.get("data"), dict):
        data["data"] = {key: _absolute(value, sweep.spec.base_dir) for key, value in data["data"].items()}
    header = (
        f"# The best trial of {runs.display_path(path.parent)} ({sweep.metric} "
        f"{'maximized' if sweep.maximize else 'minimized'}): {sweep.spec.file} with\n"
        + "".join(f"#   {key} = {value!r}\n" for key, value in values.items())
    )
    return write_text(path, header + yaml.safe_dump(data, sort_keys=False))


def _absolute(value: Any, base_dir: Path) -> Any:
    if isinstance(value, str) and not Path(value).is_absolute() and (base_dir / value).exists():
        return str((base_dir / value).resolve())
    return value


__all__ = ["SweepResult", "TrialRecord", "finish", "sorted_records", "sparkline", "table", "write_best_spec"]
