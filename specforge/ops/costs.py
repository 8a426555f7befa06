"""Whether an operation's batch is split across the cores, and into how many shards: from what it costs.

An operation describes its work (:class:`Work`): per example, its matrix-product FLOPs, its elementwise
passes and the bytes it moves; per shard, whatever the shard's size, the weight elements its products read
whole, the numpy or BLAS calls it makes and its runs of onnxruntime's convolution kernels. With the
machine's constants (:mod:`specforge.ops.machine`, measured once and kept) the time of ``count`` shards of
a batch is

    max(per-shard compute, the batch's bytes / the bandwidth ``count`` cores share) + hand-off

where the per-shard compute is the largest shard's FLOPs and passes at one core's rates, slowed by the
share of the other cores a split actually gets (1 on free cores, less where other processes take them),
plus, paid again by every shard, its calls, kernel runs and weight reads; the hand-off is what each core
beyond the first adds (``count - 1`` times the measured hand-off). The batch is split into the count that takes least time, and
only when that saves at least ``1 - MARGIN`` of the whole batch's time: a split that saves less is within
the model's error, and on a machine that other work keeps busy a second core is not always there.

So a small product whose every shard would read the whole weight matrix stays whole, a memory-bound pass
splits only while the cores' shared bandwidth grows, and a large convolution splits. The decision depends
on the constants, the geometry and the cores alone, never on a timing taken during the run, so a machine
computes the same results from run to run (a machine whose constants differ may split differently, and
weight gradients summed over another number of shards round differently).

Left out: BLAS threading one whole product instead of splitting the batch. On a 2-core machine that
other processes keep busy, OpenBLAS's two threads took the median (128 x 784) @ (784 x 256) product from
0.8 to 10.8 ms (its threads spin waiting for a core), and they keep spinning after it, taking the cores from
the shards of the next layer.
"""

from __future__ import annotations

import itertools
from dataclasses import astuple, dataclass

from specforge.ops import machine, parallel
from specforge.ops.machine import Machine

#: Split only where the model's time for the split is at most this share of the whole batch's.
MARGIN = 0.8
#: Elementwise passes an activation function makes over its elements, forward or backward (ReLU: one or
#: two; GELU, tanh, softmax: several).
ACTIVATION_PASSES = 4


@dataclass(frozen=True)
class Work:
    """What an operation costs: per example (``flops``, ``elements``, ``bytes``) and per shard, whatever its
    size (``weights``, ``calls``, ``sessions``)."""

    #: matrix-product FLOPs per example
    flops: float = 0.0
    #: elements per example times the elementwise passes over them
    elements: float = 0.0
    #: bytes per example read and written
    bytes: float = 0.0
    #: weight elements the products of a shard read whole (every shard reads them again)
    weights: float = 0.0
    #: numpy or BLAS calls a shard makes
    calls: float = 1.0
    #: runs of onnxruntime's kernels a shard makes (:mod:`specforge.ops.nchwc`)
    sessions: float = 0.0

    def __add__(self, other: Work) -> Work:
        return Work(*(mine + theirs for mine, theirs in zip(astuple(self), astuple(other))))

    def __mul__(self, times: float) -> Work:
        """The work done ``times`` over (a recurrent layer's steps)."""
        return Work(*(value * times for value in astuple(self)))

    @classmethod
    def product(cls, rows: int, inner: int, columns: int, itemsize: int = 4) -> Work:
        """Each example's ``(rows, inner)`` times a ``(inner, columns)`` weight matrix (a dense layer: one row
        per example; a convolution: one per output pixel), one product per shard."""
        return cls(
            flops=2.0 * rows * inner * columns,
            bytes=float(itemsize * rows * (inner + columns)),
            weights=float(inner * columns),
        )

    @classmethod
    def passes(cls, size: int, passes: float = 1.0, itemsize: int = 4, arrays: float = 2.0) -> Work:
        """``passes`` elementwise passes over each example's ``size`` elements, which read and write ``arrays``
        arrays of that size."""
        return cls(elements=float(size) * passes, bytes=itemsize * size * arrays, calls=passes)


def seconds(work: Work, batch: int, count: int, constants: Machine) -> float:
    """The model's time for ``batch`` examples of ``work`` in ``count`` shards on ``count`` cores."""
    # the largest shard's arithmetic, on cores of which a split gets ``core_share`` beyond the first
    cores = 1 + (count - 1) * constants.core_share
    arithmetic = -(-batch // count) * count / cores
    compute = (
        arithmetic * (work.flops / constants.flops_per_s + work.elements / constants.elements_per_s)
        + work.weights / constants.packed_per_s
        + work.calls * constants.call_s
        + work.sessions * constants.session_s
    )
    bandwidth = min(count * constants.bytes_per_s, constants.all_bytes_per_s)
    return max(compute, batch * work.bytes / bandwidth) + (count - 1) * constants.handoff_s


def shard_count(work: Work, batch: int, cores: int, constants: Machine) -> int:
    """How many shards ``batch`` examples of ``work`` take on ``cores`` cores: the fastest count by the model,
    1 unless it saves at least ``1 - MARGIN`` of the whole batch's time (ties: the fewer shards)."""
    whole = seconds(work, batch, 1, constants)
    counts = range(1, max(1, min(cores, batch)) + 1)
    best = min(counts, key=lambda count: (seconds(work, batch, count, constants), count))
    return best if seconds(work, batch, best, constants) <= MARGIN * whole else 1


def shards(batch: int, work: Work) -> list[slice]:
    """Contiguous slices of a batch, as many as pay for themselves on the cores this process may use."""
    cores = parallel.workers()
    count = 1 if cores == 1 or batch < 2 else shard_count(work, batch, cores, machine.constants())
    bounds = [batch * index // count for index in range(count + 1)]
    return [slice(start, stop) for start, stop in itertools.pairwise(bounds)]
