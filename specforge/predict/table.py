"""Predictions of an exported table model on raw rows from a CSV or Parquet file.

The model (``specforge export`` of a ``table`` spec) takes one input per feature column; the
file must have those columns (by header name; other columns are ignored) and its cells are fed
as they are: numbers for numeric columns, text for categorical and binary ones, missing cells as
NaN and ``""``, which the graph fills as training did; an image column's cells are paths of PNG or JPEG files
relative to the rows file, fed as their raw pixels (decoded as in training).  A classifier gives each row's most
probable class and its probability, a regression the predicted numbers in the target's units.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from specforge.base.errors import DataError
from specforge.data.feed import Feed, make_feed
from specforge.data.preprocessing import Preprocessing
from specforge.data.table.images import column_pixels
from specforge.data.table.info import unseen_binary_notes
from specforge.data.table.read import JSON_LINES_SUFFIXES, PARQUET_SUFFIXES, Table, read_table
from specforge.graph.model import Model
from specforge.predict.session import OnnxPredictor, class_probabilities, output_not_chosen, unknown_output
from specforge.runs.directory import open_run
from specforge.spec.model_io import output_class_names

if TYPE_CHECKING:
    from specforge.data.table.features import TablePipeline
    from specforge.graph.dag import Graph
    from specforge.layers.base import Params

TABLE_SUFFIXES = (".csv", *JSON_LINES_SUFFIXES, *PARQUET_SUFFIXES)


@dataclass
class RowPredictions:
    """Each row's outputs (probabilities or numbers), with where the row is in its file."""

    model: str
    task: str
    #: class names (classification) or target columns (regression)
    names: list[str]
    rows: list[str]
    outputs: np.ndarray
    #: what the rows hold that the model reads other than a reader would expect (values a binary column never
    #: held in training), one sentence each
    notes: list[str] = field(default_factory=list)

    def records(self) -> list[dict]:
        """One JSON-friendly record per row."""
        if self.task == "regression":
            return [
                {"row": row, **{name: float(value) for name, value in zip(self.names, values)}}
                for row, values in zip(self.rows, self.outputs)
            ]
        best = self.outputs.argmax(axis=1)
        return [
            {"row": row, "class": int(index), "name": self.names[index], "probability": float(values[index])}
            for row, index, values in zip(self.rows, best, self.outputs)
        ]


def is_rows_file(path: str | Path) -> bool:
    """Whether ``path`` is a file of table rows (CSV, JSON lines or Parquet) rather than images or arrays."""
    return Path(path).suffix.lower() in TABLE_SUFFIXES


def is_table_model(metadata: dict[str, str]) -> bool:
    return "inputs" in metadata


def rows_feed(
    table: Table, inputs: Sequence[tuple[str, bool]], images: Mapping[str, tuple[int, ...]] | None = None
) -> dict[str, np.ndarray]:
    """onnxruntime's feed for the raw rows of ``table``: ``(column, is_text)`` per model input, ``[N, 1]`` each,
    and each image column of ``images`` (its pixels' shape) as float32 raw pixels ``[N, *shape]``.

    A column the model takes and the table lacks is refused, naming every missing column; other columns of the
    table are ignored."""
    images = images or {}
    require_columns(table, [name for name, _ in inputs] + list(images))
    feed = {name: column_pixels(table, name, shape).astype(np.float32) for name, shape in images.items()}
    for name, is_text in inputs:
        if is_text:
            feed[name] = np.array([[text or ""] for text in table.texts(name)], dtype=object)
        else:
            feed[name] = table.numbers(name).astype(np.float32)[:, None]
    return feed


def require_columns(table: Table, names: Sequence[str]) -> None:
    """Refuse a table of rows that lacks a column the model takes, naming every missing one."""
    missing = [name for name in names if name not in table.columns]
    if missing:
        raise DataError(
            f"the model needs the columns {', '.join(map(repr, missing))}, which the file does not have; "
            f"its header has: {', '.join(table.columns)}",
            file=table.file,
        )


def numpy_outputs(
    graph: Graph, params: Sequence[Params], pipeline: TablePipeline, table: Table, feed: Feed | None = None
) -> np.ndarray:
    """What the numpy pipeline computes for the raw rows of ``table``: encode, split into the model's inputs by
    ``feed`` (the whole row by default), forward, target units (the first output's, ``each_numpy_output``)."""
    return each_numpy_output(graph, params, pipeline, table, feed)[0]


def each_numpy_output(
    graph: Graph, params: Sequence[Params], pipeline: TablePipeline, table: Table, feed: Feed | None = None
) -> list[np.ndarray]:
    """``numpy_outputs`` of each model output (a model of several outputs is a classifier's: targets derived
    from its class labels, ``data.targets``)."""
    outputs = Model(graph, list(params)).outputs((feed or Feed()).split(pipeline.encode(table)))
    return [pipeline.target.decode(outputs[0])] if pipeline.target.regression else outputs


def table_inputs(metadata: dict[str, str]) -> list[tuple[str, bool]]:
    """``(column, is_text)`` for each input of raw cells of an exported table model, in the model's order, from its
    metadata (the image columns' are ``image_inputs``)."""
    return [
        (item["name"], item["type"] == "string") for item in json.loads(metadata["inputs"]) if item["type"] != "image"
    ]


def image_inputs(metadata: dict[str, str]) -> dict[str, tuple[int, ...]]:
    """Each image column's input of an exported table model and the shape of its pixels, from its metadata."""
    return {item["name"]: tuple(item["shape"]) for item in json.loads(metadata["inputs"]) if item["type"] == "image"}


def rows_only(model: str | Path) -> DataError:
    """The error for images, arrays or a data split given to a model that takes table rows."""
    return DataError(
        "this model takes table rows: give one CSV or Parquet file of raw rows with its feature columns",
        file=str(model),
    )


def _not_rows(rows: Path) -> DataError:
    return DataError(
        "this model takes images or arrays, not table rows; give PNG/JPEG images or .npy/.npz arrays", file=str(rows)
    )


def predict_rows(
    model: str | Path,
    rows: str | Path,
    *,
    threads: int | None = None,
    limit: int | None = None,
    output_name: str | None = None,
) -> RowPredictions:
    """Run the exported table model ``model`` on the raw rows of ``rows`` (CSV with a header, or Parquet); for a
    model of several outputs, output ``output_name``'s classes."""
    model, rows = Path(model), Path(rows)
    onnx_model = OnnxPredictor(model, threads)
    metadata = onnx_model.metadata
    if not is_table_model(metadata):
        raise _not_rows(rows)
    outputs_of = json.loads(metadata["outputs"])
    output = outputs_of[choose_output(outputs_of, output_name, str(model))]
    table = _read_rows(rows, limit)
    outputs = onnx_model.session.run([output], rows_feed(table, table_inputs(metadata), image_inputs(metadata)))[0]
    several = len(outputs_of) > 1
    return RowPredictions(
        str(model),
        metadata["task"],
        json.loads(metadata["output_class_names"])[output] if several else json.loads(metadata["class_names"]),
        [f"{table.row_word} {row}" for row in table.rows],
        class_probabilities(outputs) if several else outputs,
        _notes(Preprocessing.from_dict(json.loads(metadata["preprocessing"])).pipeline, table),
    )


def choose_output(names: Sequence[str], output_name: str | None, file: str) -> int:
    """The position of the output whose predictions to show: ``output_name``, required for a model of several
    outputs (``specforge serve`` gives every output by name)."""
    if output_name is not None:
        if output_name not in names:
            raise unknown_output(output_name, names)
        return list(names).index(output_name)
    if len(names) > 1:
        raise output_not_chosen(names, file)
    return 0


def run_rows(
    run_dir: str | Path, rows: str | Path, *, limit: int | None = None, output_name: str | None = None
) -> RowPredictions:
    """A table run directory's numpy model on the raw rows of ``rows``: the run's recorded pipeline encodes them
    as the exported graph does, and a standardized target is turned back into its units; for a model of several
    outputs, output ``output_name``'s classes."""
    run_dir, rows = Path(run_dir), Path(rows)
    run = open_run(run_dir)
    pipeline = Preprocessing.from_dict(run.preprocessing).pipeline
    if pipeline is None:
        raise _not_rows(rows)
    names = list(run.graph.output_names)
    chosen = choose_output(names, output_name, str(run_dir))
    table = _read_rows(rows, limit)
    require_columns(table, [feature.column for feature in pipeline.features])
    outputs = each_numpy_output(run.graph, run.weights(), pipeline, table, make_feed(run.config["data"], pipeline))
    target = pipeline.target
    several = len(names) > 1
    return RowPredictions(
        str(run_dir),
        "regression" if target.regression else "classification",
        output_class_names(run.config, run.graph.output_widths, target.names)[names[chosen]]
        if several
        else target.names,
        [f"{table.row_word} {row}" for row in table.rows],
        class_probabilities(outputs[chosen]) if several else outputs[chosen],
        _notes(pipeline, table),
    )


def _read_rows(rows: Path, limit: int | None) -> Table:
    if not rows.is_file():
        raise DataError("no such file; give a CSV or Parquet file of raw rows", file=str(rows))
    table = read_table(rows, "rows")
    return table if limit is None else table.take(np.arange(min(limit, len(table))))


def _notes(pipeline: TablePipeline | None, table: Table) -> list[str]:
    """What the rows hold that a binary column never held in training, one sentence per such column."""
    return [] if pipeline is None else unseen_binary_notes(pipeline, table)
