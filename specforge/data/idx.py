"""The IDX format of the MNIST distribution (raw or gzip), read without copying the payload.

Layout: two zero bytes, a type code, the number of dimensions, one big-endian
uint32 per dimension, then the values in row-major order (big-endian).
"""

from __future__ import annotations

import gzip
import zlib
from math import prod
from pathlib import Path

import numpy as np

from specforge.base.errors import DataError
from specforge.data.files import GZIP_MAGIC, gunzip_if_compressed, read_bytes, sha256_bytes

_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_USE = "expected 0x00000803 (images) or 0x00000801 (labels), raw or gzip-compressed"


def _header(data: bytes, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """The value type, the dimensions and the header's length of IDX bytes (only the header need be there)."""
    if len(data) < 4:
        raise DataError(
            f"truncated: {len(data)} bytes, too short for an IDX header; download the file again", file=str(path)
        )
    code, ndim = data[2], data[3]
    if data[:2] != b"\0\0" or code not in _TYPES or ndim == 0:
        raise DataError(
            f"not an IDX file: magic number 0x{int.from_bytes(data[:4], 'big'):08x}; {_USE}", file=str(path)
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"truncated: the header declares {ndim} dimensions but the file ends at byte {len(data)}; "
            "download the file again",
            file=str(path),
        )
    return _TYPES[code], tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)), header


def parse_idx(data: bytes, path: Path) -> np.ndarray:
    """The array stored in IDX bytes; uint8 payloads are a read-only view of ``data``."""
    dtype, dims, header = _header(data, path)
    expected = prod(dims) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        problem = "truncated" if found < expected else "has trailing bytes"
        raise DataError(
            f"{problem}: the header declares {'x'.join(map(str, dims))} values of {dtype.name} "
            f"({expected} bytes) but the file holds {found}; download the file again",
            file=str(path),
        )
    array = np.frombuffer(data, dtype=dtype, count=prod(dims), offset=header).reshape(dims)
    return array if dtype.isnative or dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))


def read_idx_dims(path: Path) -> tuple[int, ...]:
    """The dimensions an IDX file (raw or gzip) declares, from its header alone."""
    with open(path, "rb") as handle:
        compressed = handle.read(2) == GZIP_MAGIC
    try:
        with (gzip.open if compressed else open)(path, "rb") as handle:
            start = handle.read(4)
            rest = handle.read(4 * start[3]) if len(start) == 4 else b""
    except (EOFError, OSError, zlib.error) as error:
        raise DataError(f"truncated or corrupt gzip data ({error}); download the file again", file=str(path)) from error
    return _header(start + rest, path)[1]


def read_idx_file(path: Path) -> tuple[np.ndarray, str]:
    """An IDX file's array and the SHA-256 of the file as stored, for ``load_pairs``."""
    stored = read_bytes(path)
    return parse_idx(gunzip_if_compressed(stored, path), path), sha256_bytes(stored)
