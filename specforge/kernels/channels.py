"""Per-channel arithmetic on channels-last batches, with every loop running over a whole example.

numpy broadcasts a ``(C,)`` vector over an ``(..., C)`` array, and reduces such an array over its
leading axes, with an inner loop of C elements: for the few channels of a small network (6, 16, 32)
that is one short loop per pixel, and the loop overhead costs several times the arithmetic. Here a
batch is seen as rows of one example each, a per-channel vector is tiled to an example's length,
and a sum over everything but the channels is two products with a row of ones (BLAS reads the
rows once), so no loop is shorter than an example.
"""

from __future__ import annotations

import numpy as np

from specforge.kernels.scratch import column_sums


def example_rows(x: np.ndarray) -> np.ndarray:
    """``x`` (N, ..., C) as ``(N, example size)`` rows, a view when ``x`` is C-contiguous."""
    return np.ascontiguousarray(x).reshape(len(x), -1)


def tiled(vector: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The per-channel ``vector`` repeated over one row of ``rows``, in the rows' dtype."""
    return np.tile(vector.astype(rows.dtype, copy=False), rows.shape[1] // len(vector))


def channel_sums(rows: np.ndarray, channels: int) -> np.ndarray:
    """The sum of each channel over every example and position of ``rows`` (as ``example_rows`` gives)."""
    return column_sums(column_sums(rows).reshape(-1, channels))
