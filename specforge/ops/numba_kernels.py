"""The compiled kernels: the memory-bound passes of a training step, each one or two loops over memory.

numpy makes one pass over memory per operation: batch normalization's statistics, normalization and
gradient take about ten passes each way, pooling one per kernel offset, Adam's update a dozen. Each
function here does the same arithmetic in one or two passes (float32 in, float32 out, per-channel sums
accumulated in float64 in a fixed order, so a rerun gives the same bits). They are compiled with numba
for the signatures below when this module is imported, which :mod:`specforge.ops.kernels` alone does,
and release the GIL, so the batch shards of :mod:`specforge.ops.parallel` run them on every core.

Arrays are C-contiguous float32 (the records of max pooling uint8); channels-last images are ``(N, H, W, C)``
and a per-channel pass sees them as ``(positions, C)`` rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_ROWS = "float32[:, ::1]"
_VECTOR = "float32[::1]"
_IMAGES = "float32[:, :, :, ::1]"
_RECORD = "uint8[:, :, :, ::1]"


@njit(f"void({_ROWS}, float64[::1], float64[::1])", cache=True, nogil=True)
def channel_statistics(x, mean, variance):  # pragma: no cover - compiled
    """Per-channel mean and biased variance of ``x`` (positions, C), in two passes (the variance of the
    centered values, as the numpy path)."""
    rows, channels = x.shape
    total = np.zeros(channels, np.float64)
    for i in range(rows):
        for j in range(channels):
            total[j] += x[i, j]
    for j in range(channels):
        mean[j] = total[j] / rows
        total[j] = 0.0
    for i in range(rows):
        for j in range(channels):
            d = x[i, j] - mean[j]
            total[j] += d * d
    for j in range(channels):
        variance[j] = total[j] / rows


@njit(f"void({_ROWS}, {_VECTOR}, {_VECTOR}, {_VECTOR}, boolean, {_ROWS})", cache=True, nogil=True)
def normalize(x, mean, scale, shift, relu, y):  # pragma: no cover - compiled
    """``y = (x - mean) * scale + shift`` per channel, then ``max(y, 0)`` when ``relu``."""
    rows, channels = x.shape
    for i in range(rows):
        for j in range(channels):
            value = (x[i, j] - mean[j]) * scale[j] + shift[j]
            if relu and value < 0:
                value = np.float32(0)
            y[i, j] = value


@njit(
    f"void({_ROWS}, {_VECTOR}, {_ROWS}, {_ROWS}, boolean, float64[::1], float64[::1])",
    cache=True,
    nogil=True,
)
def normalization_gradient_sums(x, mean, dy, y, relu, g_total, g_centered_total):  # pragma: no cover - compiled
    """Per channel, the sum of ``g`` and of ``g * (x - mean)``, ``g`` being ``dy`` (where ``y > 0`` when
    ``relu``: the gradient before a fused ReLU)."""
    rows, channels = x.shape
    for j in range(channels):
        g_total[j] = 0.0
        g_centered_total[j] = 0.0
    for i in range(rows):
        for j in range(channels):
            g = dy[i, j]
            if relu and not y[i, j] > 0:
                g = np.float32(0)
            g_total[j] += g
            g_centered_total[j] += g * (x[i, j] - mean[j])


@njit(
    f"void({_ROWS}, {_VECTOR}, {_ROWS}, {_ROWS}, boolean, {_VECTOR}, {_VECTOR}, {_VECTOR}, {_ROWS})",
    cache=True,
    nogil=True,
)
def normalization_input_gradient(x, mean, dy, y, relu, scale, centered_scale, constant, dx):  # pragma: no cover
    """``dx = g * scale + (x - mean) * centered_scale + constant`` per channel (``g`` as above)."""
    rows, channels = x.shape
    for i in range(rows):
        for j in range(channels):
            g = dy[i, j]
            if relu and not y[i, j] > 0:
                g = np.float32(0)
            dx[i, j] = g * scale[j] + (x[i, j] - mean[j]) * centered_scale[j] + constant[j]


@njit(f"void({_ROWS}, {_VECTOR})", cache=True, nogil=True)
def add_bias_and_rectify(out, bias):  # pragma: no cover - compiled
    """``out = max(out + bias, 0)`` in place, per channel."""
    rows, channels = out.shape
    for i in range(rows):
        for j in range(channels):
            value = out[i, j] + bias[j]
            if value < 0:
                value = np.float32(0)
            out[i, j] = value


@njit(f"void({_IMAGES}, {_RECORD}, UniTuple(int64, 6), {_IMAGES})", cache=True, nogil=True)
def max_pool_gradient(dy, record, window, dx):  # pragma: no cover - compiled
    """Each window's gradient added to its recorded pixel of ``dx`` (zeros on entry): ``record`` holds the
    kernel offset (row-major) of each window's first maximum, ``window`` is ``(kernel height, kernel width,
    stride, stride, pad top, pad left)``. (Max pooling's forward stays on numpy: its vector operations per
    kernel offset measured faster than a compiled loop with a comparison per element.)"""
    _, kw, sh, sw, top, left = window
    _, height, width, channels = dx.shape
    for n in range(dy.shape[0]):
        for oh in range(dy.shape[1]):
            for ow in range(dy.shape[2]):
                for c in range(channels):
                    offset = record[n, oh, ow, c]
                    ih = oh * sh - top + offset // kw
                    iw = ow * sw - left + offset % kw
                    if 0 <= ih < height and 0 <= iw < width:
                        dx[n, ih, iw, c] += dy[n, oh, ow, c]


@njit(f"void({_IMAGES}, UniTuple(int64, 6), {_IMAGES})", cache=True, nogil=True)
def average_pool(x, window, y):  # pragma: no cover - compiled
    """Each window's mean over its real (unpadded) pixels (``window`` as above)."""
    kh, kw, sh, sw, top, left = window
    _, height, width, channels = x.shape
    for n in range(y.shape[0]):
        for oh in range(y.shape[1]):
            for ow in range(y.shape[2]):
                for c in range(channels):
                    y[n, oh, ow, c] = 0
                count = 0
                for ki in range(kh):
                    ih = oh * sh - top + ki
                    if ih < 0 or ih >= height:
                        continue
                    for kj in range(kw):
                        iw = ow * sw - left + kj
                        if iw < 0 or iw >= width:
                            continue
                        count += 1
                        for c in range(channels):
                            y[n, oh, ow, c] += x[n, ih, iw, c]
                divisor = np.float32(count)
                for c in range(channels):
                    y[n, oh, ow, c] /= divisor


@njit(f"void({_IMAGES}, UniTuple(int64, 6), {_IMAGES})", cache=True, nogil=True)
def average_pool_gradient(dy, window, dx):  # pragma: no cover - compiled
    """Each window's gradient, divided by its real pixels, added to them in ``dx`` (zeros on entry)."""
    kh, kw, sh, sw, top, left = window
    _, height, width, channels = dx.shape
    for n in range(dy.shape[0]):
        for oh in range(dy.shape[1]):
            for ow in range(dy.shape[2]):
                h0, w0 = oh * sh - top, ow * sw - left
                rows = min(h0 + kh, height) - max(h0, 0)
                columns = min(w0 + kw, width) - max(w0, 0)
                divisor = np.float32(rows * columns)
                for ih in range(max(h0, 0), min(h0 + kh, height)):
                    for iw in range(max(w0, 0), min(w0 + kw, width)):
                        for c in range(channels):
                            dx[n, ih, iw, c] += dy[n, oh, ow, c] / divisor


@njit(
    f"void({_VECTOR}, {_VECTOR}, {_VECTOR}, {_VECTOR}, {_VECTOR}, boolean, float32, float32, float32, float32)",
    cache=True,
    nogil=True,
)
def adam(param, grad, m, v, v_max, amsgrad, keep_1, keep_2, epsilon, alpha):  # pragma: no cover - compiled
    """Adam's step in one pass, the numpy path's operations in its order: ``m += (g - m) keep_1``,
    ``v += (g^2 - v) keep_2`` (``keep`` is ``1 - beta``), AMSGrad's running maximum of ``v`` in ``v_max``,
    ``param -= m / (sqrt(v) + epsilon) * alpha``."""
    for i in range(param.size):
        g = grad[i]
        moment = m[i] + (g - m[i]) * keep_1
        m[i] = moment
        second = v[i] + (g * g - v[i]) * keep_2
        v[i] = second
        if amsgrad:
            second = max(v_max[i], second)
            v_max[i] = second
        param[i] -= moment / (np.sqrt(second) + epsilon) * alpha


@njit(f"void({_VECTOR}, {_VECTOR}, {_VECTOR}, float32, float32, boolean)", cache=True, nogil=True)
def sgd(param, grad, velocity, learning_rate, momentum, nesterov):  # pragma: no cover - compiled
    """SGD's step in one pass, the numpy path's operations in its order: ``velocity = velocity * momentum -
    g lr``, then ``param += velocity`` (Nesterov: ``param += velocity * momentum - g lr``); with momentum 0
    (``velocity`` empty), ``param -= g lr``."""
    for i in range(param.size):
        scaled = grad[i] * learning_rate
        if velocity.size == 0:
            param[i] -= scaled
            continue
        moved = velocity[i] * momentum - scaled
        velocity[i] = moved
        if nesterov:
            param[i] += moved * momentum - scaled
        else:
            param[i] += moved


@njit(f"void({_IMAGES}, {_IMAGES}, UniTuple(int64, 8), float64[:, :, ::1])", cache=True, nogil=True)
def depthwise_kernel_gradient(x, dy, window, dkernel):  # pragma: no cover - compiled
    """The kernel gradient ``dkernel`` (KH, KW, C) of a depthwise convolution with one output per channel: per
    tap and channel, the input pixel the tap reads (zero where it reads padding) times the output gradient,
    summed over the batch and the output pixels in one pass (numpy: a pass per tap). ``window`` is ``(kernel
    height, kernel width, stride, stride, dilation, dilation, pad top, pad left)``."""
    kh, kw, sh, sw, dh, dw, top, left = window
    _, height, width, channels = x.shape
    dkernel[:] = 0
    for n in range(dy.shape[0]):
        for oh in range(dy.shape[1]):
            for ki in range(kh):
                ih = oh * sh - top + ki * dh
                if ih < 0 or ih >= height:
                    continue
                for ow in range(dy.shape[2]):
                    for kj in range(kw):
                        iw = ow * sw - left + kj * dw
                        if iw < 0 or iw >= width:
                            continue
                        for c in range(channels):
                            dkernel[ki, kj, c] += x[n, ih, iw, c] * dy[n, oh, ow, c]
