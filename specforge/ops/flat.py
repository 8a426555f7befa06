"""Arrays laid end to end in one flat buffer, so that an elementwise formula over all of them is one
operation per term.

A model's trainable parameters are many arrays, most of them small (a bias of 16 values, a 3x3 kernel):
an optimizer updating each one with a dozen numpy calls spends its time in call overhead. Kept as
consecutive views of one buffer, with their optimizer state alike, they are updated as one array, in
blocks short enough that every term of a block's update stays in the cache.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Elements per block of an elementwise pass over a flat buffer (128 KiB of float32 per array).
BLOCK = 32768


def pack(arrays: Sequence[np.ndarray], fill: float | None = None) -> list[np.ndarray]:
    """Arrays of the shapes of ``arrays`` as consecutive views of one new flat buffer, holding copies of
    ``arrays`` (or ``fill`` everywhere when given); copies of their own when their dtypes differ."""
    if len({array.dtype for array in arrays}) != 1:
        return [np.full_like(array, fill) if fill is not None else array.copy() for array in arrays]
    sizes = [array.size for array in arrays]
    buffer = np.empty(sum(sizes), arrays[0].dtype)
    views = [
        buffer[stop - size : stop].reshape(array.shape) for array, size, stop in zip(arrays, sizes, np.cumsum(sizes))
    ]
    for view, array in zip(views, arrays):
        if fill is None:
            np.copyto(view, array)
        else:
            view.fill(fill)
    return views


def run_of(arrays: Sequence[np.ndarray]) -> np.ndarray | None:
    """The flat view that ``arrays`` are, in order, consecutive parts of (as ``pack`` makes them); None when
    they are not."""
    base = arrays[0].base if arrays else None
    if base is None or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    start = position = _address(arrays[0])
    for array in arrays:
        if (
            array.base is not base
            or array.dtype != base.dtype
            or not array.flags.c_contiguous
            or _address(array) != position
        ):
            return None
        position += array.nbytes
    offset = (start - _address(base)) // base.itemsize
    return base[offset : offset + (position - start) // base.itemsize]


def flat_view(array: np.ndarray) -> np.ndarray:
    """``array`` as a 1-D view (writes reach it); ValueError when it is not contiguous."""
    if not array.flags.c_contiguous:
        raise ValueError(f"an array of shape {array.shape} is not contiguous: it cannot be updated as a flat view")
    return array.reshape(-1)


def blocks(size: int) -> list[slice]:
    """``[0, size)`` in consecutive slices of at most ``BLOCK`` elements."""
    return [slice(start, min(start + BLOCK, size)) for start in range(0, size, BLOCK)]


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]
