"""What a run directory records, read back for people: its curves and best epoch, one line per run for
``specforge runs``, and the differences between two runs for ``specforge runs compare``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from specforge.base.errors import RunError
from specforge.runs.directory import (
    HISTORY_JSON,
    LATEST,
    MANIFEST,
    METRICS,
    RESOLVED,
    RUNS_ROOT,
    display_path,
    read_json,
    resolve_run_path,
)


def higher_is_better(name: str, mode: str = "auto") -> bool:
    """Whether a larger ``name`` is better: mode max, or auto on a metric (metrics grow as a model improves,
    losses shrink), as the callbacks decide."""
    return mode == "max" or (mode == "auto" and name.removeprefix("val_") != "loss")


@dataclass
class Curves:
    """One run's history: values per epoch by name (loss, accuracy, val_loss, ...) and the value it monitors."""

    label: str
    history: dict[str, list[float]]
    monitor: str
    mode: str = "auto"

    @property
    def best_epoch(self) -> int | None:
        """The 0-based epoch where ``monitor`` is best."""
        values = self.history.get(self.monitor)
        if not values:
            return None
        pick = np.nanargmax if higher_is_better(self.monitor, self.mode) else np.nanargmin
        return int(pick(np.asarray(values, dtype=float)))


def run_curves(path: str | Path) -> Curves:
    """A run directory's history (written after every epoch, so an unfinished run has one too) and the value its
    callbacks monitor (default: val_loss, or loss without validation)."""
    run_dir = resolve_run_path(path)
    if not (run_dir / HISTORY_JSON).exists():
        raise RunError(f"no {HISTORY_JSON}: the run has not finished an epoch yet", file=display_path(run_dir))
    return _curves(run_dir, read_json(run_dir / HISTORY_JSON), read_json(run_dir / RESOLVED))


def _curves(run_dir: Path, history: dict, config: dict) -> Curves:
    watching = [callback for callback in config["fit"].get("callbacks", []) if "monitor" in callback]
    if watching:
        return Curves(display_path(run_dir), history, watching[0]["monitor"], watching[0].get("mode", "auto"))
    return Curves(display_path(run_dir), history, "val_loss" if "val_loss" in history else "loss")


@dataclass
class RunRecord:
    """One run directory at a glance."""

    path: str
    spec: str
    status: str
    epochs: int
    epochs_completed: int
    best: dict[str, Any] | None
    test: dict[str, float]
    seconds: float | None
    spec_sha256: str
    limits: dict[str, int | None] = field(default_factory=dict)
    config: dict = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "config"}


def read_record(path: str | Path) -> RunRecord:
    """The record of the run at ``path`` (any status: running, interrupted and failed runs are listed too)."""
    run_dir = resolve_run_path(path)
    manifest = read_json(run_dir / MANIFEST)
    config = read_json(run_dir / RESOLVED) if (run_dir / RESOLVED).exists() else {"fit": {}}
    history = read_json(run_dir / HISTORY_JSON) if (run_dir / HISTORY_JSON).exists() else {}
    curves = _curves(run_dir, history, config)
    best = curves.best_epoch
    metrics = read_json(run_dir / METRICS) if (run_dir / METRICS).exists() else {}
    return RunRecord(
        path=display_path(run_dir),
        spec=manifest.get("spec", ""),
        status=manifest.get("status", "unknown"),
        epochs=manifest.get("epochs", 0),
        epochs_completed=manifest.get("epochs_completed", 0),
        best=None
        if best is None
        else {"name": curves.monitor, "value": history[curves.monitor][best], "epoch": best + 1},
        test={key: value for key, value in metrics.items() if key not in ("split", "examples")},
        seconds=_seconds(manifest),
        spec_sha256=manifest.get("spec_sha256", ""),
        limits=manifest.get("limits", {}),
        config=config,
    )


def _seconds(manifest: Mapping[str, Any]) -> float | None:
    try:
        elapsed = datetime.fromisoformat(manifest["updated"]) - datetime.fromisoformat(manifest["created"])
        return elapsed.total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


def list_runs(name: str | None = None, root: str | Path = RUNS_ROOT) -> list[RunRecord]:
    """Every run under ``root``, or only those of spec ``name``: in ``root/<spec name>/<run>`` as ``train`` writes
    them, and run directories in ``root`` itself (``train --out root/DIR``), by spec name, numbered runs in order.
    A name that lists nothing is an error naming the spec names that do."""
    root = Path(root)
    found = sorted(
        _run_dirs(root),
        key=lambda run: (
            run.parent == root,
            run.parent.name,
            not run.name.isdigit(),
            int(run.name) if run.name.isdigit() else 0,
            run.name,
        ),
    )
    records = [read_record(run) for run in found]
    if name is None:
        return records
    chosen = [record for record in records if record.spec == name]
    if not chosen:
        known = sorted({record.spec for record in records})
        raise RunError(f"no runs of {name!r}; runs here: {', '.join(known) or 'none'}", file=str(root / name))
    return chosen


def _run_dirs(root: Path) -> list[Path]:
    """The run directories (those with a manifest) in ``root`` and one level below, ``latest`` links left out."""

    def runs_in(folder: Path) -> list[Path]:
        return [
            entry
            for entry in folder.iterdir()
            if entry.is_dir() and not entry.is_symlink() and entry.name != LATEST and (entry / MANIFEST).exists()
        ]

    if not root.is_dir():
        return []
    direct = runs_in(root)
    return direct + [
        run
        for folder in root.iterdir()
        if folder.is_dir() and not folder.is_symlink() and folder not in direct
        for run in runs_in(folder)
    ]


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """Every leaf of nested mappings and lists by its spec path (``fit.callbacks[0].monitor``)."""
    if isinstance(value, Mapping):
        items = [(f"{path}.{key}" if path else str(key), item) for key, item in value.items()]
    elif isinstance(value, list) and value and any(isinstance(item, (Mapping, list)) for item in value):
        items = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
    else:
        return {path: value}
    return {leaf: leaf_value for key, item in items for leaf, leaf_value in flatten(item, key).items()}


@dataclass
class Comparison:
    """How two runs differ: spec values and limits (path -> (a, b)) and results (name -> (a, b))."""

    a: RunRecord
    b: RunRecord
    spec: dict[str, tuple[Any, Any]]
    results: dict[str, tuple[float | None, float | None]]

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a.path,
            "b": self.b.path,
            "spec": {path: list(pair) for path, pair in self.spec.items()},
            "results": {name: list(pair) for name, pair in self.results.items()},
        }


def compare_runs(a: str | Path, b: str | Path) -> Comparison:
    """Every spec value (and data limit) that differs between runs ``a`` and ``b``, and both runs' test metrics,
    best monitored value and epochs."""
    first, second = read_record(a), read_record(b)
    left = flatten({**first.config, "limits": first.limits})
    right = flatten({**second.config, "limits": second.limits})
    spec = {
        path: (left.get(path), right.get(path))
        for path in sorted(set(left) | set(right))
        if left.get(path) != right.get(path)
    }
    results: dict[str, tuple[float | None, float | None]] = {}
    for name in dict.fromkeys([*first.test, *second.test]):
        results[f"test {name}"] = (first.test.get(name), second.test.get(name))
    for record, index in ((first, 0), (second, 1)):
        if record.best is not None:
            pair = list(results.get(f"best {record.best['name']}", (None, None)))
            pair[index] = record.best["value"]
            results[f"best {record.best['name']}"] = (pair[0], pair[1])
    results["epochs"] = (float(first.epochs_completed), float(second.epochs_completed))
    return Comparison(first, second, spec, results)


__all__ = [
    "Comparison",
    "Curves",
    "RunRecord",
    "compare_runs",
    "flatten",
    "higher_is_better",
    "list_runs",
    "read_record",
    "run_curves",
]
