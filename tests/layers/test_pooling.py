"""Pooling kinds: hand-worked shapes and values, exact errors, forward against a loop reference."""

from __future__ import annotations

import numpy as np
import pytest

from specforge.base.errors import ShapeError
from specforge.layers.pooling import (
    AveragePooling2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
)


def reference_pool(x, pool, strides, pads, reduce):
    """Each output pixel from the list of real (non-padded) input pixels its window covers."""
    n, height, width, channels = x.shape
    out_h = (height + sum(pads[0]) - pool[0]) // strides[0] + 1
    out_w = (width + sum(pads[1]) - pool[1]) // strides[1] + 1
    y = np.zeros((n, out_h, out_w, channels))
    for i in range(out_h):
        for j in range(out_w):
            top, left = i * strides[0] - pads[0][0], j * strides[1] - pads[1][0]
            rows = range(max(top, 0), min(top + pool[0], height))
            cols = range(max(left, 0), min(left + pool[1], width))
            pixels = np.stack([x[:, r, c] for r in rows for c in cols])
            y[:, i, j] = reduce(pixels, axis=0)
    return y


# (config, input shape, expected output shape, expected ((top, bottom), (left, right)) padding), worked by hand.
POOL_CASES = [
    # pool 2, strides default 2: floor((7 - 2) / 2) + 1 = 3 ; floor((6 - 2) / 2) + 1 = 3
    ({}, (7, 6, 3), (3, 3, 3), ((0, 0), (0, 0))),
    # same, stride (2, 1): ceil(7/2) = 4: 3*2 + 3 - 7 = 2 -> (1, 1); width 6: pad 2 - 1 = 1 -> (0, 1)
    ({"pool_size": [3, 2], "strides": [2, 1], "padding": "same"}, (7, 6, 2), (4, 6, 2), ((1, 1), (0, 1))),
    # pool 3 stride 2 same: ceil(6/2) = 3: 2*2 + 3 - 6 = 1 -> (0, 1); ceil(5/2) = 3: 2*2 + 3 - 5 = 2 -> (1, 1)
    ({"pool_size": 3, "strides": 2, "padding": "same"}, (6, 5, 2), (3, 3, 2), ((0, 1), (1, 1))),
    # overlapping windows, stride 1: 5 - 2 + 1 = 4 ; 6 - 3 + 1 = 4
    ({"pool_size": [2, 3], "strides": 1}, (5, 6, 1), (4, 4, 1), ((0, 0), (0, 0))),
    # strides null means pool_size (3, 2): floor((7 - 3) / 3) + 1 = 2 ; floor((5 - 2) / 2) + 1 = 2
    ({"pool_size": [3, 2], "strides": None}, (7, 5, 1), (2, 2, 1), ((0, 0), (0, 0))),
    # same with the default stride 2 on odd sizes: ceil(5/2) = 3: 2*2 + 2 - 5 = 1 -> (0, 1)
    ({"padding": "same"}, (5, 3, 2), (3, 2, 2), ((0, 1), (0, 1))),
]


@pytest.mark.parametrize("kind", [MaxPooling2D, AveragePooling2D])
@pytest.mark.parametrize("config, input_shape, expected, pads", POOL_CASES)
def test_pool_shape_and_padding(kind, config, input_shape, expected, pads):
    layer = kind.from_options(config)
    assert layer.output_shape(input_shape) == expected
    assert layer.window(input_shape).pads == pads


@pytest.mark.parametrize("kind, reduce", [(MaxPooling2D, np.max), (AveragePooling2D, np.mean)])
def test_forward_matches_loop_reference(kind, reduce):
    rng = np.random.default_rng(0)
    for config, input_shape, expected, pads in POOL_CASES:
        layer = kind.from_options(config)
        window = layer.window(input_shape)
        x = rng.standard_normal((2, *input_shape))
        y, _ = layer.forward({}, x)
        assert y.shape == (2, *expected)
        np.testing.assert_allclose(y, reference_pool(x, window.kernel, window.strides, pads, reduce), rtol=1e-12)


def test_average_same_padding_divides_by_real_pixels():
    x = np.arange(9.0).reshape(1, 3, 3, 1)  # [[0 1 2] [3 4 5] [6 7 8]], padded after with one row and column
    y, _ = AveragePooling2D.from_options({"padding": "same"}).forward({}, x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[2.0, 3.5], [6.5, 8.0]])


def test_average_backward_shares_by_real_pixels():
    layer = AveragePooling2D.from_options({"padding": "same"})
    _, cache = layer.forward({}, np.zeros((1, 3, 3, 1)), training=True)
    dx, grads = layer.backward({}, cache, np.ones((1, 2, 2, 1)))
    assert grads == {}
    np.testing.assert_allclose(dx[0, :, :, 0], [[1 / 4, 1 / 4, 1 / 2], [1 / 4, 1 / 4, 1 / 2], [1 / 2, 1 / 2, 1]])


@pytest.mark.parametrize(
    "config, input_shape",
    [
        ({"pool_size": [3, 2], "strides": [2, 1], "padding": "same"}, (7, 6, 2)),
        ({"pool_size": [2, 3], "strides": 1}, (5, 6, 1)),
    ],
)
def test_average_backward_is_the_adjoint(config, input_shape):
    rng = np.random.default_rng(1)
    layer = AveragePooling2D.from_options(config)
    x = rng.standard_normal((2, *input_shape))
    y, cache = layer.forward({}, x, training=True)
    dy = rng.standard_normal(y.shape)
    dx, _ = layer.backward({}, cache, dy)
    np.testing.assert_allclose(np.vdot(x, dx), np.vdot(y, dy), rtol=1e-10)


def test_max_backward_routes_to_the_maximum():
    x = np.array([[1.0, 5.0, 2.0], [3.0, 0.0, 4.0], [9.0, 8.0, 7.0]]).reshape(1, 3, 3, 1)
    layer = MaxPooling2D.from_options({"strides": 1})
    y, cache = layer.forward({}, x, training=True)
    np.testing.assert_array_equal(y[0, :, :, 0], [[5, 5], [9, 8]])
    dx, _ = layer.backward({}, cache, np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 3, 0], [0, 0, 0], [3, 4, 0]])


def test_max_ties_send_the_gradient_to_the_first_element():
    layer = MaxPooling2D.from_options({"pool_size": [2, 3]})
    _, cache = layer.forward({}, np.zeros((1, 2, 3, 1)), training=True)
    dx, _ = layer.backward({}, cache, np.full((1, 1, 1, 1), 7.0))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[7, 0, 0], [0, 0, 0]])


def test_max_same_padding_ignores_the_padding():
    y, _ = MaxPooling2D.from_options({"padding": "same"}).forward({}, -np.ones((1, 3, 3, 1)))
    np.testing.assert_array_equal(y, -np.ones((1, 2, 2, 1)))


def test_need_dx_false_skips_the_gradient():
    layer = MaxPooling2D.from_options({})
    _, cache = layer.forward({}, np.ones((1, 4, 4, 1)), training=True)
    assert layer.backward({}, cache, np.ones((1, 2, 2, 1)), need_dx=False) == (None, {})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", [MaxPooling2D, AveragePooling2D, GlobalMaxPooling2D, GlobalAveragePooling2D])
def test_dtype_is_preserved(kind, dtype):
    layer = kind.from_options({"padding": "same"} if kind in (MaxPooling2D, AveragePooling2D) else {})
    x = np.random.default_rng(2).standard_normal((2, 5, 3, 2)).astype(dtype)
    y, cache = layer.forward({}, x, training=True)
    dx, _ = layer.backward({}, cache, np.ones_like(y))
    assert y.dtype == dx.dtype == dtype and dx.shape == x.shape


@pytest.mark.parametrize("kind", [GlobalMaxPooling2D, GlobalAveragePooling2D])
@pytest.mark.parametrize("keepdims, expected", [(False, (3,)), (True, (1, 1, 3))])
def test_global_shapes(kind, keepdims, expected):
    assert kind.from_options({"keepdims": keepdims}).output_shape((5, 4, 3)) == expected


def test_global_values_and_gradients():
    x = np.arange(12.0).reshape(1, 2, 3, 2)  # channel 0: 0 2 4 / 6 8 10 ; channel 1: 1 3 5 / 7 9 11
    mean, cache = GlobalAveragePooling2D.from_options({}).forward({}, x, training=True)
    np.testing.assert_array_equal(mean, [[5.0, 6.0]])
    dx, _ = GlobalAveragePooling2D.from_options({}).backward({}, cache, np.array([[6.0, 12.0]]))
    np.testing.assert_array_equal(dx[..., 0], np.ones((1, 2, 3)))
    np.testing.assert_array_equal(dx[..., 1], np.full((1, 2, 3), 2.0))
    layer = GlobalMaxPooling2D.from_options({"keepdims": True})
    peak, cache = layer.forward({}, x, training=True)
    np.testing.assert_array_equal(peak, [[[[10.0, 11.0]]]])
    dx, _ = layer.backward({}, cache, np.array([[[[1.0, 2.0]]]]))
    expected = np.zeros_like(x)
    expected[0, 1, 2] = [1.0, 2.0]
    np.testing.assert_array_equal(dx, expected)


def test_global_max_ties_send_the_gradient_to_the_first_pixel():
    layer = GlobalMaxPooling2D.from_options({})
    _, cache = layer.forward({}, np.ones((1, 2, 2, 1)), training=True)
    dx, _ = layer.backward({}, cache, np.array([[5.0]]))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[5, 0], [0, 0]])


@pytest.mark.parametrize(
    "kind, config, input_shape, message",
    [
        (
            MaxPooling2D,
            {"pool_size": 3},
            (2, 5, 1),
            (
                "MaxPooling2D output height floor((2 - 3 + 2*0) / 3) + 1 = 0 is not positive; use padding: same or "
                "pool_size <= 2"
            ),
        ),
        (
            AveragePooling2D,
            {"pool_size": [2, 5], "strides": 1},
            (4, 3, 2),
            (
                "AveragePooling2D output width ((3 - 5 + 2*0) / 1) + 1 = -1 is not positive; "
                "use padding: same or pool_size <= 3"
            ),
        ),
        (
            MaxPooling2D,
            {},
            (784,),
            (
                "MaxPooling2D expects an image input (height, width, channels), got shape (784,); "
                "add a Reshape layer with target_shape [28, 28, 1] before it"
            ),
        ),
        (
            GlobalAveragePooling2D,
            {},
            (4, 4, 4, 2),
            (
                "GlobalAveragePooling2D expects an image input (height, width, channels), got shape (4, 4, 4, 2); "
                "it needs 3 axes, add a Reshape layer before it"
            ),
        ),
    ],
)
def test_shape_errors(kind, config, input_shape, message):
    with pytest.raises(ShapeError) as error:
        kind.from_options(config).output_shape(input_shape)
    assert error.value.problems[0].message == message


def test_pooling_has_no_params_or_flops():
    for layer in (
        MaxPooling2D.from_options({}),
        AveragePooling2D.from_options({}),
        GlobalAveragePooling2D.from_options({}),
    ):
        assert layer.count_params((4, 4, 3)) == 0 and layer.flops((4, 4, 3)) == 0
        assert layer.init_params((4, 4, 3), np.random.default_rng()) == {}


def test_max_backward_after_an_inference_forward_routes_as_after_a_training_one():
    """Only a training forward records where each maximum is; after an inference forward the backward finds it."""
    rng = np.random.default_rng(2)
    x = np.maximum(rng.standard_normal((2, 5, 6, 3)), 0)  # ties at 0, which go to the first element
    layer = MaxPooling2D.from_options({"pool_size": 3, "strides": 2, "padding": "same"})
    y, training_cache = layer.forward({}, x, training=True)
    _, inference_cache = layer.forward({}, x, training=False)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(layer.backward({}, inference_cache, dy)[0], layer.backward({}, training_cache, dy)[0])
