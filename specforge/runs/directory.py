"""Run directories: the unit of reproducibility, and what evaluate, export and resume read back.

``runs/<spec name>/<n>/`` (n = 1, 2, ...) with a ``latest`` pointer beside the numbered
directories (a symlink, or a text file holding the number where symlinks are unavailable):

- ``spec.yaml``: the spec text as the user gave it; ``spec.resolved.json``: every default
  filled in and the ``--set`` overrides applied (what the run really used).
- ``manifest.json``: versions (specforge, numpy, python, BLAS), spec hash, seed, overrides,
  data hash, status (running / interrupted / failed / completed), epochs completed, timestamps.
- ``preprocessing.json``: the data steps, for evaluate, predict and export.
- ``checkpoint.npz``: everything resume needs (weights, optimizer and callback state, RNG
  states, epoch, history) in one atomically written file; ``checkpoint.json`` is a readable
  copy of its non-array part.
- ``weights.npz`` (final), ``best.npz`` (ModelCheckpoint), ``history.csv`` / ``history.json``,
  ``metrics.json`` (the test split's loss and metrics).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from threadpoolctl import threadpool_info

from specforge import __version__
from specforge.base.errors import RunError
from specforge.base.fileio import write_text
from specforge.graph.dag import infer_graph
from specforge.graph.model import Model, params_from_arrays, read_npz, write_npz
from specforge.graph.summary import summary_text
from specforge.layers.base import Params
from specforge.spec import override_spec, resolved_spec

if TYPE_CHECKING:
    from specforge.data import Dataset
    from specforge.graph.dag import Graph
    from specforge.spec import Spec

RUNS_ROOT = Path("runs")
LATEST = "latest"

SPEC_TEXT = "spec.yaml"
RESOLVED = "spec.resolved.json"
MANIFEST = "manifest.json"
PREPROCESSING = "preprocessing.json"
WEIGHTS = "weights.npz"
BEST = "best.npz"
CHECKPOINT = "checkpoint.npz"
CHECKPOINT_STATE = "checkpoint.json"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
METRICS = "metrics.json"

#: The only spec value a resumed run may change.
RESUMABLE_OVERRIDES = ("fit.epochs",)

#: The key of the JSON state inside checkpoint.npz.
_STATE_KEY = "__state__"


# -- small file helpers -----------------------------------------------------------------------------
def write_json(path: str | Path, payload: Any) -> Path:
    return write_text(path, json.dumps(payload, indent=2) + "\n")


def read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError("the file does not exist", file=str(path)) from None
    except json.JSONDecodeError as error:
        raise RunError(
            f"not valid JSON ({error.msg}); the file is damaged", file=str(path), line=error.lineno, column=error.colno
        ) from None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- creating a run -------------------------------------------------------------------------------------
def create_run_dir(spec_name: str, out: str | Path | None = None, root: str | Path = RUNS_ROOT) -> Path:
    """A new, empty run directory: ``out`` itself when given, else the next ``root/<spec name>/<n>``.

    ``out`` may exist only when empty, so a run never mixes its files with another's.
    """
    if out is not None:
        path = Path(out)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            hint = f"; resume it with specforge train --resume {path}" if (path / MANIFEST).exists() else ""
            raise RunError(
                f"--out names an existing directory that is not empty; choose a new directory{hint}", file=str(path)
            )
        path.mkdir(parents=True, exist_ok=True)
        return path
    parent = Path(root) / spec_name
    parent.mkdir(parents=True, exist_ok=True)
    number = 1 + max((int(p.name) for p in parent.iterdir() if p.name.isdigit()), default=0)
    while True:
        try:
            (parent / str(number)).mkdir()
            return parent / str(number)
        except FileExistsError:
            number += 1


def start_run(
    spec: Spec, dataset: Dataset, out: str | Path | None, root: str | Path, limits: dict[str, int | None]
) -> Path:
    """A new run directory holding the spec (as given and resolved), the data's preprocessing and a manifest
    with status ``running``; ``numbered`` records whether it is the next ``root/<spec name>/<n>``."""
    run_dir = create_run_dir(spec.name, out, root)
    write_text(run_dir / SPEC_TEXT, _spec_text(spec))
    write_json(run_dir / RESOLVED, spec.config)
    write_json(run_dir / PREPROCESSING, dataset.preprocessing.to_dict())
    created = now()
    write_json(
        run_dir / MANIFEST,
        {
            "spec": spec.name,
            "spec_file": str(Path(spec.file).resolve()) if Path(spec.file).is_file() else spec.file,
            "base_dir": str(spec.base_dir),
            "spec_sha256": spec.sha256(),
            "seed": spec.config["fit"]["seed"],
            "overrides": list(spec.document.overrides.values()),
            "limits": limits,
            "data_hash": dataset.source_hash,
            "data_files": dataset.digests,
            **environment(),
            "numbered": out is None,
            "status": "running",
            "epochs": spec.config["fit"]["epochs"],
            "epochs_completed": 0,
            "created": created,
            "updated": created,
        },
    )
    return run_dir


def _spec_text(spec: Spec) -> str:
    path = Path(spec.file)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    return yaml.safe_dump(spec.document.data, sort_keys=False)


def counts_as_latest(manifest: dict) -> bool:
    """Whether a completed run becomes its spec's ``latest``: a numbered run (no --out) on the whole data (no
    --limit-train/--limit-test), so that a quick run on a slice never replaces the model ``latest`` names."""
    return bool(manifest.get("numbered")) and not any(manifest.get("limits", {}).values())


def point_latest(run_dir: Path) -> None:
    """Make ``<run_dir's parent>/latest`` name ``run_dir`` (atomically replaced)."""
    link = run_dir.parent / LATEST
    temporary = run_dir.parent / f".{LATEST}.{os.getpid()}"
    try:
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(temporary, link)
    except OSError:
        temporary.unlink(missing_ok=True)
        if link.is_symlink() or link.is_dir():
            link.unlink()
        write_text(link, run_dir.name + "\n")


def resolve_run_path(path: str | Path) -> Path:
    """The run directory ``path`` names: the directory itself, or a ``latest`` pointer (symlink or file)."""
    path = Path(path)
    if path.is_file() and path.name == LATEST:
        path = path.parent / path.read_text(encoding="utf-8").strip()
    if not path.is_dir():
        raise RunError(
            "no run directory here; give a run such as runs/<spec name>/latest or runs/<spec name>/1 "
            "(specforge train prints the path)",
            file=str(path),
        )
    if not (path / MANIFEST).exists():
        raise RunError(
            f"not a run directory (no {MANIFEST}); give the directory specforge train printed, "
            "e.g. runs/<spec name>/latest",
            file=str(path),
        )
    return path.resolve() if path.is_symlink() else path


def environment() -> dict[str, Any]:
    """Versions of what produced the numbers: specforge, numpy, python, and the BLAS numpy calls."""
    return {
        "specforge": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "blas": blas_info(),
    }


def blas_info() -> list[dict[str, Any]]:
    """threadpoolctl's view of the loaded BLAS: library, version, threads."""
    return [
        {k: v for k, v in pool.items() if k in ("internal_api", "version", "num_threads", "architecture")}
        for pool in threadpool_info()
    ]


def update_manifest(run_dir: Path, **changes: Any) -> dict:
    """Set ``changes`` in the run's manifest.json (and its ``updated`` time); returns the new manifest."""
    manifest = read_json(run_dir / MANIFEST)
    manifest.update(changes, updated=now())
    write_json(run_dir / MANIFEST, manifest)
    return manifest


# -- resuming a run ----------------------------------------------------------------------------------
def resume_spec(run_dir: Path, manifest: dict, overrides: Sequence[str], limited: bool) -> Spec:
    """The spec a stopped run continues with: its own, with ``fit.epochs`` changed when ``overrides`` say so.

    ``limited`` says the caller asked for example limits, which a resumed run cannot change.
    """
    if limited:
        raise RunError(
            "a resumed run keeps the example limits it started with; leave out --limit-train and --limit-test",
            file=display_path(run_dir),
        )
    if manifest["status"] == "completed" and not overrides:
        raise RunError(
            "the run has completed all its epochs; to train it longer: specforge train --resume "
            f"{display_path(run_dir)} --set fit.epochs=N",
            file=display_path(run_dir),
        )
    for text in overrides:
        if text.partition("=")[0].strip() not in RESUMABLE_OVERRIDES:
            raise RunError(
                f"--set {text}: a resumed run keeps the spec it started with; only "
                f"{', '.join(RESUMABLE_OVERRIDES)} can change",
                file=display_path(run_dir),
            )
    spec = run_spec(run_dir, manifest, read_json(run_dir / RESOLVED))
    return override_spec(spec, overrides) if overrides else spec


def check_same_data(run_dir: Path, manifest: dict, dataset: Dataset) -> None:
    """A resumed run trains on the data it started with (the same hash)."""
    if dataset.source_hash != manifest["data_hash"]:
        raise RunError(
            "the data has changed since the run started (its hash differs from the manifest's); "
            "a resumed run must train on the same data",
            file=display_path(run_dir),
        )


def record_overrides(run_dir: Path, manifest: dict, spec: Spec, overrides: Sequence[str]) -> None:
    """Store the resolved spec a resumed run continues with, and the ``--set`` options that changed it."""
    write_json(run_dir / RESOLVED, spec.config)
    update_manifest(
        run_dir,
        spec_sha256=spec.sha256(),
        epochs=spec.config["fit"]["epochs"],
        overrides=manifest["overrides"] + list(overrides),
    )


def run_spec(run_dir: Path, manifest: dict, config: dict) -> Spec:
    """The run's resolved spec as it was stored (not validated again), located in the run's spec.yaml."""
    return resolved_spec(
        config,
        run_dir / SPEC_TEXT,
        text_is_json=manifest["spec_file"].lower().endswith(".json"),
        recorded_overrides=manifest.get("overrides", ()),
        data_root=Path(manifest["base_dir"]) if "base_dir" in manifest else None,
    )


# -- checkpoints ------------------------------------------------------------------------------------
def save_checkpoint(run_dir: Path, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
    """Write ``arrays`` and the JSON-able ``state`` into checkpoint.npz in one atomic rename, then a readable copy."""
    text = json.dumps(state)
    write_npz(run_dir / CHECKPOINT, {**arrays, _STATE_KEY: np.array(text)})
    write_json(run_dir / CHECKPOINT_STATE, {key: value for key, value in state.items() if key != "rng"})


def load_checkpoint(run_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(arrays, state)`` as ``save_checkpoint`` wrote them."""
    path = run_dir / CHECKPOINT
    if not path.exists():
        raise RunError(
            f"no {CHECKPOINT}: the run stopped before its first checkpoint; start it again with specforge train SPEC",
            file=display_path(run_dir),
        )
    arrays = read_npz(
        path, lambda: f"the run cannot continue from it; train the spec again: {retrain_command(run_dir)}"
    )
    if _STATE_KEY not in arrays:
        raise RunError("holds no training state; it was not written by specforge train", file=str(path))
    return arrays, json.loads(str(arrays.pop(_STATE_KEY)))


def retrain_command(run_dir: Path) -> str:
    """The command that trains the run's spec again as the run started: its file, ``--set`` options and limits."""
    manifest = read_json(run_dir / MANIFEST)
    spec_file = Path(manifest.get("spec_file", ""))
    command = ["specforge", "train", display_path(spec_file) if spec_file.is_file() else "SPEC"]
    command += [part for text in manifest.get("overrides", ()) for part in ("--set", text)]
    command += [
        part for name, value in manifest.get("limits", {}).items() if value for part in (f"--limit-{name}", str(value))
    ]
    return shlex.join(command)


def write_history(run_dir: Path, history: dict[str, list[float]]) -> None:
    """history.json (``{name: [value per epoch]}``) and history.csv (one row per epoch, from 0)."""
    write_json(run_dir / HISTORY_JSON, history)
    names = list(history)
    rows = zip(*(history[name] for name in names))
    lines = [",".join(["epoch", *names])]
    lines += [",".join([str(epoch), *(repr(float(v)) for v in row)]) for epoch, row in enumerate(rows)]
    write_text(run_dir / HISTORY_CSV, "\n".join(lines) + "\n")


# -- reading a run ------------------------------------------------------------------------------------
@dataclass
class Run:
    """A run directory read back: what evaluate, predict and export need."""

    path: Path
    manifest: dict
    config: dict
    preprocessing: dict
    metrics: dict | None = None
    _graph: Any = field(default=None, repr=False)

    def spec(self) -> Spec:
        """The resolved spec the run trained, as stored; errors point into the run's spec.yaml."""
        return run_spec(self.path, self.manifest, self.config)

    @property
    def graph(self) -> Graph:
        """The model's graph (a ``specforge.graph.dag.Graph``), built once from the run's spec."""
        if self._graph is None:
            self._graph = infer_graph(self.spec())
        return self._graph

    @property
    def model(self) -> Model:
        """The trained model (a ``specforge.graph.model.Model``) with the final weights."""
        return self.load_model()

    @property
    def history(self) -> dict[str, list[float]]:
        """Each reported value (loss, metrics, their val_ forms) per epoch, as ``history.json`` holds them."""
        return read_json(self.path / HISTORY_JSON)

    @property
    def status(self) -> str:
        return self.manifest.get("status", "unknown")

    def weights(self, file: str = WEIGHTS) -> list[Params]:
        """The parameters of every node from ``weights.npz`` (or ``best.npz``)."""
        return self.load_model(file).params

    def load_model(self, file: str = WEIGHTS) -> Model:
        """The trained model with the weights of ``file`` (``weights.npz``, or ``best.npz``)."""
        path = self.path / file
        if not path.exists():
            raise RunError(_unfinished(self.path, file), file=display_path(self.path))
        arrays = read_npz(path, lambda: f"train the spec again: {retrain_command(self.path)}")
        return Model(self.graph, params_from_arrays(self.graph, arrays, str(path)))

    def summary(self) -> str:
        """The model summary as ``specforge validate`` prints it, as text."""
        return summary_text(self.spec(), self.graph)

    def __repr__(self) -> str:
        results = ", ".join(
            f"{name} {value:.4g}"
            for name, value in (self.metrics or {}).items()
            if isinstance(value, (int, float)) and name != "examples"
        )
        return (
            f"Run({display_path(self.path)!r}, {self.config['name']}, {self.status}"
            + (f", test {results}" if results else "")
            + ")"
        )


def _unfinished(run_dir: Path, file: str) -> str:
    if file == WEIGHTS:
        return f"no {WEIGHTS}: the run did not finish; resume it with specforge train --resume {display_path(run_dir)}"
    return f"no {file}; it is written by the ModelCheckpoint callback"


def open_run(path: str | Path) -> Run:
    """Read the run at ``path`` (``runs/x/latest``, ``runs/x/3`` or any run directory); RunError when incomplete."""
    run_dir = resolve_run_path(path)
    for name in (RESOLVED, PREPROCESSING):
        if not (run_dir / name).exists():
            raise RunError(f"no {name}: the run directory is incomplete", file=display_path(run_dir))
    if not (run_dir / WEIGHTS).exists():
        raise RunError(_unfinished(run_dir, WEIGHTS), file=display_path(run_dir))
    metrics_path = run_dir / METRICS
    return Run(
        run_dir,
        read_json(run_dir / MANIFEST),
        read_json(run_dir / RESOLVED),
        read_json(run_dir / PREPROCESSING),
        read_json(metrics_path) if metrics_path.exists() else None,
    )


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (as a user would type it)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


__all__ = [
    "Run",
    "check_same_data",
    "counts_as_latest",
    "create_run_dir",
    "environment",
    "load_checkpoint",
    "open_run",
    "point_latest",
    "read_json",
    "record_overrides",
    "resolve_run_path",
    "resume_spec",
    "retrain_command",
    "run_spec",
    "save_checkpoint",
    "start_run",
    "update_manifest",
    "write_history",
    "write_json",
]
