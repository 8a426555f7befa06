"""The im2col convolution: the forward against the loop reference for one group and for depthwise groups,
its columns, and both gradients through the adjoint identity (linear in the input and in the kernel)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import reference_conv

from specforge.ops import im2col
from specforge.ops.window import Window

# (window, input shape, groups, output channels per group)
CASES = [
    (Window((3, 2), (1, 1), (1, 1), ((0, 0), (0, 0))), (2, 6, 5, 3), 1, 4),
    (Window((3, 3), (2, 1), (1, 1), ((1, 1), (0, 1))), (2, 7, 5, 2), 1, 3),
    (Window((2, 3), (1, 1), (2, 1), ((1, 0), (1, 1))), (3, 6, 6, 3), 3, 1),
    (Window((2, 2), (2, 2), (1, 1), ((0, 1), (0, 1))), (2, 5, 5, 2), 2, 3),
]


def grouped_kernel(window, channels, groups, out_per_group, rng):
    return rng.standard_normal((groups, *window.kernel, channels // groups, out_per_group))


def as_keras(kernel):
    """A one-group kernel as (KH, KW, Cin, Cout); per-channel groups as a depthwise (KH, KW, C, M) kernel."""
    return kernel[0] if kernel.shape[0] == 1 else kernel[:, :, :, 0, :].transpose(1, 2, 0, 3)


def convolve(window, x, kernel):
    out_h, out_w = window.output_size(x.shape[1:3])
    y = np.empty((len(x), out_h, out_w, kernel.shape[0] * kernel.shape[-1]))
    cols = im2col.grouped_conv(x, kernel, window, y)
    return y, cols


@pytest.mark.parametrize("window, shape, groups, out", CASES, ids=str)
def test_grouped_conv_matches_the_loop_reference(window, shape, groups, out):
    rng = np.random.default_rng(0)
    x, kernel = rng.standard_normal(shape), grouped_kernel(window, shape[3], groups, out, rng)
    y, cols = convolve(window, x, kernel)
    expected = reference_conv(x, as_keras(kernel), None, window.strides, window.dilation, window.pads, groups > 1)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    assert cols.shape == (groups, len(x) * y.shape[1] * y.shape[2], np.prod(window.kernel) * shape[3] // groups)


def test_columns_hold_each_window_with_channels_innermost():
    window = Window((2, 2), (1, 1), (1, 1), ((0, 0), (0, 0)))
    x = np.arange(1 * 3 * 3 * 2, dtype=float).reshape(1, 3, 3, 2)
    cols = im2col.columns(x, window, 1)
    assert cols.shape == (1, 4, 8)
    np.testing.assert_array_equal(cols[0, 0], x[0, :2, :2].reshape(-1))  # (KH, KW, Cin) order
    np.testing.assert_array_equal(cols[0, 3], x[0, 1:, 1:].reshape(-1))


DILATED = (Window((2, 3), (1, 1), (2, 1), ((1, 0), (1, 1))), (3, 6, 6, 2))


@pytest.mark.parametrize(
    "window, shape", [*((window, shape) for window, shape, groups, _ in CASES if groups == 1), DILATED], ids=str
)
def test_tap_major_columns_are_the_columns_transposed(window, shape):
    x = np.random.default_rng(2).standard_normal(shape)
    np.testing.assert_array_equal(im2col.tap_major_columns(x, window), im2col.columns(x, window, 1)[0].T)


@pytest.mark.parametrize("window, shape, groups, out", CASES, ids=str)
def test_gradients_are_the_adjoint(window, shape, groups, out):
    """<y, dy> = <x, dx> = <kernel, dkernel> for the linear map y = conv(x, kernel)."""
    rng = np.random.default_rng(1)
    x, kernel = rng.standard_normal(shape), grouped_kernel(window, shape[3], groups, out, rng)
    y, cols = convolve(window, x, kernel)
    dy = rng.standard_normal(y.shape)
    dkernel = im2col.grouped_kernel_gradient(cols, dy, kernel.shape)
    dx = np.empty(x.shape)
    im2col.grouped_input_gradient(kernel, window, dy, dx)
    np.testing.assert_allclose(np.vdot(kernel, dkernel), np.vdot(y, dy), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(x, dx), np.vdot(y, dy), rtol=1e-10)


@pytest.mark.parametrize(
    "window, shape, groups, out", [case for case in CASES if case[2] > 1 and case[3] == 1], ids=str
)
def test_depthwise_kernel_gradient_without_columns_equals_the_columns_one(window, shape, groups, out):
    rng = np.random.default_rng(2)
    x, kernel = rng.standard_normal(shape), grouped_kernel(window, shape[3], groups, out, rng)
    y, cols = convolve(window, x, kernel)
    dy = rng.standard_normal(y.shape)
    from_columns = as_keras(im2col.grouped_kernel_gradient(cols, dy, kernel.shape))[..., 0]
    np.testing.assert_allclose(im2col.depthwise_kernel_gradient(x, dy, window), from_columns, rtol=1e-12, atol=1e-12)


def test_spread_gradient_puts_each_value_at_its_strided_position():
    window = Window((3, 3), (2, 2), (1, 1), ((1, 1), (1, 1)))
    dy = np.arange(1, 1 + 2 * 3 * 1, dtype=float).reshape(1, 2, 3, 1)
    spread = im2col.spread_gradient(dy, window, (4, 6))
    assert spread.shape == (1, 4 + 2, 6 + 2, 1)
    # effective 3, padding 1 before: output pixel (i, j) lands at (1 + 2i, 1 + 2j)
    np.testing.assert_array_equal(spread[0, 1:5:2, 1:7:2, 0], dy[0, :, :, 0])
    assert spread.sum() == dy.sum()
