"""Builders of small data files, written independently of the code under test (struct, gzip, Pillow)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

_IDX_CODES = {
    np.dtype("u1"): 0x08,
    np.dtype("i1"): 0x09,
    np.dtype(">i2"): 0x0B,
    np.dtype(">i4"): 0x0C,
    np.dtype(">f4"): 0x0D,
    np.dtype(">f8"): 0x0E,
}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array`` (big-endian), built with struct as the format's description says."""
    dtype = array.dtype if array.dtype.itemsize == 1 else array.dtype.newbyteorder(">")
    header = struct.pack(">BBBB", 0, 0, _IDX_CODES[dtype], array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool | None = None) -> Path:
    data = idx_bytes(array)
    compress = path.suffix == ".gz" if compress is None else compress
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def tiny_images(count: int, height: int = 4, width: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, height, width), dtype=np.uint8)


def tiny_labels(count: int, classes: int = 3, seed: int = 1) -> np.ndarray:
    labels = np.arange(count) % classes
    return np.random.default_rng(seed).permutation(labels).astype(np.uint8)
