"""Flatten and Reshape: element order, shape inference and its error messages."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_onnx_parity, make_layer
from jsonschema import Draft7Validator

from specforge.base.errors import ShapeError
from specforge.layers import REGISTRY

Flatten, Reshape = REGISTRY["Flatten"], REGISTRY["Reshape"]


def test_flatten_is_channels_fastest():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    y, _ = Flatten.from_options().forward({}, x)
    for h, w, c in [(0, 0, 1), (1, 2, 3), (2, 3, 4)]:
        assert y[1, (h * 4 + w) * 5 + c] == x[1, h, w, c]


def test_flatten_shape_and_backward():
    layer = Flatten.from_options()
    assert layer.output_shape((26, 26, 64)) == (43264,)
    x = np.zeros((2, 3, 4, 5))
    y, cache = layer.forward({}, x)
    dx, grads = layer.backward({}, cache, np.arange(y.size, dtype=float).reshape(y.shape))
    assert dx.shape == x.shape and grads == {}
    np.testing.assert_array_equal(dx.ravel(), np.arange(y.size))


def test_flatten_avoids_a_copy():
    x = np.zeros((2, 3, 4, 5))
    y, _ = Flatten.from_options().forward({}, x)
    assert np.shares_memory(x, y)


@pytest.mark.parametrize(
    "target,input_shape,expected",
    [
        ([4, 6], (2, 3, 4), (4, 6)),
        ([-1, 8], (2, 3, 4), (3, 8)),
        ([2, -1, 2], (12,), (2, 3, 2)),
        ([-1], (2, 3, 4), (24,)),
    ],
)
def test_reshape_shapes(target, input_shape, expected):
    assert Reshape.from_options({"target_shape": target}).output_shape(input_shape) == expected


def test_reshape_keeps_element_order():
    x = np.arange(24.0).reshape(1, 2, 3, 4)
    y, _ = Reshape.from_options({"target_shape": [6, 4]}).forward({}, x)
    np.testing.assert_array_equal(y.ravel(), np.arange(24.0))
    assert y.shape == (1, 6, 4)


def test_reshape_count_mismatch_message():
    with pytest.raises(
        ShapeError,
        match=r"^<input>: error: Reshape cannot turn \(26, 26, 64\) = 43264 values into "
        r"\(100, 10\) = 1000 values; the target_shape must multiply to 43264$",
    ):
        Reshape.from_options({"target_shape": [100, 10]}).output_shape((26, 26, 64))


def test_reshape_inferred_dimension_must_divide():
    with pytest.raises(ShapeError, match=r"\(2, 3, 4\) = 24 values into \(-1, 5\): 24 is not a multiple of 5"):
        Reshape.from_options({"target_shape": [-1, 5]}).output_shape((2, 3, 4))


def test_reshape_allows_one_inferred_dimension():
    with pytest.raises(ShapeError, match="has 2 entries of -1"):
        Reshape.from_options({"target_shape": [-1, -1]}).output_shape((2, 3, 4))


@pytest.mark.parametrize("target", [[0, 4], [-2, 3], [], [2.5]])
def test_reshape_schema_rejects(target):
    assert not Draft7Validator(Reshape.json_schema()).is_valid({"type": "Reshape", "target_shape": target})


def test_reshape_of_a_convolution_output_in_onnx():
    """The NCHW tensor ONNX Conv produces must be reshaped in the spec's NHWC element order."""
    conv, conv_params = make_layer("Conv2D", {"filters": 4, "kernel_size": 2}, (4, 3, 2), dtype=np.float32)
    reshape = Reshape.from_options({"target_shape": [3, -1]})
    x = np.random.default_rng(1).standard_normal((2, 4, 3, 2)).astype(np.float32)
    check_onnx_parity([(conv, conv_params), (reshape, {})], (4, 3, 2), x)
