"""Predictions of an exported table model on raw rows from a CSV or Parquet file.

The model (``specforge export`` of a ``table`` spec) takes one input per feature column; the
file must have those columns (by header name; other columns are ignored) and its cells are fed
as they are: numbers for numeric columns, text for categorical and binary ones, missing cells as
NaN and ``""``, which the graph fills as training did.  A classifier gives each row's most
probable class and its probability, a regression the predicted numbers in the target's units.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from specforge.base.errors import DataError
from specforge.data.table.read import Table, read_table
from specforge.predict.session import make_session

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass
class RowPredictions:
    """Each row's outputs (probabilities or numbers), with where the row is in its file."""

    model: str
    task: str
    #: class names (classification) or target columns (regression)
    names: list[str]
    rows: list[str]
    outputs: np.ndarray

    def records(self) -> list[dict]:
        """One JSON-friendly record per row."""
        if self.task == "regression":
            return [{"row": row, **{name: float(value) for name, value in zip(self.names, values)}}
                    for row, values in zip(self.rows, self.outputs)]
        best = self.outputs.argmax(axis=1)
        return [{"row": row, "class": int(index), "name": self.names[index], "probability": float(values[index])}
                for row, index, values in zip(self.rows, best, self.outputs)]


def rows_feed(table: Table, inputs: Sequence[tuple[str, bool]]) -> dict[str, np.ndarray]:
    """onnxruntime's feed for the raw rows of ``table``: ``(column, is_text)`` per model input, ``[N, 1]`` each.

    A column the model takes and the table lacks is refused, naming every missing column; other columns of the
    table are ignored."""
    missing = [name for name, _ in inputs if name not in table.columns]
    if missing:
        raise DataError(f"the model needs the columns {', '.join(map(repr, missing))}, which the file does not have; "
                        f"its header has: {', '.join(table.columns)}", file=table.file)
    feed = {}
    for name, is_text in inputs:
        if is_text:
            feed[name] = np.array([[text or ""] for text in table.texts(name)], dtype=object)
        else:
            feed[name] = table.numbers(name).astype(np.float32)[:, None]
    return feed


def is_rows_file(path: str | Path) -> bool:
    """Whether ``path`` is a file of table rows (CSV or Parquet) rather than images or arrays."""
    return Path(path).suffix.lower() in TABLE_SUFFIXES


def is_table_model(metadata: dict[str, str]) -> bool:
    return "inputs" in metadata


def predict_rows(model: str | Path, rows: str | Path, *, threads: int | None = None,
                 limit: int | None = None) -> RowPredictions:
    """Run the exported table model ``model`` on the raw rows of ``rows`` (CSV with a header, or Parquet)."""
    model, rows = Path(model), Path(rows)
    if not model.is_file():
        raise DataError("no such file; give the .onnx file specforge export wrote", file=str(model))
    session = make_session(model, threads)
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    if not is_table_model(metadata):
        raise DataError("this model takes images or arrays, not table rows; give PNG/JPEG images or .npy/.npz "
                        "arrays", file=str(rows))
    table = read_table(rows, "rows")
    if limit is not None:
        table = table.take(np.arange(min(limit, len(table))))
    inputs = [(item["name"], item["type"] == "string") for item in json.loads(metadata["inputs"])]
    (output,) = json.loads(metadata["outputs"])
    outputs = session.run([output], rows_feed(table, inputs))[0]
    return RowPredictions(str(model), metadata["task"], json.loads(metadata["class_names"]),
                          [f"{table.row_word} {row}" for row in table.rows], outputs)
