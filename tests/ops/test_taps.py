"""Convolution by tap products: the forward against the loop reference, the backward against the im2col
backward and the adjoint identity, for paddings, dilations and strides the generic examples do not reach
(the tap forward only runs from taps.MIN_CHANNELS input channels)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_params, reference_conv

from specforge.layers.conv import Conv2D
from specforge.ops import taps

CHANNELS = taps.MIN_CHANNELS
# (config, input shape): valid, same with uneven padding, dilation, dilation with same, strides
CASES = [
    ({"filters": 3, "kernel_size": [3, 2]}, (5, 6, CHANNELS)),
    ({"filters": 2, "kernel_size": [4, 3], "padding": "same"}, (5, 4, CHANNELS)),
    ({"filters": 2, "kernel_size": 3, "dilation_rate": [2, 1]}, (7, 5, CHANNELS)),
    ({"filters": 4, "kernel_size": [2, 3], "dilation_rate": 2, "padding": "same", "use_bias": False}, (6, 5, CHANNELS)),
    ({"filters": 2, "kernel_size": [3, 2], "strides": [2, 3], "padding": "same"}, (7, 8, CHANNELS)),
]


def forward_backward(config, input_shape, seed=0):
    rng = np.random.default_rng(seed)
    layer = Conv2D.from_options(config)
    params = random_params(layer, input_shape, rng)
    x = rng.standard_normal((3, *input_shape))
    y, cache = layer.forward(params, x, training=True)
    dy = rng.standard_normal(y.shape)
    dx, grads = layer.backward(params, cache, dy)
    return layer, params, x, y, dy, dx, grads


@pytest.mark.parametrize("config, input_shape", CASES)
def test_forward_matches_loop_reference(config, input_shape):
    layer, params, x, y, *_ = forward_backward(config, input_shape)
    window = layer.window(input_shape)
    reference = reference_conv(x, params["kernel"], params.get("bias"), window.strides, window.dilation, window.pads)
    np.testing.assert_allclose(y, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("config, input_shape", CASES)
def test_backward_matches_im2col(config, input_shape, monkeypatch):
    *_, dx, grads = forward_backward(config, input_shape)
    monkeypatch.setattr(taps, "MIN_CHANNELS", 10**9)
    *_, dx_im2col, grads_im2col = forward_backward(config, input_shape)
    np.testing.assert_allclose(dx, dx_im2col, rtol=1e-12, atol=1e-12)
    for name in grads:
        np.testing.assert_allclose(grads[name], grads_im2col[name], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("config, input_shape", CASES[:2])
def test_blocks_of_rows_give_the_same_result(config, input_shape, monkeypatch):
    whole = forward_backward(config, input_shape)[3:]
    monkeypatch.setattr(taps, "BLOCK_ROWS", 7)
    monkeypatch.setattr(taps, "KERNEL_GRADIENT_ROWS", 5)
    blocked = forward_backward(config, input_shape)[3:]
    for expected, actual in zip(whole[:3], blocked[:3]):
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)
    for name in whole[3]:
        np.testing.assert_allclose(blocked[3][name], whole[3][name], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("config, input_shape", [(dict(c, use_bias=False), s) for c, s in CASES])
def test_backward_is_the_adjoint(config, input_shape):
    """Linear in x and in the kernel: <y, dy> = <x, dx> = <kernel, dkernel>."""
    _, params, x, y, dy, dx, grads = forward_backward(config, input_shape, seed=1)
    np.testing.assert_allclose(np.vdot(x, dx), np.vdot(y, dy), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(params["kernel"], grads["kernel"]), np.vdot(y, dy), rtol=1e-10)


def test_gradient_grid_keeps_zeros_between_calls():
    """The gradient grid is reused from call to call; a later gradient must not see an earlier one's values."""
    config, input_shape = CASES[1]
    forward_backward(config, input_shape, seed=2)
    layer, params, x, y, dy, _, grads = forward_backward(config, input_shape, seed=3)
    window = layer.window(input_shape)
    xp = np.pad(x, ((0, 0), *window.pads, (0, 0)))
    out_h, out_w = y.shape[1:3]
    expected = np.zeros_like(params["kernel"])
    for a, b in np.ndindex(*window.kernel):
        expected[a, b] = np.einsum("nijc,nijo->co", xp[:, a : a + out_h, b : b + out_w], dy)
    np.testing.assert_allclose(grads["kernel"], expected, rtol=1e-12, atol=1e-12)


def test_float32_stays_float32():
    config, input_shape = CASES[1]
    rng = np.random.default_rng(4)
    layer = Conv2D.from_options(config)
    params = {k: v.astype(np.float32) for k, v in random_params(layer, input_shape, rng).items()}
    x = rng.standard_normal((2, *input_shape)).astype(np.float32)
    y, cache = layer.forward(params, x, training=True)
    dx, grads = layer.backward(params, cache, np.ones_like(y))
    assert {y.dtype, dx.dtype, *(g.dtype for g in grads.values())} == {np.dtype(np.float32)}


def test_a_registry_example_takes_the_tap_products():
    """So that the generic layer tests (gradients, fusion, export) run the tap path too."""
    tapped = [
        config
        for config, shape in Conv2D.examples
        if taps.takes_forward(Conv2D.from_options(config).window(shape), 1, shape[-1])
    ]
    assert tapped
