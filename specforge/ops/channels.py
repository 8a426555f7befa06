"""Per-channel arithmetic on channels-last batches, with every loop running over a whole example,
a few examples at a time.

numpy broadcasts a ``(C,)`` vector over an ``(..., C)`` array, and reduces such an array over its
leading axes, with an inner loop of C elements: for the few channels of a small network (6, 16, 32)
that is one short loop per pixel, and the loop overhead costs several times the arithmetic. Here a
batch is seen as rows of one example each, a per-channel vector is tiled to an example's length,
and a sum over everything but the channels is two products with a row of ones (BLAS reads the
rows once), so no loop is shorter than an example.

A layer's passes over a batch of megabytes run block by block: each block of rows goes through all
the passes while it is in the cache, instead of every pass streaming the whole batch through memory.
Sums are added block by block in order, so results are the same from run to run. The blocks run on
one core, BLAS held at one thread: measured on a 2-core machine shared with other work, splitting
them over both cores made these memory-bound passes slower, and a BLAS product of a few rows
waiting for its second thread took up to 20 times as long as on one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from specforge.ops import parallel
from specforge.ops.scratch import column_sums, scratch

#: Elements per block of rows that the passes of a layer go through together (256 KiB of float32).
BLOCK = 65536


def example_rows(x: np.ndarray) -> np.ndarray:
    """``x`` (N, ..., C) as ``(N, example size)`` rows, a view when ``x`` is C-contiguous."""
    return np.ascontiguousarray(x).reshape(len(x), -1)


def tiled(vector: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The per-channel ``vector`` repeated over one row of ``rows``, in the rows' dtype."""
    return np.tile(vector.astype(rows.dtype, copy=False), rows.shape[1] // len(vector))


def channel_totals(row_totals: np.ndarray, channels: int) -> np.ndarray:
    """Per-channel sums from the sums over the rows of each position of an example (``blockwise_sums``)."""
    return row_totals.reshape(-1, channels).sum(axis=0)


def position_sums(x: np.ndarray) -> np.ndarray:
    """``(N, C)``: each example's sum of each channel over its positions, for ``x`` ``(N, positions, C)``; one
    product with a row of ones per example (numpy's sum over the middle axis loops over the C channels)."""
    ones = scratch("ones", (1, x.shape[1]), x.dtype, fill=1.0)
    return parallel.run(lambda _: np.matmul(ones, x), [None])[0][:, 0]


def blocks_of(rows: np.ndarray) -> list[slice]:
    """The rows in consecutive blocks of about ``BLOCK`` elements (at least one row each)."""
    step = max(1, BLOCK // rows.shape[1])
    return [slice(start, min(start + step, len(rows))) for start in range(0, len(rows), step)]


def blockwise(work: Callable[[slice], None], rows: np.ndarray) -> None:
    """``work(block)`` for every block of ``rows``."""

    def run(_: None) -> None:
        for block in blocks_of(rows):
            work(block)

    parallel.run(run, [None])


def blockwise_sums(work: Callable[[slice], Sequence[np.ndarray]], rows: np.ndarray) -> list[np.ndarray]:
    """For every block of ``rows``, ``work(block)`` gives arrays of the block's rows; each one's sum over all
    rows (a row-sized vector per array), added block by block in order."""

    def run(_: None) -> list[np.ndarray]:
        totals: list[np.ndarray] = []
        for block in blocks_of(rows):
            sums = [column_sums(values) for values in work(block)]
            if totals:
                for total, value in zip(totals, sums):
                    total += value
            else:
                totals = sums
        return totals

    return parallel.run(run, [None])[0]
