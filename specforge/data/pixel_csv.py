"""CSV files with a label column and pixel columns (the common MNIST CSV layout)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from specforge.base.errors import DataError
from specforge.data.files import require_file, sha256_file
from specforge.data.splits import Split, make_split

#: numpy's row in its two messages: counted from 0 after a cell it cannot convert ("at row 1, column 2"),
#: from 1 after a row whose column count changed ("at row 2;"), both after the skipped header.
_ROW = re.compile(r" at row (\d+)(,?)")
_USECOLS_HINT = re.compile(r"; use `usecols`.*$")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _first_line(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        return [cell.strip().strip('"') for cell in handle.readline().rstrip("\r\n").split(",")]


def _label_index(names: list[str], has_header: bool, label_column: int | str | None, path: Path) -> int:
    if label_column is None:
        return names.index("label") if has_header and "label" in names else 0
    if isinstance(label_column, int):
        if label_column >= len(names):
            raise DataError(
                f"label_column {label_column} is past the last column ({len(names) - 1}); give a 0-based column index",
                file=str(path),
            )
        return label_column
    if not has_header:
        raise DataError(
            f"label_column {label_column!r} names a column but the file has no header row; "
            "give a 0-based column index instead",
            file=str(path),
        )
    if label_column not in names:
        raise DataError(
            f"no column named {label_column!r}; the header starts {names[:5]}; "
            "set data.label_column to one of the header's names or a column index",
            file=str(path),
        )
    return names.index(label_column)


def csv_row_values(path: Path, label_column: int | str | None = None, header: bool | str = "auto") -> int:
    """How many values besides the label a CSV file's rows hold, from its first line alone."""
    names = _first_line(path)
    has_header = (not all(_is_number(cell) for cell in names)) if header == "auto" else bool(header)
    _label_index(names, has_header, label_column, path)
    return len(names) - 1


def _read_table(path: Path, skip_header: bool) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt(
                path, delimiter=",", skiprows=int(skip_header), dtype=np.float32, ndmin=2, encoding="utf-8-sig"
            )
    except ValueError as error:
        reason = _USECOLS_HINT.sub("", str(error)).rstrip(".")
        reason = _ROW.sub(
            lambda match: f" on line {int(match.group(1)) + bool(match.group(2)) + skip_header}{match.group(2)}", reason
        )
        raise DataError(
            f"cannot read the CSV: {reason}; every row needs the label and the same number of "
            "pixel values, all numbers",
            file=str(path),
        ) from error
    if table.size == 0:
        raise DataError(
            "the CSV has no rows; expected one row per example: the label and the pixel values", file=str(path)
        )
    return table


def _as_stored_pixels(pixels: np.ndarray) -> np.ndarray:
    """uint8 when every value is a whole number in 0..255 (the usual pixel files), else float32."""
    if pixels.min() >= 0 and pixels.max() <= 255 and np.array_equal(pixels, np.floor(pixels)):
        return pixels.astype(np.uint8)
    return pixels


def load_csv_split(
    name: str, path: Path, option: str, label_column: int | str | None = None, header: bool | str = "auto"
) -> tuple[Split, str]:
    """One split from a CSV file, images flat ``(N, pixels)``, and the file's digest."""
    require_file(path, option)
    names = _first_line(path)
    has_header = (not all(_is_number(cell) for cell in names)) if header == "auto" else bool(header)
    column = _label_index(names, has_header, label_column, path)
    table = _read_table(path, has_header)
    if table.shape[1] < 2:
        raise DataError(
            f"the CSV has {table.shape[1]} column; expected the label plus the pixel values", file=str(path)
        )
    pixels = _as_stored_pixels(np.delete(table, column, axis=1))
    return make_split(name, pixels, table[:, column], str(path)), sha256_file(path)
