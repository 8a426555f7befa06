"""ZeroPadding2D: the three spellings of padding, values, gradient, and the Pad node in either layout."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import onnx_of
from specforge.errors import ShapeError
from specforge.layers.conv import Conv2D
from specforge.layers.padding import ZeroPadding2D


@pytest.mark.parametrize("padding, input_shape, expected", [
    (1, (4, 5, 2), (6, 7, 2)),
    (0, (4, 5, 2), (4, 5, 2)),
    ([1, 2], (3, 4, 1), (5, 8, 1)),
    ([[0, 2], [1, 3]], (3, 2, 2), (5, 6, 2)),
])
def test_output_shape(padding, input_shape, expected):
    assert ZeroPadding2D({"padding": padding}).output_shape(input_shape) == expected


def test_default_padding_is_one_pixel():
    assert ZeroPadding2D({}).output_shape((2, 2, 1)) == (4, 4, 1)


def test_forward_places_the_image_and_backward_crops():
    layer = ZeroPadding2D({"padding": [[0, 2], [1, 0]]})
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    y, cache = layer.forward({}, x, training=True)
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 1, 2], [0, 3, 4], [0, 0, 0], [0, 0, 0]])
    dy = np.arange(12.0).reshape(1, 4, 3, 1)
    dx, grads = layer.backward({}, cache, dy)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 2], [4, 5]])
    assert grads == {} and layer.backward({}, cache, dy, need_dx=False)[0] is None


def test_rank_error():
    with pytest.raises(ShapeError) as error:
        ZeroPadding2D({}).output_shape((16,))
    assert error.value.problems[0].message == (
        "ZeroPadding2D expects an image input (height, width, channels), got shape (16,); "
        "add a Reshape layer with target_shape [4, 4, 1] before it")


@pytest.mark.parametrize("after_conv", [False, True])
def test_onnx_pad_follows_the_input_layout(after_conv):
    """The Pad node works in the input's current layout: after a Conv (NCHW) it adds no Transpose."""
    from onnx.reference import ReferenceEvaluator


    rng = np.random.default_rng(0)
    steps = [(ZeroPadding2D({"padding": [[0, 2], [1, 3]]}), {})]
    if after_conv:
        conv = Conv2D({"filters": 2, "kernel_size": 1})
        steps.insert(0, (conv, conv.init_params((3, 2, 2), rng)))
    model = onnx_of(steps, (3, 2, 2))
    x = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    expected = x
    for layer, params in steps:
        expected = layer.forward(params, expected)[0]
    assert [node.op_type for node in model.graph.node].count("Transpose") == (2 if after_conv else 0)
    (result,) = ReferenceEvaluator(model).run(None, {"input": x})
    np.testing.assert_allclose(result, expected, rtol=1e-6)
