"""Reading a table of named columns from CSV, JSON lines or Parquet, cells as found, with where each row came from.

A ``Table`` keeps every cell as the file gave it (text for CSV; numbers, text or None for
JSON lines and Parquet), missing cells as None, and the file line (CSV, JSON lines) or row number
(Parquet) of each row,
so that later errors can point at the cell.  Converting a column to numbers or categories is
``numbers``/``texts``; the feature pipeline decides which.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from specforge.base.errors import DataError
from specforge.data.files import decode_utf8, read_bytes, require_file

#: Cell texts read as a missing value.
MISSING = frozenset({"", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?"})
PARQUET_SUFFIXES = (".parquet", ".pq")
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
#: Column names an error lists.
SHOWN_COLUMNS = 12
PARQUET_INSTALL = "pip install 'specforge[parquet]'"


@dataclass
class Table:
    """Columns by name, each an object array of cells (None where missing), and each row's place in the file."""

    file: str
    columns: dict[str, np.ndarray]
    #: the 1-based file line of each row (CSV, the header is line 1) or row number (Parquet)
    rows: np.ndarray
    row_word: str = "line"
    #: each row's 0-based position among the file's rows (pandas' default index of the file); default: in order
    index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: the positions of the file's rows left out for a missing target (``drop_missing_target``)
    dropped: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        if len(self.index) != len(self.rows):
            self.index = np.arange(len(self.rows))

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str, where: str = "") -> np.ndarray:
        """The cells of ``name``; DataError naming the closest header name when there is no such column."""
        if name in self.columns:
            return self.columns[name]
        close = difflib.get_close_matches(name, list(self.columns), n=1, cutoff=0.5)
        names = list(self.columns)
        listed = ", ".join(names[:SHOWN_COLUMNS]) + (
            f" and {len(names) - SHOWN_COLUMNS} more" if len(names) > SHOWN_COLUMNS else ""
        )
        hint = f"did you mean {close[0]!r}? (its columns: {listed})" if close else f"the header has: {listed}"
        raise DataError(f"{self.file} has no column {name!r}; {hint}", path=f"{where}.column" if where else "")

    def numbers(self, name: str, where: str = "") -> np.ndarray:
        """float64 values of column ``name``, NaN where missing; a cell that is not a number is refused."""
        cells = self.column(name, where)
        values = np.empty(len(cells), dtype=np.float64)
        for index, cell in enumerate(cells):
            try:
                values[index] = math.nan if cell is None else float(cell)
            except (TypeError, ValueError):
                raise DataError(
                    f"{self.row_word} {self.rows[index]}, column {name!r}: {cell!r} is not a number; "
                    "a numeric feature needs numbers (or an empty cell for a missing value); declare "
                    "the column type: categorical if it holds categories",
                    file=self.file,
                    line=int(self.rows[index]) if self.row_word == "line" else None,
                    path=where,
                ) from None
        return values

    def texts(self, name: str, where: str = "") -> np.ndarray:
        """Column ``name`` as text (object array), None where missing: the form categories are learned in."""
        return np.array([None if cell is None else as_text(cell) for cell in self.column(name, where)], dtype=object)

    def take(self, indices: np.ndarray) -> Table:
        """The rows at ``indices``, in that order (the file's dropped rows stay recorded)."""
        return Table(
            self.file,
            {name: cells[indices] for name, cells in self.columns.items()},
            self.rows[indices],
            self.row_word,
            self.index[indices],
            self.dropped,
        )

    def missing(self, names: Sequence[str], where: str = "") -> np.ndarray:
        """A boolean mask of the rows where a column of ``names`` has no value."""
        missing = np.zeros(len(self), dtype=bool)
        for name in names:
            missing |= np.array([cell is None for cell in self.column(name, where)], dtype=bool)
        return missing

    def without_missing(self, names: Sequence[str], where: str = "") -> Table:
        """The rows where every column of ``names`` has a value; the others are recorded in ``dropped``."""
        missing = self.missing(names, where)
        kept = self.take(np.flatnonzero(~missing))
        kept.dropped = np.concatenate([self.dropped, self.index[missing]])
        return kept


def join_tables(tables: Sequence[Table]) -> Table:
    """The rows of ``tables`` one after another, with the columns of the first (named after its file)."""
    first = tables[0]
    columns = {name: np.concatenate([table.columns[name] for table in tables]) for name in first.columns}
    return Table(first.file, columns, np.concatenate([table.rows for table in tables]), first.row_word)


def as_text(cell: object) -> str:
    """A cell as a category: text as it is, whole numbers without a decimal point (Parquet's 1.0 is "1")."""
    if isinstance(cell, str):
        return cell
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


def _missing(value: object) -> bool:
    """None, NaN, or a text that CSV cells would also read as missing."""
    if isinstance(value, float):
        return math.isnan(value)
    return value is None or (isinstance(value, str) and value.strip() in MISSING)


def read_table(path: Path, option: str) -> Table:
    """The table in ``path``: Parquet for .parquet/.pq (needs pyarrow), JSON lines for .jsonl/.ndjson, else CSV
    with a header row; a text file is read as UTF-8."""
    require_file(path, option)
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet(path)
    text = decode_utf8(read_bytes(path), str(path), "tables")
    return _read_json_lines(path, text) if suffix in JSON_LINES_SUFFIXES else _read_csv(path, text)


def _read_csv(path: Path, text: str) -> Table:
    with io.StringIO(text, newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        if not header or not any(header):
            raise DataError("the CSV is empty; a table needs a header row of column names", file=str(path), line=1)
        rows, lines = [], []
        for cells in reader:
            if not cells:
                continue
            if len(cells) != len(header):
                raise DataError(
                    f"line {reader.line_num} has {len(cells)} cells but the header names {len(header)} "
                    "columns; every row needs one cell per column",
                    file=str(path),
                    line=reader.line_num,
                )
            rows.append([None if cell.strip() in MISSING else cell.strip() for cell in cells])
            lines.append(reader.line_num)
    if not rows:
        raise DataError("the CSV has a header but no rows", file=str(path))
    grid = np.array(rows, dtype=object)
    return Table(str(path), {name: grid[:, index] for index, name in enumerate(header)}, np.asarray(lines))


def _read_json_lines(path: Path, text: str) -> Table:
    """One JSON object per line, its keys the columns (those of every row, in the order first seen; a row
    without a key has a missing cell there); blank lines are skipped."""
    records: list[dict] = []
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(
                f"line {number} is not JSON ({error.msg}); a JSON lines file holds one object per line",
                file=str(path),
                line=number,
                column=error.colno,
            ) from None
        if not isinstance(record, dict):
            raise DataError(
                f"line {number} is a JSON {type(record).__name__}, not an object; write each row as an object "
                'of column names and values, such as {"text": "...", "label": "spam"}',
                file=str(path),
                line=number,
            )
        nested = next((key for key, value in record.items() if isinstance(value, (dict, list))), None)
        if nested is not None:
            raise DataError(
                f"line {number}, column {nested!r} holds a JSON {type(record[nested]).__name__}; a cell is a "
                "number, a string, true, false or null",
                file=str(path),
                line=number,
            )
        records.append(record)
        lines.append(number)
    if not records:
        raise DataError("the JSON lines file has no rows", file=str(path))
    names = list(dict.fromkeys(key for record in records for key in record))
    table = cells_table(str(path), {name: [record.get(name) for record in records] for name in names})
    table.rows, table.row_word = np.asarray(lines), "line"
    return table


def _read_parquet(path: Path) -> Table:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise DataError(f"reading Parquet needs pyarrow: {PARQUET_INSTALL}", file=str(path)) from None
    try:
        columns = parquet.read_table(path).to_pydict()
    except Exception as error:  # pyarrow raises its own ArrowInvalid, OSError, ...
        raise DataError(f"cannot read the Parquet file: {str(error).splitlines()[0]}", file=str(path)) from None
    if not len(next(iter(columns.values()), [])):
        raise DataError("the Parquet file has no rows", file=str(path))
    return cells_table(str(path), columns)


def cells_table(source: str, columns: Mapping[str, Sequence[object]]) -> Table:
    """Typed cells by column (Parquet's, or the tensors of a served request) as a Table, rows numbered from 1:
    None, NaN and the texts a CSV reads as missing become missing cells, as in every other table."""
    count = len(next(iter(columns.values()), []))
    cells = {}
    for name, values in columns.items():
        cells[name] = np.empty(count, dtype=object)
        cells[name][:] = [None if _missing(value) else value for value in values]
    return Table(source, cells, np.arange(1, count + 1), "row")
