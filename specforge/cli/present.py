"""How the ``specforge`` command shows results: training and evaluation lines, predictions as text lines, JSON
lines or CSV/JSON files, an ONNX file's description, runs and sweeps (``validate``'s summary is
``specforge.cli.summary``'s).  The command imports the API and these presenters only."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from specforge.base.errors import DataError
from specforge.base.fileio import atomic_open, write_text
from specforge.export.inspect import format_description
from specforge.predict.images import Prediction, PredictionReport
from specforge.predict.table import RowPredictions
from specforge.runs.directory import LATEST, Run, counts_as_latest, display_path
from specforge.runs.listing import Comparison, RunRecord
from specforge.sweep.display import LiveTable, TrialLines, print_result
from specforge.training.progress import format_logs


def format_line(prediction: Prediction, width: int = 0) -> str:
    """``source  class (name)  probability`` (every top-k class), with the true label when known."""

    def shown(cls: int, name: str | None) -> str:
        return str(cls) if name is None or name == str(cls) else f"{cls} ({name})"

    best = "   ".join(f"{shown(c, n)} {p:.4f}" for c, n, p in prediction.top)
    line = f"{prediction.source:<{width}}  {best}"
    if prediction.inverted:
        line += "  [inverted]"
    if prediction.label is not None:
        line += f"  true {shown(prediction.label, prediction.label_name)}{'' if prediction.correct else ' (wrong)'}"
    return line


def accuracy_line(report: PredictionReport) -> str | None:
    accuracy = report.accuracy
    if accuracy is None:
        return None
    right = sum(bool(p.correct) for p in report.predictions)
    return f"accuracy: {accuracy:.4f} ({right}/{len(report.predictions)})"


def write_report(report: PredictionReport, path: str | Path) -> Path:
    """The predictions as CSV (one row per input, top-k as extra columns), JSON, JSON lines (.jsonl, one
    object per input) or Parquet (the CSV's columns; needs pyarrow: the parquet or ray extra), written atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return write_text(path, json.dumps(report.to_dict(), indent=2) + "\n")
    if suffix == ".jsonl":
        return write_text(path, "".join(json_line(p) + "\n" for p in report.predictions))
    if suffix not in (".csv", ".parquet"):
        raise DataError(
            f"cannot write predictions as {suffix or 'a suffix-less file'}; name a .csv, .json, .jsonl "
            "or .parquet file",
            file=str(path),
        )
    header, rows = _table(report)
    if suffix == ".parquet":
        return _write_parquet(path, header, rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def _table(report: PredictionReport) -> tuple[list[str], list[list[Any]]]:
    k = len(report.predictions[0].top) if report.predictions else 1
    labelled = any(p.label is not None for p in report.predictions)
    header = ["source", "class", "name", "probability"]
    header += [f"{column}_{rank}" for rank in range(2, k + 1) for column in ("class", "name", "probability")]
    header += ["label", "correct"] if labelled else []
    rows: list[list[Any]] = [
        [p.source, *(value for entry in p.top for value in entry), *([p.label, p.correct] if labelled else [])]
        for p in report.predictions
    ]
    return header, rows


def _write_parquet(path: Path, header: list[str], rows: list[list]) -> Path:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            "writing Parquet needs pyarrow; install it with: pip install 'specforge[parquet]'", file=str(path)
        ) from None
    table = pa.table({name: [row[index] for row in rows] for index, name in enumerate(header)})
    with atomic_open(path, "wb") as handle:
        pq.write_table(table, handle)
    return path


def row_lines(predictions: RowPredictions) -> list[str]:
    """``line 2  1 (malignant) 0.9876`` or ``line 2  progression 151.2``, one per row of a table model's input."""
    width = max((len(row) for row in predictions.rows), default=0)
    if predictions.task == "regression":
        return [
            f"{row:<{width}}  " + "  ".join(f"{name} {value:.6g}" for name, value in zip(predictions.names, values))
            for row, values in zip(predictions.rows, predictions.outputs)
        ]
    return [
        f"{record['row']:<{width}}  {record['class']} ({record['name']}) {record['probability']:.4f}"
        for record in predictions.records()
    ]


def write_row_predictions(predictions: RowPredictions, path: str | Path) -> Path:
    """A table model's predictions as CSV (one line per input row) or JSON, written atomically."""
    path = Path(path)
    records = predictions.records()
    if path.suffix.lower() == ".json":
        return write_text(
            path,
            json.dumps({"model": predictions.model, "task": predictions.task, "predictions": records}, indent=2) + "\n",
        )
    if path.suffix.lower() != ".csv":
        raise DataError(
            f"cannot write predictions as {path.suffix or 'a suffix-less file'}; name a .csv or .json file",
            file=str(path),
        )
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]) if records else ["row"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return write_text(path, buffer.getvalue())


def table_info_lines(info: dict) -> list[str]:
    """``data info`` of a table: rows per split, one line per feature column, the target's balance or spread."""

    def spread(stats: dict) -> str:
        if stats["min"] is None:
            return "no values"
        return f"{stats['min']:.4g}..{stats['max']:.4g}, mean {stats['mean']:.4g}, std {stats['std']:.4g}"

    dropped = sum(map(len, info["dropped_missing_target"].values()))
    lines = [
        "rows: "
        + ", ".join(f"{name} {split['count']}" for name, split in info["splits"].items())
        + f"; {info['preprocessing']['input_shape'][0]} model inputs"
        + (f"; {dropped} without a target left out" if dropped else "")
    ]
    for column in info["columns"]:
        missing = ", ".join(f"{name} {count}" for name, count in column["missing"].items())
        if "text" in column:
            lines.append(f"  {column['column']}: text, {column['encoded_width']} model inputs; missing: {missing}")
            lines += [f"    {line}" for line in text_info_lines(column["text"])]
            continue
        detail = (
            spread(column) + f", scale {column['scale']}"
            if column["type"] == "numeric"
            else f"{column['shape']} pixels, rescale {column['rescale']:g}"
            if column["type"] == "image"
            else f"{column['vocabulary_size']} values ({', '.join(column['vocabulary'])}"
            f"{', ...' if column['vocabulary_size'] > len(column['vocabulary']) else ''})"
        )
        unseen = ", ".join(f"{name} {count}" for name, count in column.get("unseen", {}).items() if count)
        lines.append(
            f"  {column['column']}: {column['type']}, {detail}; missing: {missing}"
            + (f"; other values, read as 0: {unseen}" if unseen else "")
        )
    target = info["target"]
    if "class_counts" in target:
        for name, counts in target["class_counts"].items():
            lines.append(
                f"target {target['columns'][0]} ({target['type']}), {name}: "
                + ", ".join(f"{cls} {count}" for cls, count in counts.items())
            )
    else:
        for name, columns in target["distribution"].items():
            for column, stats in columns.items():
                lines.append(f"target {column} (numeric), {name}: {spread(stats)}")
    return lines


def text_info_lines(text: dict) -> list[str]:
    """``data info`` of text (a text folder, or a table's text column): the vocabulary, then each split's
    documents, lengths and unknown tokens."""
    frequent = ", ".join(f"{token!r} {count}" for token, count in text["most_frequent"])
    lines = [
        f"vocabulary: {text['vocabulary_size']} entries (output_mode {text['output_mode']}"
        + (f", {text['output_sequence_length']} ids per document" if text["output_mode"] == "int" else "")
        + f"); most frequent: {frequent}"
    ]
    for name, split in text["splits"].items():
        lengths = ", ".join(
            f"{'max' if p == '100' else 'p' + p} {value:g}" for p, value in split["length_percentiles"].items()
        )
        cut = f", {split['truncated']} cut at the sequence length" if split.get("truncated") else ""
        lines.append(
            f"{name}: {split['documents']} documents, {split['empty']} empty{cut}; tokens per document: "
            f"{lengths}; out of vocabulary: {split['out_of_vocabulary']:.1%} of {split['tokens']} tokens"
        )
    return lines


def json_line(prediction: Prediction) -> str:
    return json.dumps(prediction.to_dict())


#: Keys of an evaluation's results that are not a loss or metric value.
_DETAILS = ("split", "examples", "class_names", "per_class", "confusion_matrix")


def format_results(results: dict) -> str:
    """``test (10000 examples) - loss: ... - accuracy: ...`` from an evaluation's results."""
    values = {key: value for key, value in results.items() if key not in _DETAILS}
    return f"{results['split']} ({results['examples']} examples){format_logs(values)}"


def latest_note(run: Run) -> str | None:
    """Why a finished run is not its spec's ``latest`` (a run on a slice of the data, or written with --out)."""
    if counts_as_latest(run.manifest):
        return None
    why = "on a slice of the data" if any(run.manifest.get("limits", {}).values()) else "written with --out"
    return f"{LATEST}: unchanged (a run {why})"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    return (
        f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


def format_runs(records: list[RunRecord]) -> str:
    """One row per run: status, epochs, best monitored value, test metrics, duration, spec hash."""
    if not records:
        return "no runs yet; train one with: specforge train SPEC"
    rows = [("run", "status", "epochs", "best", "test", "time", "spec")]
    for record in records:
        best = f"{record.best['name']} {record.best['value']:.4f} @{record.best['epoch']}" if record.best else "-"
        test = " ".join(f"{name} {value:.4f}" for name, value in record.test.items()) or "-"
        sliced = "*" if any(record.limits.values()) else ""
        rows.append(
            (
                record.path + sliced,
                record.status,
                f"{record.epochs_completed}/{record.epochs}",
                best,
                test,
                _duration(record.seconds),
                record.spec_sha256[:12],
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    if any(any(record.limits.values()) for record in records):
        lines.append("* trained on a slice of the data (--limit-train/--limit-test)")
    return "\n".join(lines)


def format_comparison(comparison: Comparison) -> str:
    """The spec values that differ (``path: a -> b``), then the results side by side with their difference."""
    lines = [f"a: {comparison.a.path}", f"b: {comparison.b.path}", "", "spec (a -> b):"]
    lines += [f"  {path}: {json.dumps(a)} -> {json.dumps(b)}" for path, (a, b) in comparison.spec.items()] or [
        "  the same"
    ]
    lines += ["", "results (a, b, b - a):"]
    width = max((len(name) for name in comparison.results), default=0)
    for name, (a, b) in comparison.results.items():
        shown = [
            f"{value:.4f}"
            if value is not None and name != "epochs"
            else (str(int(value)) if value is not None else "-")
            for value in (a, b)
        ]
        change = (
            f"{b - a:+.4f}"
            if a is not None and b is not None and name != "epochs"
            else (f"{int(b - a):+d}" if a is not None and b is not None else "")
        )
        lines.append(f"  {name:<{width}}  {shown[0]:>9}  {shown[1]:>9}  {change:>9}".rstrip())
    return "\n".join(lines)


def sweep_view(console: Any, terminal: bool) -> Any:
    """What a running sweep shows: a live table on a terminal, else one line per finished trial (imported here,
    not at startup: validate does not need it)."""
    return LiveTable(console) if terminal else TrialLines(console)


def print_sweep(result: Any, console: Any) -> None:
    """A finished sweep: its trials sorted, the best run and best.yaml."""
    print_result(result, console)


def format_per_class(results: dict) -> str:
    """A table of each class's precision, recall, F1 and support, with their macro and weighted averages."""
    rows = results["per_class"]
    width = max(len("weighted avg"), *(len(row["name"]) for row in rows))
    lines = [f"{'class':<{width}}  precision  recall      f1  support"]
    lines += [
        f"{row['name']:<{width}}  {row['precision']:>9.4f}  {row['recall']:>6.4f}  {row['f1']:>6.4f}  "
        f"{row['support']:>7}"
        for row in rows
    ]
    total = sum(row["support"] for row in rows)
    for label, weights in (("macro avg", [1] * len(rows)), ("weighted avg", [row["support"] for row in rows])):
        mean = {
            key: sum(w * row[key] for w, row in zip(weights, rows)) / max(sum(weights), 1)
            for key in ("precision", "recall", "f1")
        }
        lines.append(
            f"{label:<{width}}  {mean['precision']:>9.4f}  {mean['recall']:>6.4f}  {mean['f1']:>6.4f}  {total:>7}"
        )
    return "\n".join(lines)


def format_confusion(results: dict) -> str:
    """The confusion matrix as text: one row per true class, one column per predicted class."""
    names, matrix = results["class_names"], results["confusion_matrix"]
    cell = max(3, *(len(str(value)) for row in matrix for value in row), *(len(name) for name in names))
    corner = "true \\ predicted"
    label = max(len(corner), *(len(name) for name in names))
    lines = [f"{corner:<{label}} " + " ".join(f"{name:>{cell}}" for name in names)]
    lines += [f"{name:<{label}} " + " ".join(f"{value:>{cell}}" for value in row) for name, row in zip(names, matrix)]
    return "\n".join(lines)


__all__ = [
    "accuracy_line",
    "display_path",
    "format_comparison",
    "format_confusion",
    "format_description",
    "format_line",
    "format_per_class",
    "format_results",
    "format_runs",
    "json_line",
    "latest_note",
    "print_sweep",
    "sweep_view",
    "write_report",
]
