"""A table's image column: each cell the path of a PNG or JPEG file, relative to the table file's directory.

The images are decoded as image folders decode theirs (``specforge.data.image_decode.decode_image``: converted to
the column's channels, resized to its height and width) into raw 0-255 pixels, once per file: the decoded
pixels are kept in memory, keyed by the file, its size and modification time, so that the splits, evaluation,
the export's parity rows and predictions on the same files read each file once.  A missing cell, a missing
file and an image Pillow cannot read are refused at their row and column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from specforge.base.errors import DataError
from specforge.data.files import read_bytes
from specforge.data.image_decode import IMAGE_SUFFIXES, decode_image
from specforge.data.table.read import Table

_DECODED: dict[tuple[str, int, int, tuple[int, ...]], np.ndarray] = {}


def _refused(table: Table, index: int, column: str, problem: str) -> DataError:
    return DataError(
        f"{table.row_word} {table.rows[index]}, column {column!r}: {problem}",
        file=table.file,
        line=int(table.rows[index]) if table.row_word == "line" else None,
    )


def _pixels(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The file's pixels, decoded on first use and kept (read-only)."""
    status = path.stat()
    key = (str(path.resolve()), status.st_size, status.st_mtime_ns, shape)
    pixels = _DECODED.get(key)
    if pixels is None:
        pixels = decode_image(read_bytes(path), shape, str(path))
        pixels.flags.writeable = False
        _DECODED[key] = pixels
    return pixels


def column_pixels(table: Table, column: str, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 ``(N, *shape)``: the image each row of ``table``'s ``column`` names, a path relative to the table
    file's directory."""
    base = Path(table.file).parent
    pixels = np.empty((len(table), *shape), dtype=np.uint8)
    for index, cell in enumerate(table.texts(column)):
        if cell is None:
            raise _refused(table, index, column, "no image path; give each row the path of a PNG or JPEG file")
        path = base / cell
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise _refused(table, index, column, f"{cell!r} is not a .png, .jpg or .jpeg file; give PNG or JPEG files")
        if not path.is_file():
            raise _refused(
                table, index, column, f"no image file {cell!r} (relative paths start at the table file's directory)"
            )
        try:
            pixels[index] = _pixels(path, shape)
        except DataError as error:
            raise _refused(table, index, column, f"{cell}: {error.problems[0].message}") from None
    return pixels


__all__ = ["column_pixels"]
