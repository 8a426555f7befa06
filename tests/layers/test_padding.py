"""ZeroPadding2D and Cropping2D: the three spellings of the sizes, values, gradient, and the nodes in either layout."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import onnx_of

from specforge.base.errors import ShapeError
from specforge.layers.conv import Conv2D
from specforge.layers.padding import Cropping2D, ZeroPadding2D


@pytest.mark.parametrize(
    "padding, input_shape, expected",
    [
        (1, (4, 5, 2), (6, 7, 2)),
        (0, (4, 5, 2), (4, 5, 2)),
        ([1, 2], (3, 4, 1), (5, 8, 1)),
        ([[0, 2], [1, 3]], (3, 2, 2), (5, 6, 2)),
    ],
)
def test_output_shape(padding, input_shape, expected):
    assert ZeroPadding2D.from_options({"padding": padding}).output_shape(input_shape) == expected


def test_default_padding_is_one_pixel():
    assert ZeroPadding2D.from_options({}).output_shape((2, 2, 1)) == (4, 4, 1)


def test_forward_places_the_image_and_backward_crops():
    layer = ZeroPadding2D.from_options({"padding": [[0, 2], [1, 0]]})
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    y, cache = layer.forward({}, x, training=True)
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 1, 2], [0, 3, 4], [0, 0, 0], [0, 0, 0]])
    dy = np.arange(12.0).reshape(1, 4, 3, 1)
    dx, grads = layer.backward({}, cache, dy)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 2], [4, 5]])
    assert grads == {} and layer.backward({}, cache, dy, need_dx=False)[0] is None


def test_rank_error():
    with pytest.raises(ShapeError) as error:
        ZeroPadding2D.from_options({}).output_shape((16,))
    assert error.value.problems[0].message == (
        "ZeroPadding2D expects an image input (height, width, channels), got shape (16,); "
        "add a Reshape layer with target_shape [4, 4, 1] before it"
    )


@pytest.mark.parametrize("after_conv", [False, True])
def test_onnx_pad_follows_the_input_layout(after_conv):
    """The Pad node works in the input's current layout: after a Conv (NCHW) it adds no Transpose."""
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(0)
    steps = [(ZeroPadding2D.from_options({"padding": [[0, 2], [1, 3]]}), {})]
    if after_conv:
        conv = Conv2D.from_options({"filters": 2, "kernel_size": 1})
        steps.insert(0, (conv, conv.init_params((3, 2, 2), rng)))
    model = onnx_of(steps, (3, 2, 2))
    x = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    expected = x
    for layer, params in steps:
        expected = layer.forward(params, expected)[0]
    assert [node.op_type for node in model.graph.node].count("Transpose") == (2 if after_conv else 0)
    (result,) = ReferenceEvaluator(model).run(None, {"input": x})
    np.testing.assert_allclose(result, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "cropping, input_shape, expected, window",
    [
        (0, (3, 2, 2), (3, 2, 2), (slice(0, 3), slice(0, 2))),
        (1, (4, 5, 2), (2, 3, 2), (slice(1, 3), slice(1, 4))),
        ([1, 2], (4, 6, 1), (2, 2, 1), (slice(1, 3), slice(2, 4))),
        ([[0, 2], [1, 3]], (5, 6, 2), (3, 2, 2), (slice(0, 3), slice(1, 3))),
    ],
)
def test_cropping_keeps_the_inner_window(cropping, input_shape, expected, window):
    layer = Cropping2D.from_options({"cropping": cropping})
    assert layer.output_shape(input_shape) == expected
    x = np.random.default_rng(0).standard_normal((2, *input_shape))
    y, cache = layer.forward({}, x)
    np.testing.assert_array_equal(y, x[:, window[0], window[1]])
    dx, _ = layer.backward({}, cache, np.ones_like(y))
    inside = np.zeros(input_shape[:2])
    inside[window] = 1
    np.testing.assert_array_equal(dx, np.broadcast_to(inside[None, :, :, None], x.shape))


def test_cropping_everything_is_a_shape_error():
    with pytest.raises(ShapeError) as error:
        Cropping2D.from_options({"cropping": [[1, 1], [3, 2]]}).output_shape((4, 5, 1))
    assert error.value.problems[0].message == (
        "Cropping2D removes 3 + 2 = 5 of the 5 columns of its input, leaving none; crop fewer than 5 columns in all"
    )
