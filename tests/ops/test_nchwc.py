"""Convolutions on onnxruntime's NCHWc kernels: the forward against the loop reference and the input
gradient against the float64 numpy backward, for the channel counts that take each of the kernels'
input forms (fewer than a block, unblocked; a block or more, blocked with padding to whole blocks),
output counts that are not whole blocks, strides, dilations and uneven padding."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import reference_conv

from specforge.layers.conv import Conv2D, DepthwiseConv2D
from specforge.ops import nchwc

BLOCK = nchwc.block_size()
# (kind, config, input shape)
CASES = [
    (Conv2D, *case)
    for case in [
        ({"filters": 5, "kernel_size": 3}, (7, 6, 1)),
        ({"filters": 4, "kernel_size": [2, 3], "padding": "same"}, (6, 7, 3)),
        ({"filters": BLOCK + 4, "kernel_size": 3, "dilation_rate": [2, 1]}, (8, 6, BLOCK)),
        ({"filters": 2 * BLOCK, "kernel_size": [3, 2], "padding": "same", "use_bias": False}, (5, 6, BLOCK + 4)),
        ({"filters": BLOCK + 4, "kernel_size": 3, "padding": "same"}, (5, 5, 2 * BLOCK)),
        ({"filters": 8, "kernel_size": 3, "strides": 2, "padding": "same"}, (7, 8, 2 * BLOCK)),
        ({"filters": 6, "kernel_size": [4, 3], "strides": [1, 2]}, (9, 7, 12)),
    ]
] + [
    (DepthwiseConv2D, *case)
    for case in [
        ({"kernel_size": 3, "padding": "same"}, (6, 5, 4)),
        ({"kernel_size": [3, 2], "strides": 2, "padding": "same"}, (7, 8, BLOCK + 4)),
        ({"kernel_size": 3, "dilation_rate": 2, "use_bias": False}, (8, 7, 2 * BLOCK)),
    ]
]


def test_the_kernels_run_here():
    """The machines specforge is built on (x86-64 with AVX2 or AVX-512) have NCHWc kernels."""
    assert BLOCK in (8, 16)


@pytest.mark.parametrize("kind, config, input_shape", CASES)
def test_forward_and_input_gradient(kind, config, input_shape):
    rng = np.random.default_rng(0)
    layer = kind.from_options(config)
    depthwise = kind is DepthwiseConv2D
    params = {name: rng.standard_normal(shape) for name, shape in layer.param_shapes(input_shape).items()}
    window = layer.window(input_shape)
    x = rng.standard_normal((3, *input_shape))
    kernel = params["kernel"].astype(np.float32)

    expected = reference_conv(
        x, params["kernel"], params.get("bias"), window.strides, window.dilation, window.pads, depthwise
    )
    y = np.empty(expected.shape, np.float32)
    nchwc.forward(x.astype(np.float32), kernel, params.get("bias"), window, True, y, depthwise=depthwise)
    np.testing.assert_allclose(y, np.maximum(expected, 0), rtol=1e-4, atol=1e-4)

    dz = rng.standard_normal(expected.shape)
    dx = np.empty(x.shape, np.float32)
    nchwc.input_gradient(dz.astype(np.float32), kernel, window, dx, depthwise)
    _, cache = layer.forward(params, x, training=True)
    expected_dx, _ = layer.backward(params, cache, dz)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-4, atol=1e-4)


def test_what_the_kernels_take():
    assert nchwc.supports(1, 3, BLOCK + 4, np.float32)
    assert not nchwc.supports(1, 3, BLOCK + 3, np.float32)  # a block or more: whole multiples of 4
    assert not nchwc.supports(1, BLOCK + 2, 4, np.float32)
    assert nchwc.supports(BLOCK + 4, BLOCK + 4, BLOCK + 4, np.float32)
    assert not nchwc.supports(4, 4, 8, np.float32)  # a depth multiplier of 2
    assert not nchwc.supports(1, 3, 4, np.float64)


def test_a_float32_convolution_takes_the_kernels(monkeypatch):
    calls = []
    forward = nchwc.forward
    monkeypatch.setattr(nchwc, "forward", lambda *args, **options: calls.append(args) or forward(*args, **options))
    layer = Conv2D.from_options({"filters": 4, "kernel_size": 3})
    params = dict(layer.init_params((5, 5, 2), np.random.default_rng(0)).items())
    layer.forward(params, np.ones((2, 5, 5, 2), np.float32))
    layer.forward(params, np.ones((2, 5, 5, 2), np.float64))
    assert len(calls) == 1


def test_without_the_kernels_numpy_computes(monkeypatch):
    """Where onnxruntime has no NCHWc kernels (block size 1) the numpy kernels give the same result."""
    layer = Conv2D.from_options({"filters": 4, "kernel_size": 3, "padding": "same"})
    params = layer.init_params((5, 6, 8), np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 5, 6, 8)).astype(np.float32)
    y, cache = layer.forward(params, x)
    dx, grads = layer.backward(params, cache, np.ones_like(y))
    monkeypatch.setattr(nchwc, "block_size", lambda: 1)
    assert not nchwc.supports(1, 8, 4, np.float32)
    numpy_y, numpy_cache = layer.forward(params, x)
    numpy_dx, numpy_grads = layer.backward(params, numpy_cache, np.ones_like(y))
    np.testing.assert_allclose(y, numpy_y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, numpy_dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads["kernel"], numpy_grads["kernel"], rtol=1e-4, atol=1e-4)


def test_a_process_whose_first_convolution_is_an_input_gradient_does_not_hang():
    """Making a session asks for the block size, which makes the probe's session on first use (a model
    that starts with Conv2DTranspose does that in its first forward)."""
    code = (
        "import numpy as np; from specforge.ops import nchwc; from specforge.ops.window import Window; "
        "out = np.empty((1, 5, 5, 2), np.float32); "
        "nchwc.input_gradient(np.ones((1, 3, 3, 4), np.float32), np.ones((3, 3, 2, 4), np.float32), "
        "Window((3, 3), (1, 1), (1, 1), ((0, 0), (0, 0))), out); print(out.sum())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) == 9 * 9 * 4 * 2  # 9 gradient pixels, each through 9 taps, 4 channels to 2
