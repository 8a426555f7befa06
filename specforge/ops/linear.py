"""A batch times a weight matrix, plus bias, through a fused activation, and its gradients; the
batch split across the cores (:mod:`specforge.ops.parallel`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specforge.ops import costs, parallel
from specforge.ops.epilogue import ActivationFunction, activation_gradient, add_bias_and_activate, epilogue_work
from specforge.ops.scratch import column_sums


@dataclass(frozen=True)
class DenseRecord:
    """What the backward of :func:`dense` needs; a layer keeps it as its cache and hands it back."""

    x: np.ndarray
    kernel: np.ndarray
    has_bias: bool
    parts: list[slice]
    activation: ActivationFunction | None
    y: np.ndarray


def dense(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None, activation: ActivationFunction | None = None
) -> tuple[np.ndarray, DenseRecord]:
    """``(y, record)``: ``x`` (N, features) ``@ kernel`` (features, units), plus ``bias``, through ``activation``
    applied in place."""
    y = np.empty((len(x), kernel.shape[1]), np.result_type(x, kernel))
    features, units = kernel.shape
    parts = costs.shards(
        len(x), costs.Work.product(1, features, units, y.itemsize) + epilogue_work(units, activation, y.itemsize)
    )

    def shard(part: slice) -> None:
        np.matmul(x[part], kernel, out=y[part])
        add_bias_and_activate(y[part], bias, activation)

    parallel.run(shard, parts)
    return y, DenseRecord(x, kernel, bias is not None, parts, activation, y)


def dense_gradients(
    record: DenseRecord,
    dy: np.ndarray,
    need_dx: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """``(dx, dkernel, dbias)`` of the product that made ``record``, given the gradient ``dy`` after its
    activation; per-shard parts summed in shard order. ``dx`` is None unless ``need_dx``, ``dbias`` None
    without a bias."""
    x, kernel = record.x, record.kernel
    dx = np.empty(x.shape if need_dx else (0,), np.result_type(dy, kernel))

    def shard(part: slice) -> tuple[np.ndarray, np.ndarray | None]:
        dz = activation_gradient(record.activation, record.y[part], dy[part])
        if need_dx:
            np.matmul(dz, kernel.T, out=dx[part])
        return x[part].T @ dz, column_sums(dz) if record.has_bias else None

    results = parallel.run(shard, record.parts)
    dkernel = parallel.sum_in_order([dkernel for dkernel, _ in results])
    dbias = parallel.sum_in_order([dbias for _, dbias in results if dbias is not None]) if record.has_bias else None
    return (dx if need_dx else None), dkernel, dbias
