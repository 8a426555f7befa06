"""The Python API: everything the CLI does, callable from a notebook.

spec = api.load_spec("specs/mnist.yaml")
graph = api.build_graph(spec)
run = api.fit(spec, limit_train=5000)           # trains with numpy, writes runs/mnist-cnn/<n>
api.evaluate(run)                               # {'split': 'test', 'loss': ..., 'accuracy': ...}
api.predict(run, images)                        # probabilities for raw images (uint8 as stored)
api.export(run)                                 # run/model.onnx, once it passes the parity gate
api.predict_onnx("model.onnx", data="mnist:test", limit=4)   # onnxruntime predictions with labels
api.predict_rows("model.onnx", "rows.csv")      # a table model on raw rows (CSV or Parquet)
api.inspect("model.onnx")                       # interface, versions, metadata, operators
api.serve("model.onnx", port=8000)              # the Open Inference Protocol on 127.0.0.1 (specforge[serve])
result = api.sweep("specs/sweeps/mnist.yaml", limit_train=1000)   # Optuna trials, each a run directory
result.trials, result.best, result.best_run     # sorted records, the best one, its Run
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from specforge import __version__
from specforge.base.errors import (
    DataError,
    Problem,
    RunError,
    SpecError,
    SpecforgeError,
    SweepInterrupted,
    TrainingInterrupted,
)
from specforge.data import Dataset, render_grid
from specforge.data import data_info as describe_data
from specforge.data import load_data as load_dataset
from specforge.data.info import every_class_in_turn
from specforge.data.splits import Split
from specforge.data.table.info import render_histograms
from specforge.data.text.show import write_examples
from specforge.export.inspect import describe as describe_model
from specforge.graph.build import build_graph, data_shape, load_and_build
from specforge.graph.checks import check_options
from specforge.layers.augmentation import augment
from specforge.options.callbacks import Callback
from specforge.predict import images, table, text
from specforge.predict.images import PredictionReport
from specforge.predict.run_model import is_run_dir
from specforge.predict.session import DEFAULT_BATCH_SIZE
from specforge.predict.table import RowPredictions
from specforge.runs import listing, plots
from specforge.runs.directory import Run, open_run
from specforge.runs.listing import Comparison, RunRecord
from specforge.serve.limits import Limits
from specforge.spec import Spec, load_spec
from specforge.spec_api import schema_text, validate, write_schema, write_template
from specforge.sweep.results import SweepResult
from specforge.sweep.runner import OnUpdate, OnWarning, run_sweep
from specforge.training import backends, loop
from specforge.training import evaluate as evaluation
from specforge.training.moving_statistics import unsettled_statistics
from specforge.training.progress import Progress

if TYPE_CHECKING:
    from specforge.data.preprocessing import Preprocessing
    from specforge.export.run_export import ExportResult

__all__ = [
    "DataError",
    "RunError",
    "SpecforgeError",
    "SweepInterrupted",
    "TrainingInterrupted",
    "__version__",
    "build_graph",
    "compare_runs",
    "data_info",
    "evaluate",
    "evaluation_warnings",
    "export",
    "fit",
    "inspect",
    "is_rows_file",
    "load_data",
    "load_run",
    "load_spec",
    "plot",
    "plot_confusion",
    "plot_misclassified",
    "predict",
    "predict_onnx",
    "predict_rows",
    "render_samples",
    "runs",
    "schema_text",
    "serve",
    "sweep",
    "validate",
    "write_schema",
    "write_template",
]


def fit(
    spec: Spec | str | Path | None = None,
    *,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    root: str | Path = "runs",
    resume: str | Path | None = None,
    quiet: bool = False,
    progress: Progress | None = None,
    limit_train: int | None = None,
    limit_test: int | None = None,
    observers: Sequence[Callback] = (),
    backend: str | None = None,
    device: str | None = None,
    workers: int | None = None,
    address: str | None = None,
) -> Run:
    """``specforge train``: train a spec (object or file) into a run directory, or resume a run; returns the Run.

    ``overrides`` (``"fit.epochs=1"``) apply when loading a spec file, or to a resumed run (fit.epochs only).
    ``observers``: callbacks besides the spec's (``specforge.options.callbacks.Callback``), not saved in checkpoints.
    ``backend``: numpy, torch (on ``device``: cpu, cuda or auto) or ray (``workers`` on the cluster at
    ``address``, or a local Ray); default the spec's ``fit.backend``.
    """
    if isinstance(spec, (str, Path)):
        spec, overrides = load_and_build(spec, overrides)[0], ()
    return backends.fit(
        spec,
        out=out,
        root=root,
        resume=resume,
        overrides=overrides,
        quiet=quiet,
        progress=progress,
        limit_train=limit_train,
        limit_test=limit_test,
        observers=observers,
        backend=backend,
        device=device,
        workers=workers,
        address=address,
    )


def load_run(path: str | Path) -> Run:
    """A finished run directory (``runs/x/latest``, ``runs/x/3``, ...) as a ``specforge.runs.directory.Run``."""
    return open_run(path)


def evaluate(
    run: Run | str | Path,
    split: str = "test",
    *,
    batch_size: int | None = None,
    limit: int | None = None,
    details: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
) -> dict:
    """``specforge evaluate``: loss and metrics of a run (a Run or its path) on a split of its data; with
    ``details``, also ``per_class`` precision, recall, F1 and support and the ``confusion_matrix``;
    ``on_batch(done, total)`` after each batch (a progress bar)."""
    return evaluation.evaluate_run(
        _as_run(run), split, batch_size=batch_size, limit=limit, details=details, on_batch=on_batch
    )


def evaluation_warnings(run: Run | str | Path) -> list[Problem]:
    """Remarks on a run's scores that stop nothing: moving statistics of batch normalization that had too few
    training steps to move from their initial values (for a run that recorded its steps)."""
    run = _as_run(run)
    steps = run.manifest.get("steps_completed")
    warning = None if steps is None else unsettled_statistics(run.spec(), run.graph, steps)
    return [] if warning is None else [warning]


def runs(name: str | None = None, root: str | Path = "runs") -> list[RunRecord]:
    """``specforge runs [NAME]``: every run under ``root`` (or spec ``name``'s) with its status, epochs, best
    monitored value, test metrics, duration and spec hash."""
    return listing.list_runs(name, root)


def compare_runs(a: Run | str | Path, b: Run | str | Path) -> Comparison:
    """``specforge runs compare A B``: the spec values that differ between two runs, and both runs' results."""
    return listing.compare_runs(*(run.path if not isinstance(run, (str, Path)) else run for run in (a, b)))


def plot(runs: Sequence[Run | str | Path], out: str | Path | None = None) -> Path:
    """``specforge plot``: a PNG of the runs' training curves (default: RUN/curves.png for one run, else
    curves.png here); needs matplotlib (``specforge[plot]``)."""
    paths = [run.path if not isinstance(run, (str, Path)) else Path(run) for run in runs]
    curves = [listing.run_curves(path) for path in paths]
    default = Path(curves[0].label) / "curves.png" if len(curves) == 1 else Path("curves.png")
    return plots.plot_curves(curves, out or default)


def plot_confusion(run: Run | str | Path, results: dict, out: str | Path | None = None) -> Path:
    """The confusion matrix of ``evaluate(run, details=True)`` as a PNG (default: RUN/confusion-SPLIT.png)."""
    run = _as_run(run)
    title = f"{run.manifest.get('spec', run.path.name)}: {results['split']} ({results['examples']} examples)"
    return plots.plot_confusion(
        results["confusion_matrix"],
        results["class_names"],
        out or run.path / f"confusion-{results['split']}.png",
        title,
    )


def plot_misclassified(
    run: Run | str | Path,
    split: str = "test",
    *,
    out: str | Path | None = None,
    count: int = 25,
    limit: int | None = None,
) -> tuple[Path, int, int]:
    """A PNG grid of the first ``count`` examples of ``split`` the run's model gets wrong, each captioned with the
    predicted class (and its probability) and the true class (default: RUN/misclassified-SPLIT.png); returns
    the path, how many are wrong and how many examples there were."""
    run = _as_run(run)
    mistakes = evaluation.find_mistakes(run, split, limit=limit)
    if not len(mistakes.indices):
        raise DataError(
            f"the model gets every one of the {mistakes.examples} {split} examples right; nothing to draw",
            file=str(run.path),
        )
    names = mistakes.class_names
    shown = range(min(count, len(mistakes.indices)))
    captions = [
        (
            f"predicted {names[mistakes.predicted[i]]} ({mistakes.confidence[i]:.0%})",
            f"true {names[mistakes.labels[i]]}, #{mistakes.indices[i]}",
        )
        for i in shown
    ]
    title = (
        f"{len(mistakes.indices)} of {mistakes.examples} {split} examples wrong; first {len(captions)}: "
        "predicted (probability), true class"
    )
    path = plots.plot_examples(
        mistakes.images[: len(captions)], captions, out or run.path / f"misclassified-{split}.png", title
    )
    return path, len(mistakes.indices), mistakes.examples


def predict(
    run: Run | str | Path, images: np.ndarray, *, batch_size: int = DEFAULT_BATCH_SIZE, preprocess: bool = True
) -> np.ndarray:
    """Outputs (class probabilities) of a run's model with the numpy backend.

    ``images`` are as stored (uint8 pixels, ``(N, H, W[, C])`` or flat rows); the run's preprocessing is
    applied batch by batch unless ``preprocess`` is False (then they must already be model inputs).
    """
    return evaluation.predict_run(_as_run(run), images, batch_size=batch_size, preprocess=preprocess)


def load_data(spec: Spec) -> Dataset:
    """The data a spec declares, checked and split as training will use it (``specforge data info``)."""
    check_options(spec)
    if "input_shape" not in spec.config["model"]:
        data_shape(spec)
    try:
        return load_dataset(spec.config, spec.base_dir, {})
    except DataError as error:
        raise spec.located(error) from None


def data_info(spec: Spec) -> dict:
    """``specforge data info``: counts, shapes, dtypes, value ranges and class balance of each split."""
    return describe_data(load_data(spec))


def render_samples(
    spec: Spec, split: str, out: str | Path | None = None, count: int = 25, augmented: bool = False
) -> Path:
    """``specforge data show``: a PNG grid of ``count`` images of ``split`` with their labels, or for a table
    histograms of each feature column and the target (default file: ``<spec name>-<split>.png``), or for text
    ``count`` documents with their classes and token ids (default file: ``<spec name>-<split>.txt``); returns
    its path. ``augmented``: the images as the model's augmentation layers change them in training (drawn from
    ``fit.seed``; default file ``<spec name>-<split>-augmented.png``)."""
    dataset = load_data(spec)
    chosen = dataset.splits().get(split)
    if chosen is None:
        raise DataError(
            f"the data has no {split} split; use one of: {', '.join(dataset.splits())}", file=str(spec.file)
        )
    vectorizer = dataset.preprocessing.vectorizer
    if vectorizer is not None:
        return write_examples(chosen, vectorizer, dataset.class_names, Path(out or f"{spec.name}-{split}.txt"), count)
    path = Path(out or f"{spec.name}-{split}{'-augmented' if augmented else ''}.png")
    if augmented:
        chosen = _augmented(spec, chosen, dataset.preprocessing, count)
    elif dataset.preprocessing.pipeline is not None and chosen.table is not None:  # a table's split keeps its rows
        return render_histograms(dataset.preprocessing.pipeline, chosen.table, path)
    return render_grid(chosen, dataset.class_names, path, count)


def _augmented(spec: Spec, split: Split, preprocessing: Preprocessing, count: int) -> Split:
    """``count`` examples of ``split`` (every class in turn, as the grid takes them) through the model's
    augmentation layers in training mode, drawn from ``fit.seed``."""
    layers = [node.layer for node in build_graph(spec).nodes if getattr(node.layer, "augments", False)]
    if not layers:
        message = (
            "the model has no augmentation layers to show; put RandomFlip, RandomRotation, ... first in model.layers"
        )
        raise SpecError(problems=[Problem(message, spec.locate(("model", "layers")))])
    chosen = every_class_in_turn(split.labels, min(count, len(split)))
    rng = loop.generators(spec.config["fit"]["seed"])[2]
    images = augment(layers, preprocessing.images(split.images[chosen]), rng)
    labels = None if split.labels is None else np.asarray(split.labels)[chosen]
    return Split(split.name, images, labels, split.images_file, split.labels_file, preprocessing)


def export(
    run: Run | str | Path,
    *,
    opset: int = 13,
    logits: bool = False,
    preprocessing: bool = True,
    output: str | Path | None = None,
    web: str | Path | None = None,
    quantize: str | None = None,
    max_accuracy_drop: float | None = None,
) -> ExportResult:
    """``specforge export RUN --onnx``: write the run's model as ONNX (RUN/model.onnx unless ``output``) once it
    passes the parity gate; the result (path, versions, parity) is also stored in RUN/export.json.
    ``web``: a directory to write a static page that runs the model in the browser.  ``quantize="int8"``: write
    the int8 model (RUN/model.int8.onnx) once its test accuracy is within ``max_accuracy_drop`` points."""
    from specforge.export.run_export import export_run

    return export_run(
        run.path if not isinstance(run, (str, Path)) else run,
        opset=opset,
        logits=logits,
        preprocessing=preprocessing,
        output=output,
        web=web,
        quantize=quantize,
        max_accuracy_drop=max_accuracy_drop,
    )


def predict_onnx(
    model: str | Path,
    inputs: Sequence[str | Path] = (),
    *,
    data: str | None = None,
    limit: int | None = None,
    top_k: int = 1,
    threads: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    invert: bool = True,
    on_batch: Callable[[int, int], None] | None = None,
    backend: str = "local",
    address: str | None = None,
    actors: int | None = None,
    raw: bool = False,
    texts: Sequence[str] = (),
    column: str | None = None,
    output_name: str | None = None,
) -> PredictionReport:
    """``specforge predict``: an exported model's top-``top_k`` classes for image/array files or ``data``
    (``SOURCE:SPLIT`` or ``SPEC:SPLIT``, with labels), computed by onnxruntime in batches. ``model`` may also be a
    run directory: its numpy model predicts, without exporting first (local backend only).

    A text model predicts on documents: ``texts``, ``.txt`` files in ``inputs`` (one document a line), or the
    ``column`` of a ``.csv`` file (default ``text``); a run directory's documents are vectorized with its saved
    vocabulary.

    A model of several outputs (``model.outputs``) gives output ``output_name``'s classes (required for it).

    A model specforge did not export (no specforge metadata) is refused unless ``raw``: its inputs are then
    fed as they are, already scaled as the model expects.

    ``backend`` ray: the batches run on Ray Data (at ``address``, RAY_ADDRESS or a local Ray) in ``actors``
    actors of ``threads`` CPUs each (default 1; actors default: the cluster's CPUs / threads)."""
    return images.predict_onnx(
        model,
        inputs,
        data=data,
        limit=limit,
        top_k=top_k,
        threads=threads,
        batch_size=batch_size,
        invert=invert,
        on_batch=on_batch,
        backend=backend,
        address=address,
        actors=actors,
        raw=raw,
        texts=texts,
        column=column,
        output_name=output_name,
    )


def is_rows_file(path: str | Path) -> bool:
    """Whether ``path`` names a CSV or Parquet file of table rows (for ``predict_rows``)."""
    return table.is_rows_file(path)


def predicts_documents(model: str | Path) -> bool:
    """Whether ``model`` (a run directory or an exported file) is a text model, which reads a CSV's column of
    documents rather than a table's rows."""
    return text.predicts_documents(model)


def predict_rows(
    model: str | Path,
    rows: str | Path,
    *,
    threads: int | None = None,
    limit: int | None = None,
    output_name: str | None = None,
) -> RowPredictions:
    """``specforge predict MODEL rows.csv``: an exported table model's predictions (or a table run directory's,
    with its numpy model) for the raw rows of a CSV or Parquet file (the model's feature columns by name; other
    columns are ignored); for a model of several outputs, output ``output_name``'s classes."""
    if is_run_dir(model):
        return table.run_rows(model, rows, limit=limit, output_name=output_name)
    return table.predict_rows(model, rows, threads=threads, limit=limit, output_name=output_name)


def inspect(model: str | Path) -> dict:
    """``specforge inspect``: an ONNX file's interface, versions, producer, metadata, size and operators."""
    return describe_model(model)


def serve(
    model: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    name: str | None = None,
    max_batch: int = 256,
    max_body_bytes: int = 8 * 1024 * 1024,
    read_timeout: float = 30.0,
    threads: int | None = None,
) -> None:
    """``specforge serve``: serve an ONNX file (or a run's exported model) on the Open Inference Protocol until
    SIGTERM or Ctrl-C; needs ``pip install 'specforge[serve]'``.  ``read_timeout``: seconds a request's headers,
    and then its body, may take to arrive."""
    from specforge.serve.server import serve as run_server

    run_server(
        model, host=host, port=port, name=name, limits=Limits(max_body_bytes, max_batch, read_timeout), threads=threads
    )


def sweep(
    spec: Spec | str | Path,
    *,
    overrides: Sequence[str] = (),
    trials: int | None = None,
    jobs: int = 1,
    backend: str = "local",
    address: str | None = None,
    root: str | Path = "runs",
    limit_train: int | None = None,
    limit_test: int | None = None,
    on_update: OnUpdate | None = None,
    on_warning: OnWarning | None = None,
) -> SweepResult:
    """``specforge sweep``: run the spec's ``sweep:`` (or a sweep file's) in ``root/<name>/sweeps/<n>/``.

    ``backend`` local: Optuna with a journal file, ``jobs`` trial processes sharing the cores; the same call
    after a crash continues the sweep.  ``backend`` ray: Ray Tune at ``address`` (or RAY_ADDRESS, else a
    local Ray), ``jobs`` trials at once.  Returns the trials sorted by the objective, the best one
    (``result.best``, ``result.best_run``) and the path of ``best.yaml``.  ``on_warning`` gets each thing the
    sweep put right and went on from, as a Problem (default: a Python warning).
    """
    return run_sweep(
        spec,
        overrides=overrides,
        trials=trials,
        jobs=jobs,
        backend=backend,
        address=address,
        root=root,
        limit_train=limit_train,
        limit_test=limit_test,
        on_update=on_update,
        on_warning=on_warning,
    )


def _as_run(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else open_run(run)
