"""Conv2D and DepthwiseConv2D: hand-worked shapes, exact errors, forward against a loop reference."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_params, reference_conv

from specforge.base.errors import ShapeError, SpecError
from specforge.layers.conv import Conv2D, DepthwiseConv2D

# (config, input shape, expected output shape, expected ((top, bottom), (left, right)) padding), worked by hand.
CONV_CASES = [
    ({"filters": 64, "kernel_size": 3}, (28, 28, 1), (26, 26, 64), ((0, 0), (0, 0))),
    ({"filters": 2, "kernel_size": [3, 2]}, (7, 6, 3), (5, 5, 2), ((0, 0), (0, 0))),
    # floor((7 - 3) / 2) + 1 = 3 ; floor((6 - 3) / 2) + 1 = 2
    ({"filters": 2, "kernel_size": 3, "strides": 2}, (7, 6, 1), (3, 2, 2), ((0, 0), (0, 0))),
    # ceil(7 / 2) = 4: pad 3*2 + 3 - 7 = 2 -> (1, 1); ceil(6 / 2) = 3: pad 2*2 + 3 - 6 = 1 -> (0, 1)
    ({"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"}, (7, 6, 2), (4, 3, 3), ((1, 1), (0, 1))),
    # kernel 4 stride 1 same on 5: pad 3 -> (1, 2); kernel 1: no pad
    ({"filters": 1, "kernel_size": [4, 1], "padding": "same"}, (5, 4, 2), (5, 4, 1), ((1, 2), (0, 0))),
    # dilation 2: K_eff = 2*(3-1)+1 = 5 -> 7 - 5 + 1 = 3 ; dilation 1 on width: 6 - 3 + 1 = 4
    ({"filters": 2, "kernel_size": 3, "dilation_rate": [2, 1]}, (7, 6, 1), (3, 4, 2), ((0, 0), (0, 0))),
    # same with dilation 2: K_eff 5 -> pad 4 -> (2, 2); kernel 2 dilated: K_eff 3 -> pad 2 -> (1, 1)
    (
        {"filters": 2, "kernel_size": [3, 2], "dilation_rate": 2, "padding": "same"},
        (6, 5, 2),
        (6, 5, 2),
        ((2, 2), (1, 1)),
    ),
    # stride 3 leaves rows unused: floor((7 - 2) / 3) + 1 = 2 ; floor((6 - 2) / 3) + 1 = 2
    ({"filters": 2, "kernel_size": 2, "strides": 3}, (7, 6, 1), (2, 2, 2), ((0, 0), (0, 0))),
    # stride (1, 3) same with kernel (2, 4) on 5x7: pad 1 -> (0, 1); ceil(7/3) = 3: 2*3 + 4 - 7 = 3 -> (1, 2)
    (
        {"filters": 2, "kernel_size": [2, 4], "strides": [1, 3], "padding": "same"},
        (5, 7, 2),
        (5, 3, 2),
        ((0, 1), (1, 2)),
    ),
]

DEPTHWISE_CASES = [
    ({"kernel_size": 3, "depth_multiplier": 2}, (5, 5, 3), (3, 3, 6), ((0, 0), (0, 0))),
    ({"kernel_size": [3, 2], "strides": 2, "padding": "same"}, (7, 6, 2), (4, 3, 2), ((1, 1), (0, 0))),
    (
        {"kernel_size": [2, 3], "dilation_rate": 2, "padding": "same", "depth_multiplier": 3},
        (6, 7, 2),
        (6, 7, 6),
        ((1, 1), (2, 2)),
    ),
    ({"kernel_size": 2, "strides": [2, 3]}, (5, 7, 2), (2, 2, 2), ((0, 0), (0, 0))),
]


@pytest.mark.parametrize("config, input_shape, expected, pads", CONV_CASES)
def test_conv_shape_and_padding(config, input_shape, expected, pads):
    layer = Conv2D.from_options(config)
    assert layer.output_shape(input_shape) == expected
    assert layer.window(input_shape).pads == pads


@pytest.mark.parametrize("config, input_shape, expected, pads", DEPTHWISE_CASES)
def test_depthwise_shape_and_padding(config, input_shape, expected, pads):
    layer = DepthwiseConv2D.from_options(config)
    assert layer.output_shape(input_shape) == expected
    assert layer.window(input_shape).pads == pads


@pytest.mark.parametrize("kind, cases", [(Conv2D, CONV_CASES[1:]), (DepthwiseConv2D, DEPTHWISE_CASES)])
def test_forward_matches_loop_reference(kind, cases):
    rng = np.random.default_rng(0)
    for config, input_shape, expected, pads in cases:
        layer = kind.from_options(config)
        params = random_params(layer, input_shape, rng)
        x = rng.standard_normal((2, *input_shape))
        y, _ = layer.forward(params, x)
        strides = layer.window(input_shape).strides
        dilation = np.broadcast_to(config.get("dilation_rate", 1), 2)
        reference = reference_conv(
            x, params["kernel"], params.get("bias"), strides, dilation, pads, depthwise=kind is DepthwiseConv2D
        )
        assert y.shape == (2, *expected)
        np.testing.assert_allclose(y, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kind, config, input_shape",
    [
        (Conv2D, {"filters": 3, "kernel_size": [3, 2], "strides": 2, "padding": "same", "use_bias": False}, (7, 6, 2)),
        (Conv2D, {"filters": 2, "kernel_size": 3, "dilation_rate": [1, 2], "use_bias": False}, (5, 7, 3)),
        (
            DepthwiseConv2D,
            {"kernel_size": [2, 3], "strides": [3, 1], "depth_multiplier": 2, "use_bias": False},
            (7, 5, 2),
        ),
    ],
)
def test_backward_is_the_adjoint(kind, config, input_shape):
    """Without bias the layer is linear in x and in the kernel: <y, dy> = <x, dx> = <kernel, dkernel>."""
    rng = np.random.default_rng(1)
    layer = kind.from_options(config)
    params = random_params(layer, input_shape, rng)
    x = rng.standard_normal((3, *input_shape))
    y, cache = layer.forward(params, x, training=True)
    dy = rng.standard_normal(y.shape)
    dx, grads = layer.backward(params, cache, dy)
    assert dx.shape == x.shape and grads["kernel"].shape == params["kernel"].shape
    np.testing.assert_allclose(np.vdot(x, dx), np.vdot(y, dy), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(params["kernel"], grads["kernel"]), np.vdot(y, dy), rtol=1e-10)


def test_bias_gradient_and_need_dx():
    rng = np.random.default_rng(2)
    layer = Conv2D.from_options({"filters": 3, "kernel_size": 2})
    params = random_params(layer, (4, 5, 2), rng)
    x = rng.standard_normal((2, 4, 5, 2))
    _, cache = layer.forward(params, x, training=True)
    dy = rng.standard_normal((2, 3, 4, 3))
    dx, grads = layer.backward(params, cache, dy)
    no_dx, same_grads = layer.backward(params, cache, dy, need_dx=False)
    assert dx is not None and no_dx is None
    np.testing.assert_allclose(grads["bias"], dy.sum(axis=(0, 1, 2)))
    for key in grads:
        np.testing.assert_array_equal(grads[key], same_grads[key])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    rng = np.random.default_rng(3)
    for layer in (
        Conv2D.from_options({"filters": 2, "kernel_size": 2, "strides": 2}),
        DepthwiseConv2D.from_options({"kernel_size": 2}),
    ):
        params = {k: v.astype(dtype) for k, v in random_params(layer, (4, 4, 2), rng).items()}
        y, cache = layer.forward(params, rng.standard_normal((1, 4, 4, 2)).astype(dtype), training=True)
        dx, grads = layer.backward(params, cache, np.ones_like(y))
        assert {y.dtype, dx.dtype, *(g.dtype for g in grads.values())} == {np.dtype(dtype)}


def test_depthwise_output_channels_are_channel_major():
    """Input channel c with multiplier m lands on output channel c * M + m (Keras' order)."""
    layer = DepthwiseConv2D.from_options({"kernel_size": 1, "depth_multiplier": 3, "use_bias": False})
    kernel = np.arange(1.0, 7.0).reshape(1, 1, 2, 3)  # channel 0: 1, 2, 3; channel 1: 4, 5, 6
    x = np.array([10.0, 100.0]).reshape(1, 1, 1, 2)
    y, _ = layer.forward({"kernel": kernel}, x)
    np.testing.assert_array_equal(y.ravel(), [10, 20, 30, 400, 500, 600])


def test_seed_param_counts_and_flops():
    first, second = (
        Conv2D.from_options({"filters": 64, "kernel_size": 3}),
        Conv2D.from_options({"filters": 32, "kernel_size": 3}),
    )
    assert first.count_params((28, 28, 1)) == 640
    assert second.count_params((26, 26, 64)) == 18_464
    assert first.flops((28, 28, 1)) == 778_752
    assert second.flops((26, 26, 64)) == 21_233_664


def test_param_shapes():
    assert Conv2D.from_options({"filters": 5, "kernel_size": [3, 2], "use_bias": False}).param_shapes((8, 8, 4)) == {
        "kernel": (3, 2, 4, 5)
    }
    depthwise = DepthwiseConv2D.from_options({"kernel_size": 3, "depth_multiplier": 2})
    assert depthwise.param_shapes((5, 5, 3)) == {"kernel": (3, 3, 3, 2), "bias": (6,)}
    assert depthwise.count_params((5, 5, 3)) == 60
    assert depthwise.flops((5, 5, 3)) == 2 * 3 * 3 * 3 * 3 * 3 * 2


def test_init_params_shapes_and_dtype():
    params = Conv2D.from_options({"filters": 4, "kernel_size": [3, 2]}).init_params((6, 6, 2), np.random.default_rng(0))
    assert params["kernel"].shape == (3, 2, 2, 4) and params["kernel"].dtype == np.float32
    assert params["bias"].shape == (4,) and not params["bias"].any()


@pytest.mark.parametrize(
    "kind, config, input_shape, message",
    [
        (
            Conv2D,
            {"filters": 1, "kernel_size": 7},
            (5, 5, 1),
            "Conv2D output height ((5 - 7 + 2*0) / 1) + 1 = -1 is not positive; use padding: same or kernel_size <= 5",
        ),
        (
            Conv2D,
            {"filters": 1, "kernel_size": 5, "dilation_rate": 2},
            (5, 5, 1),
            (
                "Conv2D output height ((5 - 9 + 2*0) / 1) + 1 = -3 is not positive, with the dilated kernel 2*(5 - 1) + 1 = 9; "
                "use padding: same, kernel_size <= 3 or dilation_rate <= 1"
            ),
        ),
        (
            Conv2D,
            {"filters": 1, "kernel_size": [3, 7], "strides": 2},
            (5, 6, 1),
            "Conv2D output width floor((6 - 7 + 2*0) / 2) + 1 = 0 is not positive; use padding: same or kernel_size <= 6",
        ),
        (
            DepthwiseConv2D,
            {"kernel_size": [4, 2]},
            (3, 1, 1),
            (
                "DepthwiseConv2D output height ((3 - 4 + 2*0) / 1) + 1 = 0 is not positive; "
                "use padding: same or kernel_size <= 3"
            ),
        ),
        (
            Conv2D,
            {"filters": 1, "kernel_size": 3},
            (784,),
            (
                "Conv2D expects an image input (height, width, channels), got shape (784,); "
                "add a Reshape layer with target_shape [28, 28, 1] before it"
            ),
        ),
        (
            Conv2D,
            {"filters": 1, "kernel_size": 3},
            (28, 20),
            (
                "Conv2D expects an image input (height, width, channels), got shape (28, 20); "
                "add a Reshape layer with target_shape [28, 20, 1] before it"
            ),
        ),
        (
            DepthwiseConv2D,
            {"kernel_size": 3},
            (10,),
            (
                "DepthwiseConv2D expects an image input (height, width, channels), got shape (10,); "
                "it needs 3 axes, add a Reshape layer before it"
            ),
        ),
    ],
)
def test_shape_errors(kind, config, input_shape, message):
    with pytest.raises(ShapeError) as error:
        kind.from_options(config).output_shape(input_shape)
    assert error.value.problems[0].message == message


def test_same_padding_never_fails():
    assert Conv2D.from_options({"filters": 1, "kernel_size": 7, "padding": "same"}).output_shape((5, 5, 1)) == (5, 5, 1)


@pytest.mark.parametrize(
    "kind, config",
    [
        (Conv2D, {"filters": 1, "kernel_size": 3, "strides": [1, 2], "dilation_rate": 2}),
        (DepthwiseConv2D, {"kernel_size": 3, "strides": 2, "dilation_rate": [2, 1]}),
    ],
)
def test_strides_with_dilation_is_refused(kind, config):
    with pytest.raises(SpecError, match="cannot combine strides > 1 with dilation_rate > 1"):
        kind.from_options(config)
