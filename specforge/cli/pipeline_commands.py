"""Every command but the spec commands: train, evaluate, data, runs, plot, export, predict, sweep, inspect and serve,
each a call to the API (``specforge.api``) whose results the presenters (``specforge.cli.present``) show."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import Progress

from specforge import api
from specforge.cli.common import INTERRUPTED_EXIT, NEEDS_PLOT, JsonOption, SetOption, command, echo_json
from specforge.cli.present import (
    accuracy_line,
    display_path,
    format_comparison,
    format_confusion,
    format_description,
    format_line,
    format_per_class,
    format_results,
    format_runs,
    json_line,
    latest_note,
    print_sweep,
    row_lines,
    sweep_view,
    table_info_lines,
    text_info_lines,
    write_report,
    write_row_predictions,
)

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

app = typer.Typer()


@command(app)
def train(
    spec: Path | None = typer.Argument(None, help="Spec file; leave out with --resume."),
    out: Path | None = typer.Option(
        None, "--out", help="Run directory to create (default: the next runs/<spec name>/<n>)."
    ),
    overrides: list[str] | None = SetOption,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="One line per epoch, no progress bar."),
    resume: Path | None = typer.Option(
        None, "--resume", metavar="RUN", help="Continue an interrupted run from its last checkpoint."
    ),
    limit_train: int | None = typer.Option(
        None, "--limit-train", min=1, metavar="N", help="Train on the first N training examples only."
    ),
    limit_test: int | None = typer.Option(
        None, "--limit-test", min=1, metavar="N", help="Validate and test on the first N examples only."
    ),
    backend: str | None = typer.Option(
        None,
        "--backend",
        metavar="numpy|torch|ray",
        help="numpy (the reference), torch (PyTorch, needs specforge\\[torch]) "
        "or ray (PyTorch data-parallel on Ray Train, needs "
        "specforge\\[torch,ray]); default: the spec's fit.backend.",
    ),
    device: str | None = typer.Option(
        None,
        "--device",
        metavar="cpu|cuda|auto",
        help="With --backend torch or ray: where to train (default auto: a "
        "CUDA GPU when PyTorch sees one, else the CPU).",
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        metavar="N",
        help="With --backend ray: data-parallel workers, one CPU (or GPU) each (default 2).",
    ),
    address: str | None = typer.Option(
        None,
        "--address",
        metavar="HOST:PORT",
        help="With --backend ray: the cluster (default: RAY_ADDRESS, else a local Ray started for the run).",
    ),
) -> None:
    """Train a spec (numpy by default; PyTorch or Ray Train with --backend); writes a run directory and prints
    its path."""
    if (spec is None) == (resume is None):
        raise api.RunError(
            "give a spec file to start a run, or --resume RUN to continue one (not both)", file="specforge train"
        )
    try:
        run = api.fit(
            spec,
            overrides=overrides or (),
            out=out,
            resume=resume,
            quiet=quiet,
            limit_train=limit_train,
            limit_test=limit_test,
            backend=backend,
            device=device,
            workers=workers,
            address=address,
        )
    except api.TrainingInterrupted as interruption:
        typer.echo(str(interruption), err=True)
        raise typer.Exit(INTERRUPTED_EXIT) from None
    if run.metrics is not None:
        typer.echo(format_results(run.metrics))
    typer.echo(f"run: {display_path(run.path)}")
    note = latest_note(run)
    if note:
        typer.echo(note)


@command(app)
def evaluate(
    run: Path = typer.Argument(..., help="Run directory, e.g. runs/mnist-cnn/latest."),
    split: str = typer.Option("test", "--split", help="test, train or validation."),
    limit: int | None = typer.Option(None, "--limit", min=1, metavar="N", help="Evaluate the first N examples only."),
    as_json: bool = JsonOption,
    plot: bool = typer.Option(
        False, "--plot", help="Also write the confusion matrix as a PNG, RUN/confusion-<split>.png " + NEEDS_PLOT + "."
    ),
) -> None:
    """Print the loss and metrics of a trained run on a split of its data, each class's precision, recall and F1,
    and the confusion matrix."""
    bar = _ProgressBar("evaluating") if sys.stderr.isatty() else None
    try:
        results = api.evaluate(run, split, limit=limit, details=True, on_batch=bar)
    finally:
        if bar is not None:
            bar.close()
    for warning in api.evaluation_warnings(run):
        typer.echo(warning.format(), err=True)
    picture = api.plot_confusion(run, results) if plot else None
    if as_json:
        echo_json({**results, **({"confusion_png": str(picture)} if picture else {})})
        return
    typer.echo(format_results(results))
    typer.echo("\n" + format_per_class(results))
    typer.echo("\nconfusion matrix (rows: true class, columns: predicted class)\n" + format_confusion(results))
    if picture is not None:
        typer.echo(f"\nwrote {picture}")


data_app = typer.Typer(help="Look at the data a spec declares.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@command(data_app, name="info")
def data_info(
    spec: Path = typer.Argument(..., help="Spec file."),
    overrides: list[str] | None = SetOption,
    as_json: bool = JsonOption,
) -> None:
    """Counts, shapes, dtypes, value ranges and class balance of each split."""
    info = api.data_info(api.load_spec(spec, overrides or ()))
    if as_json:
        echo_json(info)
        return
    if "columns" in info:
        for line in table_info_lines(info):
            typer.echo(line)
        return
    typer.echo(f"classes: {info['num_classes']} ({', '.join(info['class_names'])})")
    examples = "documents as" if "text" in info else "images"
    for name, split in info["splits"].items():
        shape = "x".join(map(str, split["image_shape"]))
        balance = " ".join(map(str, split.get("class_counts", [])))
        typer.echo(
            f"{name}: {split['count']} {examples} {shape} {split['dtype']}, "
            f"values {split['min']}..{split['max']}" + (f", per class: {balance}" if balance else "")
        )
    if "text" in info:
        for line in text_info_lines(info["text"]):
            typer.echo(line)


@command(data_app, name="show")
def data_show(
    spec: Path = typer.Argument(..., metavar="SPEC|RUN", help="Spec file; with --misclassified, a run directory."),
    out: Path | None = typer.Option(
        None, "--out", help="PNG file to write (default: <spec name>-<split>.png, or RUN/misclassified-<split>.png)."
    ),
    split: str | None = typer.Option(
        None, "--split", help="train or test (default: train, or test with --misclassified)."
    ),
    count: int = typer.Option(25, "--count", min=1, help="Number of images."),
    misclassified: bool = typer.Option(
        False,
        "--misclassified",
        help="Draw the examples the run's model gets wrong, with the predicted and the true class " + NEEDS_PLOT + ".",
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, metavar="N", help="With --misclassified: look at the first N examples only."
    ),
    augmented: bool = typer.Option(
        False,
        "--augmented",
        help="Draw the images as the model's augmentation layers change them in training (drawn from fit.seed).",
    ),
    overrides: list[str] | None = SetOption,
) -> None:
    """Write a PNG grid of sample images with their labels (for a table: histograms of its columns; for text: a
    text file of documents with their token ids), or of a run's mistakes, and print where."""
    if misclassified:
        path, wrong, examples = api.plot_misclassified(spec, split or "test", out=out, count=count, limit=limit)
        typer.echo(
            f"{wrong} of {examples} {split or 'test'} examples are misclassified; wrote the first "
            f"{min(count, wrong)} to {path}"
        )
        return
    path = api.render_samples(api.load_spec(spec, overrides or ()), split or "train", out, count, augmented)
    typer.echo(f"wrote {path}")


@command(app, name="runs")
def list_runs(
    args: list[str] | None = typer.Argument(
        None,
        metavar="[NAME] | compare A B",
        help="A spec name to list only its runs, or compare and two run directories.",
    ),
    root: Path = typer.Option(
        Path("runs"),
        "--root",
        help="Where the runs are: ROOT/<spec name>/<run>, and runs put in ROOT itself with train --out.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """List the runs (status, epochs, best validation value, test metrics, duration, spec hash), or compare two:
    the spec values that differ and both runs' results."""
    args = args or []
    if args[:1] == ["compare"]:
        if len(args) != 3:
            raise api.RunError("compare takes two runs: specforge runs compare RUN_A RUN_B", file="specforge runs")
        comparison = api.compare_runs(args[1], args[2])
        typer.echo(json.dumps(comparison.to_json(), indent=2) if as_json else format_comparison(comparison))
        return
    if len(args) > 1:
        raise api.RunError("give at most one spec name, or: compare RUN_A RUN_B", file="specforge runs")
    records = api.runs(args[0] if args else None, root)
    typer.echo(json.dumps([record.to_json() for record in records], indent=2) if as_json else format_runs(records))


@command(app)
def plot(
    runs: list[Path] = typer.Argument(
        ..., metavar="RUN...", help="Run directories, e.g. runs/mnist-cnn/latest; several are overlaid."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="PNG file to write (default: RUN/curves.png for one run, else curves.png)."
    ),
) -> None:
    r"""Write a PNG of the training curves: loss and every metric per epoch, training and validation, with each
    run's best epoch marked (needs specforge\[plot])."""
    typer.echo(f"wrote {api.plot(runs, out)}")


class Quantization(str, Enum):
    int8 = "int8"


@command(app)
def export(
    run: Path = typer.Argument(..., help="Run directory, e.g. runs/mnist-cnn/latest."),
    onnx: bool = typer.Option(True, "--onnx", help="Write ONNX (the default and only format)."),
    opset: int = typer.Option(
        13, "--opset", min=13, max=21, help="ONNX opset, 13 to 21; the IR version follows (13-14: 7, 21: 10)."
    ),
    logits: bool = typer.Option(False, "--logits", help="Also output 'logits', the final softmax's input."),
    no_preprocessing: bool = typer.Option(
        False,
        "--no-preprocessing",
        help="Leave the run's preprocessing out of the graph: the model "
        "then takes preprocessed values, not raw pixels.",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Where to write the model (default: RUN/model.onnx)."
    ),
    web: Path | None = typer.Option(
        None,
        "--web",
        metavar="DIR",
        help="Also write a static web page that runs the model in the browser (onnxruntime-web, no CDN) into DIR.",
    ),
    quantize: Quantization | None = typer.Option(
        None,
        "--quantize",
        help="Write an int8 model (default: RUN/model.int8.onnx) once it keeps the float model's test accuracy.",
    ),
    max_accuracy_drop: float = typer.Option(
        0.5,
        "--max-accuracy-drop",
        min=0,
        metavar="POINTS",
        help="With --quantize: the most test accuracy, in percentage points, the int8 model may lose.",
    ),
) -> None:
    """Export a trained run as ONNX once it computes what the numpy model computes; prints the path and the parity."""
    result = api.export(
        run,
        opset=opset,
        logits=logits,
        preprocessing=not no_preprocessing,
        output=output,
        web=web,
        quantize=quantize.value if quantize else None,
        max_accuracy_drop=max_accuracy_drop,
    )
    typer.echo(f"parity: {result.parity.summary()}")
    if result.quantization is not None:
        typer.echo(f"int8: {result.quantization.summary()}")
    typer.echo(
        f"model: {display_path(result.path)} (opset {result.opset}, IR {result.ir_version}, "
        f"{result.size / 1024:.1f} KiB)"
    )
    if result.site is not None:
        typer.echo(
            f"web page: {display_path(result.site)} (serve it, e.g. python -m http.server -d "
            f"{display_path(result.site)}, and open http://127.0.0.1:8000/)"
        )


@command(app)
def predict(
    model: Path = typer.Argument(
        ...,
        help="ONNX file written by specforge export, or a run directory (its model predicts without exporting first).",
    ),
    inputs: list[Path] | None = typer.Argument(
        None,
        help="PNG/JPEG images or .npy/.npz arrays "
        "(N, H, W[, C]) of raw values; an .npz gives its "
        "only array, else x_test, images, x or inputs. For a "
        "table model: one CSV or Parquet file of raw rows. For a text model: .txt files (one document a line) "
        "or a CSV file (its --column).",
    ),
    texts: list[str] | None = typer.Option(
        None, "--text", metavar="TEXT", help="A document for a text model to classify (repeat for several)."
    ),
    column: str | None = typer.Option(
        None, "--column", metavar="NAME", help="For a text model: the CSV column holding the documents (default: text)."
    ),
    output_name: str | None = typer.Option(
        None,
        "--output-name",
        metavar="NAME",
        help="For a model of several outputs (model.outputs): the output whose classes to show.",
    ),
    data: str | None = typer.Option(
        None,
        "--data",
        metavar="SOURCE:SPLIT",
        help="A data split with labels, e.g. mnist:test or specs/mnist.yaml:test.",
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, metavar="N", help="The first N inputs only."),
    top_k: int = typer.Option(1, "--top-k", min=1, metavar="K", help="Show the K most likely classes."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per input and line."),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        metavar="FILE",
        help="Write every prediction to FILE.csv, .json, .jsonl or .parquet instead.",
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="onnxruntime threads (default: the cores this process may use)."
    ),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Inputs per onnxruntime call."),
    backend: str = typer.Option(
        "local", "--backend", help="local (one session here) or ray (Ray Data: a pool of actors, one session each)."
    ),
    address: str | None = typer.Option(
        None,
        "--address",
        metavar="HOST:PORT",
        help="With --backend ray: the cluster (default: RAY_ADDRESS, else a local Ray).",
    ),
    actors: int | None = typer.Option(
        None,
        "--actors",
        min=1,
        metavar="N",
        help="With --backend ray: actors in the pool (default: the "
        "cluster's CPUs / --threads, which defaults to 1 there).",
    ),
    no_invert: bool = typer.Option(
        False,
        "--no-invert",
        help="Keep dark-on-light images as they are (by default a one-channel "
        "image brighter than 127 on average is inverted, as MNIST digits "
        "are white on black).",
    ),
    raw: bool = typer.Option(
        False,
        "--raw",
        help="For a model specforge did not export (no specforge metadata): feed the "
        "inputs as they are, already scaled as the model expects.",
    ),
) -> None:
    """Predict with an exported model: images, arrays, a data split, a table model's raw rows (CSV/Parquet), or a
    text model's documents (--text, .txt lines, a CSV column)."""
    if (
        inputs
        and len(inputs) == 1
        and api.is_rows_file(inputs[0])
        and data is None
        and not texts
        and column is None
        and not api.predicts_documents(model)
    ):
        _predict_rows(model, inputs[0], limit, as_json, output, threads, output_name)
        return

    bar = _ProgressBar() if sys.stderr.isatty() else None
    try:
        report = api.predict_onnx(
            model,
            inputs or (),
            data=data,
            limit=limit,
            top_k=top_k,
            threads=threads,
            batch_size=batch_size,
            invert=not no_invert,
            on_batch=bar,
            backend=backend,
            address=address,
            actors=actors,
            raw=raw,
            texts=texts or (),
            column=column,
            output_name=output_name,
        )
    finally:
        if bar is not None:
            bar.close()
    summary = accuracy_line(report)
    if output is not None:
        write_report(report, output)
        typer.echo(f"wrote {len(report.predictions)} predictions to {output}")
    elif as_json:
        for prediction in report.predictions:
            typer.echo(json_line(prediction))
    else:
        width = max((len(p.source) for p in report.predictions), default=0)
        for prediction in report.predictions:
            typer.echo(format_line(prediction, width))
    if summary:
        typer.echo(summary, err=as_json and output is None)


def _predict_rows(
    model: Path,
    rows: Path,
    limit: int | None,
    as_json: bool,
    output: Path | None,
    threads: int | None,
    output_name: str | None,
) -> None:
    predictions = api.predict_rows(model, rows, threads=threads, limit=limit, output_name=output_name)
    for note in predictions.notes:
        typer.echo(f"{rows}: warning: {note}", err=True)
    if output is not None:
        write_row_predictions(predictions, output)
        typer.echo(f"wrote {len(predictions.rows)} predictions to {output}")
        return
    for line in map(json.dumps, predictions.records()) if as_json else row_lines(predictions):
        typer.echo(line)


class _ProgressBar:
    """A rich progress bar on stderr, shown once the work (predicting, evaluating) takes more than one batch."""

    def __init__(self, task: str = "predicting") -> None:
        self._description = task
        self._bar: tuple[Progress, TaskID] | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            if done >= total:
                return

            progress = Progress(console=Console(stderr=True), transient=True)
            progress.start()
            self._bar = (progress, progress.add_task(self._description, total=total))
        progress, task = self._bar
        progress.update(task, completed=done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar[0].stop()


@command(app)
def sweep(
    spec: Path = typer.Argument(..., help="Spec with a sweep: section, or a sweep file {spec: PATH, sweep: ...}."),
    trials: int | None = typer.Option(
        None, "--trials", min=1, metavar="N", help="Number of trials (default: sweep.trials)."
    ),
    jobs: int = typer.Option(
        1, "--jobs", "-j", min=1, metavar="N", help="Trials at once; locally each gets cores / N."
    ),
    backend: str = typer.Option("local", "--backend", help="local (Optuna, a journal file) or ray (Ray Tune)."),
    address: str | None = typer.Option(
        None, "--address", metavar="HOST:PORT", help="Ray cluster to use (default: RAY_ADDRESS, else a local Ray)."
    ),
    overrides: list[str] | None = SetOption,
    limit_train: int | None = typer.Option(
        None, "--limit-train", min=1, metavar="N", help="Train each trial on the first N training examples."
    ),
    limit_test: int | None = typer.Option(
        None, "--limit-test", min=1, metavar="N", help="Validate and test on the first N examples only."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Run a spec's hyperparameter sweep: each trial a run directory, trained on the spec's fit.backend (numpy or
    torch; on Ray with sweep.resources' CPUs and GPU share), then the trials sorted, the best run and best.yaml.
    Run again after an interruption, the same command continues the sweep."""

    terminal = sys.stdout.isatty()
    console = Console(stderr=as_json, width=None if terminal else 200)
    shown = None if as_json else sweep_view(console, terminal)
    try:
        result = api.sweep(
            spec,
            overrides=overrides or (),
            trials=trials,
            jobs=jobs,
            backend=backend,
            address=address,
            limit_train=limit_train,
            limit_test=limit_test,
            on_update=shown,
            on_warning=lambda problem: typer.echo(problem.format(), err=True),
        )
    except api.SweepInterrupted as interruption:
        typer.echo(str(interruption), err=True)
        raise typer.Exit(INTERRUPTED_EXIT) from None
    finally:
        if shown is not None:
            shown.close()
    if as_json:
        echo_json(result.to_json())
    else:
        print_sweep(result, console)


@command(app)
def inspect(model: Path = typer.Argument(..., help="ONNX file."), as_json: bool = JsonOption) -> None:
    """Print an ONNX file's inputs and outputs, opset, IR version, producer, metadata, size and operators."""
    info = api.inspect(model)
    if as_json:
        echo_json(info)
    else:
        typer.echo(format_description(info))


@command(app)
def serve(
    model: Path = typer.Argument(
        ..., metavar="MODEL_OR_RUN", help="An .onnx file, or a run directory with its exported model.onnx."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    name: str | None = typer.Option(None, "--name", help="The model's name in URLs (default: the spec's)."),
    max_batch: int = typer.Option(256, "--max-batch", min=1, help="Most examples in one infer request."),
    max_request_mb: float = typer.Option(
        8.0, "--max-request-mb", min=0.001, help="Largest request body, in MiB (larger: 413)."
    ),
    read_timeout: float = typer.Option(
        30.0,
        "--read-timeout",
        min=0.1,
        help="Seconds a request's headers, then its body, may take to arrive (later: 408).",
    ),
    threads: int | None = typer.Option(None, "--threads", min=1, help="onnxruntime threads."),
) -> None:
    """Serve a model over HTTP on the Open Inference Protocol (KServe v2 REST), plus an image upload endpoint;
    stops gracefully on SIGTERM or Ctrl-C."""
    api.serve(
        model,
        host=host,
        port=port,
        name=name,
        max_batch=max_batch,
        max_body_bytes=int(max_request_mb * 1024 * 1024),
        read_timeout=read_timeout,
        threads=threads,
    )
