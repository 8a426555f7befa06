"""The convolution ops: which engine a convolution takes, and that every engine computes the same forward
and gradients (against the loop reference, and against each other); transposed convolutions as the
adjoint of convolutions."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import reference_conv

from specforge.ops import convolution, nchwc, taps
from specforge.ops.window import Frame, Window
from specforge.options.activations import ACTIVATIONS

SAME_3X3 = Window((3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
STRIDED = Window((3, 2), (2, 1), (1, 1), ((1, 1), (0, 1)))


@pytest.fixture
def without_nchwc(monkeypatch):
    monkeypatch.setattr(nchwc, "block_size", lambda: 1)


def test_float32_with_channels_the_kernels_take_runs_on_nchwc():
    assert convolution.engine_of(SAME_3X3, 1, 8, 4, np.dtype(np.float32)) == convolution.NCHWC


def test_many_input_channels_at_stride_1_take_the_tap_products():
    channels = taps.MIN_CHANNELS
    assert convolution.engine_of(SAME_3X3, 1, channels, 4, np.dtype(np.float64)) == convolution.TAPS
    assert convolution.engine_of(SAME_3X3, 1, channels - 1, 4, np.dtype(np.float64)) == convolution.IM2COL
    assert convolution.engine_of(STRIDED, 1, channels, 4, np.dtype(np.float64)) == convolution.IM2COL
    assert convolution.engine_of(SAME_3X3, channels, channels, channels, np.dtype(np.float64)) == convolution.IM2COL


def test_without_nchwc_kernels_float32_takes_numpy(without_nchwc):
    assert convolution.engine_of(SAME_3X3, 1, 8, 4, np.dtype(np.float32)) == convolution.IM2COL
    assert convolution.engine_of(SAME_3X3, 1, 40, 4, np.dtype(np.float32)) == convolution.TAPS


# (window, channels, filters or depth multiplier, depthwise, dtype, engine)
CASES = [
    (SAME_3X3, 8, 4, False, np.float32, convolution.NCHWC),
    (STRIDED, 8, 4, False, np.float32, convolution.NCHWC),
    (SAME_3X3, 1, 6, False, np.float32, convolution.NCHWC),  # kernel gradient from tap-major columns
    (STRIDED, convolution.TAP_MAJOR_CHANNELS, 4, False, np.float32, convolution.NCHWC),
    (SAME_3X3, 8, 1, True, np.float32, convolution.NCHWC),
    (SAME_3X3, taps.MIN_CHANNELS, 3, False, np.float64, convolution.TAPS),
    (STRIDED, 3, 2, False, np.float64, convolution.IM2COL),
    (SAME_3X3, 3, 2, True, np.float64, convolution.IM2COL),
    (STRIDED, 8, 1, True, np.float32, convolution.NCHWC),
    (STRIDED, 3, 2, True, np.float64, convolution.IM2COL),
]


def run(window, channels, filters, depthwise, dtype, bias=True, activation=None, need_dx=True, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5, 6, 7, channels)).astype(dtype)
    kernel = (rng.standard_normal((*window.kernel, channels, filters)) / channels).astype(dtype)
    b = rng.standard_normal(channels * filters if depthwise else filters).astype(dtype) if bias else None
    convolve = convolution.depthwise_conv if depthwise else convolution.conv
    y, record = convolve(x, kernel, window, b, activation)
    dy = rng.standard_normal(y.shape).astype(dtype)
    return x, kernel, b, y, record, dy, convolution.conv_gradients(record, dy, need_dx)


@pytest.mark.parametrize("window, channels, filters, depthwise, dtype, engine", CASES, ids=str)
def test_each_engine_matches_the_loop_reference(window, channels, filters, depthwise, dtype, engine):
    x, kernel, b, y, record, *_ = run(window, channels, filters, depthwise, dtype)
    assert record.engine == engine and y.dtype == dtype
    expected = reference_conv(x, kernel, b, window.strides, window.dilation, window.pads, depthwise)
    tolerance = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("window, channels, filters, depthwise, dtype, engine", CASES, ids=str)
def test_gradients_agree_with_the_im2col_engine(window, channels, filters, depthwise, dtype, engine, monkeypatch):
    relu = ACTIVATIONS["relu"]()
    *_, y, _, _, (dx, dkernel, dbias) = run(window, channels, filters, depthwise, dtype, activation=relu)
    monkeypatch.setattr(nchwc, "block_size", lambda: 1)
    monkeypatch.setattr(taps, "MIN_CHANNELS", 10**9)
    *_, im2col_y, im2col_record, _, (im2col_dx, im2col_dkernel, im2col_dbias) = run(
        window, channels, filters, depthwise, dtype, activation=relu
    )
    assert im2col_record.engine == convolution.IM2COL
    tolerance = 1e-4 if dtype == np.float32 else 1e-12
    for got, expected in ((y, im2col_y), (dx, im2col_dx), (dkernel, im2col_dkernel), (dbias, im2col_dbias)):
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("window, channels, filters, depthwise, dtype, engine", CASES, ids=str)
def test_gradients_are_the_adjoint(window, channels, filters, depthwise, dtype, engine):
    x, kernel, _, y, _, dy, (dx, dkernel, dbias) = run(window, channels, filters, depthwise, np.float64, bias=False)
    assert dbias is None and dx.shape == x.shape and dkernel.shape == kernel.shape
    np.testing.assert_allclose(np.vdot(x, dx), np.vdot(y, dy), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(kernel, dkernel), np.vdot(y, dy), rtol=1e-10)


def test_without_an_input_gradient_the_kernel_gradient_is_the_same():
    case = CASES[0][:5]
    *_, (dx, dkernel, dbias) = run(*case, need_dx=False)
    *_, (_, full_dkernel, full_dbias) = run(*case)
    assert dx is None
    np.testing.assert_array_equal(dkernel, full_dkernel)
    np.testing.assert_array_equal(dbias, full_dbias)


def test_the_bias_gradient_sums_the_output_gradient_per_channel():
    *_, dy, (_, _, dbias) = run(STRIDED, 3, 2, False, np.float64)
    np.testing.assert_allclose(dbias, dy.sum(axis=(0, 1, 2)), rtol=1e-12)


def frame_of(window: Window, size: tuple[int, int]) -> Frame:
    """The frame of a valid transposed convolution of a ``size`` input: the whole full image."""
    full = tuple((n - 1) * s + e for n, s, e in zip(size, window.strides, window.effective))
    return Frame(window, full, (0, 0), full)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "window",
    [Window((3, 2), (1, 1), (1, 1), ((0, 0), (0, 0))), Window((3, 3), (2, 2), (1, 1), ((0, 0), (0, 0)))],
    ids=str,
)
def test_conv_transpose_is_the_adjoint_of_conv(window, dtype):
    """<conv_transpose(x), z> = <x, conv(z)> with the same kernel, and its gradients are those of that map."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 5, 8)).astype(dtype)
    kernel = rng.standard_normal((*window.kernel, 4, 8)).astype(dtype)  # (KH, KW, filters, channels in)
    frame = frame_of(window, (4, 5))
    y, record = convolution.conv_transpose(x, kernel, frame)
    assert y.shape == (2, *frame.full, 4) and y.dtype == dtype
    z = rng.standard_normal(y.shape).astype(dtype)
    conv_z, _ = convolution.conv(z, kernel, window)
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(np.vdot(y, z), np.vdot(x, conv_z), rtol=tolerance)
    dx, dkernel, dbias = convolution.conv_transpose_gradients(record, z)
    assert dbias is None
    np.testing.assert_allclose(dx, conv_z, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(np.vdot(kernel, dkernel), np.vdot(y, z), rtol=tolerance)


def test_conv_transpose_adds_bias_and_applies_the_activation():
    window = Window((2, 2), (2, 2), (1, 1), ((0, 0), (0, 0)))
    rng = np.random.default_rng(4)
    x, kernel, bias = rng.standard_normal((2, 3, 3, 2)), rng.standard_normal((2, 2, 3, 2)), rng.standard_normal(3)
    frame = frame_of(window, (3, 3))
    plain, _ = convolution.conv_transpose(x, kernel, frame)
    activated, record = convolution.conv_transpose(x, kernel, frame, bias, ACTIVATIONS["relu"]())
    np.testing.assert_allclose(activated, np.maximum(plain + bias, 0), rtol=1e-12)
    dy = rng.standard_normal(activated.shape)
    _, _, dbias = convolution.conv_transpose_gradients(record, dy, need_dx=False)
    np.testing.assert_allclose(dbias, (dy * (activated > 0)).sum(axis=(0, 1, 2)), rtol=1e-12)
