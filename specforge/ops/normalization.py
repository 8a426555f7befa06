"""Batch normalization's passes over a channels-last batch: statistics, normalization with scale and shift
and a fused activation, and the gradients; the compiled kernels' two passes each way when they are in use
(:mod:`specforge.ops.kernels`), else numpy's, block by block (:mod:`specforge.ops.channels`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specforge.ops import kernels
from specforge.ops.channels import blockwise, blockwise_sums, channel_totals, example_rows, tiled
from specforge.ops.epilogue import ActivationFunction, Rectifier, activation_gradient
from specforge.ops.scratch import scratch


@dataclass(frozen=True)
class NormRecord:
    """What :func:`batch_norm_gradients` needs; a layer keeps it as its cache and hands it back."""

    #: ``x - mean`` as rows of one example (numpy path), or the input as ``(positions, C)`` (compiled path)
    rows: np.ndarray
    #: the mean subtracted (compiled path; None on the numpy path, whose rows are centered)
    mean: np.ndarray | None
    inv_std: np.ndarray
    scale: np.ndarray
    training: bool
    activation: ActivationFunction | None
    y: np.ndarray


def batch_norm(
    x: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    epsilon: float,
    activation: ActivationFunction | None = None,
    statistics: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, NormRecord]:
    """``(y, mean, variance, record)``: per channel (the last axis) ``y = (x - mean) * scale + beta`` with
    ``scale = gamma / sqrt(variance + epsilon)``, through ``activation`` applied in place; ``mean`` and
    ``variance`` are the batch's (biased), or ``statistics`` when given (inference)."""
    if kernels.takes(x) and all(p is None or p.dtype == x.dtype for p in (gamma, beta)):
        return _compiled_forward(x, gamma, beta, epsilon, activation, statistics)
    return _numpy_forward(x, gamma, beta, epsilon, activation, statistics)


def batch_norm_gradients(
    record: NormRecord, dy: np.ndarray, need_dx: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(dx, dgamma, dbeta)`` from the gradient ``dy`` after the fused activation. With ``x_hat = (x - mean)
    * inv_std``, ``n`` values per channel and ``g`` the gradient before the activation: ``dgamma = sum(g
    x_hat)``, ``dbeta = sum(g)``, and in training ``dx = scale * (g - dbeta / n - x_hat * dgamma / n)``, as
    per-channel multiples of ``g``, of ``x - mean`` and a constant (``dx`` None unless ``need_dx``)."""
    if record.mean is not None:
        return _compiled_backward(record, np.ascontiguousarray(dy, record.y.dtype), need_dx)
    return _numpy_backward(record, dy, need_dx)


def _plain_relu(activation: ActivationFunction | None) -> bool:
    return isinstance(activation, Rectifier) and activation.is_plain


def _scale(variance: np.ndarray, gamma: np.ndarray | None, epsilon: float, dtype: np.dtype) -> tuple:
    inv_std = (1 / np.sqrt(variance + epsilon)).astype(dtype, copy=False)
    return inv_std, inv_std * gamma if gamma is not None else inv_std


def _compiled_forward(x, gamma, beta, epsilon, activation, statistics):
    """Two passes for the statistics (mean, then the centered squares), one for the output."""
    compiled = kernels.active()
    assert compiled is not None
    channels = x.shape[-1]
    rows = x.reshape(-1, channels)
    if statistics is None:
        mean64, variance64 = np.empty(channels), np.empty(channels)
        compiled.channel_statistics(rows, mean64, variance64)
        mean, variance = mean64.astype(x.dtype), variance64.astype(x.dtype)
    else:
        mean, variance = (np.ascontiguousarray(s, x.dtype) for s in statistics)
    inv_std, scale = _scale(variance, gamma, epsilon, x.dtype)
    shift = np.zeros(channels, x.dtype) if beta is None else np.ascontiguousarray(beta)
    y = np.empty(x.shape, x.dtype)
    relu = _plain_relu(activation)
    compiled.normalize(rows, mean, np.ascontiguousarray(scale), shift, relu, y.reshape(rows.shape))
    if activation is not None and not relu:
        activation.forward_into(y, y)
    return y, mean, variance, NormRecord(rows, mean, inv_std, scale, statistics is None, activation, y)


def _compiled_backward(record: NormRecord, dy: np.ndarray, need_dx: bool):
    """One pass for the two per-channel sums, one for the input gradient; ``g`` worked out in each."""
    compiled = kernels.active()
    assert compiled is not None and record.mean is not None
    x, mean, y = record.rows, record.mean, record.y.reshape(record.rows.shape)
    relu = _plain_relu(record.activation)
    g = dy.reshape(x.shape)
    if record.activation is not None and not relu:
        g = activation_gradient(record.activation, y, g)
    g_total, g_centered_total = np.empty(x.shape[1]), np.empty(x.shape[1])
    compiled.normalization_gradient_sums(x, mean, g, y, relu, g_total, g_centered_total)
    dbeta = g_total.astype(x.dtype)
    dgamma = g_centered_total.astype(x.dtype) * record.inv_std
    if not need_dx:
        return None, dgamma, dbeta
    scale = np.ascontiguousarray(record.scale, x.dtype)
    if record.training:
        count = len(x)
        centered_scale = -scale * record.inv_std * dgamma / count
        constant = -scale * dbeta / count
    else:
        centered_scale = constant = np.zeros_like(scale)
    dx = np.empty(x.shape, x.dtype)
    compiled.normalization_input_gradient(x, mean, g, y, relu, scale, centered_scale, constant, dx)
    return dx.reshape(dy.shape), dgamma, dbeta


def _numpy_forward(x, gamma, beta, epsilon, activation, statistics):
    """On rows of one example, block by block (specforge.ops.channels)."""
    rows, channels = example_rows(x), x.shape[-1]
    count = x.size // channels
    centered = np.empty_like(rows)
    if statistics is None:
        (row_totals,) = blockwise_sums(lambda block: [rows[block]], rows)
        mean = channel_totals(row_totals, channels) / count
        shift = tiled(mean, rows)

        def center(block: slice) -> list[np.ndarray]:
            np.subtract(rows[block], shift, out=centered[block])
            squares = scratch("batch normalization squares", centered[block].shape, rows.dtype)
            return [np.multiply(centered[block], centered[block], out=squares)]

        (row_squares,) = blockwise_sums(center, rows)
        variance = channel_totals(row_squares, channels) / count
    else:
        mean, variance = statistics
        shift = tiled(mean, rows)
        blockwise(lambda block: np.subtract(rows[block], shift, out=centered[block]), rows)
    inv_std, scale = _scale(variance, gamma, epsilon, rows.dtype)
    scales, betas = tiled(scale, rows), tiled(beta, rows) if beta is not None else None
    y = np.empty(x.shape, rows.dtype)
    y_rows = y.reshape(rows.shape)

    def output(block: slice) -> None:
        np.multiply(centered[block], scales, out=y_rows[block])
        if betas is not None:
            y_rows[block] += betas
        if activation is not None:
            activation.forward_into(y[block], y[block])

    blockwise(output, rows)
    return y, mean, variance, NormRecord(centered, None, inv_std, scale, statistics is None, activation, y)


def _numpy_backward(record: NormRecord, dy: np.ndarray, need_dx: bool):
    """Block by block, ``g`` worked out again in each pass rather than stored."""
    centered, inv_std, scale, activation, y = record.rows, record.inv_std, record.scale, record.activation, record.y
    channels, row_size = len(inv_std), centered.shape[1]

    def gradient(block: slice) -> np.ndarray:
        return activation_gradient(activation, y[block], dy[block]).reshape(-1, row_size)

    def products(block: slice) -> list[np.ndarray]:
        g = gradient(block)
        product = scratch("batch normalization products", g.shape, g.dtype)
        return [g, np.multiply(g, centered[block], out=product)]

    row_g, row_products = blockwise_sums(products, centered)
    dbeta = channel_totals(row_g, channels)
    dgamma = channel_totals(row_products, channels) * inv_std
    if not need_dx:
        return None, dgamma, dbeta
    dx = np.empty(centered.shape, centered.dtype)
    scales = tiled(scale, dx)
    if record.training:
        count = centered.size // channels
        centered_scales = tiled(-scale * inv_std * dgamma / count, dx)
        constant = tiled(-scale * dbeta / count, dx)

    def input_gradient(block: slice) -> None:
        np.multiply(gradient(block), scales, out=dx[block])
        if record.training:
            product = scratch("batch normalization products", dx[block].shape, dx.dtype)
            dx[block] += np.multiply(centered[block], centered_scales, out=product)
            dx[block] += constant

    blockwise(input_gradient, dx)
    return dx.reshape(dy.shape), dgamma, dbeta
