"""Per-thread scratch buffers that repeat every batch, allocated once.

A scratch buffer lives only inside one forward or backward call: it is never returned and
never kept in a cache, so reusing it on the next call cannot overwrite anything a caller
holds. Buffers are per thread, so shards of a batch running in parallel never share one.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

import numpy as np

#: Distinct buffers a thread keeps before it drops them all (batch shapes seldom vary more).
_MAX_BUFFERS = 32
_local = threading.local()


def scratch(key: Hashable, shape: tuple[int, ...], dtype: np.dtype, fill: float | None = None) -> np.ndarray:
    """This thread's buffer for ``key`` with ``shape`` and ``dtype``, made on first use.

    A buffer with a ``fill`` starts filled with it; callers keep that invariant for the parts they
    do not rewrite on every call (a zero frame around the region they fill, a row of ones).
    """
    buffers: dict | None = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    full_key = (key, tuple(shape), np.dtype(dtype).str, fill)
    buffer = buffers.get(full_key)
    if buffer is None:
        if len(buffers) >= _MAX_BUFFERS:
            buffers.clear()
        buffer = buffers[full_key] = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
    return buffer


def column_sums(rows: np.ndarray) -> np.ndarray:
    """``rows.sum(axis=0)`` of a 2-D array, as a product with a row of ones: BLAS reads the rows once,
    several times faster than numpy's reduction over a long axis."""
    ones = scratch("ones", (1, len(rows)), rows.dtype, fill=1.0)
    return (ones @ rows)[0]
