"""Sequence kinds: hand-worked shapes and paddings, forward against a loop reference, exact errors."""

from __future__ import annotations

import numpy as np
import pytest

from specforge.base.errors import ShapeError, SpecError
from specforge.layers.sequence import (
    AveragePooling1D,
    Conv1D,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    MaxPooling1D,
)


def reference_conv1d(x, kernel, bias, stride, dilation, before, after):
    """Direct definition, one output step and tap at a time, over the zero-padded sequence."""
    n, _steps, channels = x.shape
    k = kernel.shape[0]
    xp = np.concatenate([np.zeros((n, before, channels)), x, np.zeros((n, after, channels))], axis=1)
    out = (xp.shape[1] - dilation * (k - 1) - 1) // stride + 1
    y = np.zeros((n, out, kernel.shape[2]))
    for t in range(out):
        for a in range(k):
            y[:, t] += xp[:, t * stride + a * dilation] @ kernel[a]
    return y if bias is None else y + bias


# (config, input shape, expected output shape, expected (before, after) padding), worked by hand.
CONV_CASES = [
    ({"filters": 4, "kernel_size": 3}, (7, 3), (5, 4), (0, 0)),
    # ceil(7 / 2) = 4: 3*2 + 2 - 7 = 1 -> (0, 1)
    ({"filters": 2, "kernel_size": 2, "strides": 2, "padding": "same"}, (7, 3), (4, 2), (0, 1)),
    # causal: 2 * (3 - 1) = 4 zeros before; output 6
    ({"filters": 3, "kernel_size": 3, "padding": "causal", "dilation_rate": 2}, (6, 2), (6, 3), (4, 0)),
    # causal stride 3: 3 zeros before, (8 + 3 - 4) // 3 + 1 = 3 = ceil(8 / 3)
    ({"filters": 2, "kernel_size": 4, "strides": 3, "padding": "causal"}, (8, 2), (3, 2), (3, 0)),
    # dilated kernel 2*(3-1)+1 = 5, same: pad 4 -> (2, 2)
    ({"filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": "same"}, (5, 2), (5, 2), (2, 2)),
    # 34 channels, stride 1: the tap products
    ({"filters": 3, "kernel_size": 3, "padding": "same"}, (6, 33), (6, 3), (1, 1)),
]


@pytest.mark.parametrize("config,shape,expected,pads", CONV_CASES)
def test_conv1d_against_reference(config, shape, expected, pads):
    layer = Conv1D.from_options(config)
    assert layer.output_shape(shape) == expected
    assert layer.window(shape[0]).pads == ((0, 0), pads)
    rng = np.random.default_rng(0)
    params = {name: rng.standard_normal(s) for name, s in layer.param_shapes(shape).items()}
    assert params["kernel"].shape == (config["kernel_size"], shape[1], config["filters"])
    x = rng.standard_normal((3, *shape))
    y, _ = layer.forward(params, x)
    want = reference_conv1d(
        x, params["kernel"], params.get("bias"), config.get("strides", 1), config.get("dilation_rate", 1), *pads
    )
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def test_causal_output_ignores_later_steps():
    layer = Conv1D.from_options({"filters": 2, "kernel_size": 3, "padding": "causal", "dilation_rate": 2})
    params = layer.init_params((6, 2), np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((1, 6, 2)).astype(np.float32)
    changed = x.copy()
    changed[:, 4:] += 1
    y, _ = layer.forward(params, x)
    y_changed, _ = layer.forward(params, changed)
    np.testing.assert_array_equal(y[:, :4], y_changed[:, :4])
    assert not np.allclose(y[:, 4:], y_changed[:, 4:])


def test_conv1d_params_and_flops():
    layer = Conv1D.from_options({"filters": 8, "kernel_size": 5})
    assert layer.param_shapes((28, 28)) == {"kernel": (5, 28, 8), "bias": (8,)}
    assert layer.count_params((28, 28)) == 5 * 28 * 8 + 8
    assert layer.flops((28, 28)) == 2 * 24 * 5 * 28 * 8


@pytest.mark.parametrize("kind,reduce", [(MaxPooling1D, np.max), (AveragePooling1D, np.mean)])
@pytest.mark.parametrize(
    "config,shape,expected,windows",
    [
        # pool 2, stride 2: steps (0, 1), (2, 3), (4, 5); the seventh is left over
        ({}, (7, 3), (3, 3), [(0, 2), (2, 4), (4, 6)]),
        # pool 3, stride 2, same on 6: ceil(6 / 2) = 3, pad 2*2 + 3 - 6 = 1 -> (0, 1)
        ({"pool_size": 3, "strides": 2, "padding": "same"}, (6, 2), (3, 2), [(0, 3), (2, 5), (4, 6)]),
    ],
)
def test_pooling1d_hand_worked(kind, reduce, config, shape, expected, windows):
    layer = kind.from_options(config)
    assert layer.output_shape(shape) == expected
    x = np.random.default_rng(3).standard_normal((2, *shape))
    y, _ = layer.forward({}, x)
    np.testing.assert_allclose(y, np.stack([reduce(x[:, a:b], axis=1) for a, b in windows], axis=1))


@pytest.mark.parametrize("kind,reduce", [(GlobalAveragePooling1D, np.mean), (GlobalMaxPooling1D, np.max)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling1d(kind, reduce, keepdims):
    layer = kind.from_options({"keepdims": keepdims})
    x = np.random.default_rng(4).standard_normal((2, 5, 3))
    y, _ = layer.forward({}, x)
    assert layer.output_shape((5, 3)) == ((1, 3) if keepdims else (3,))
    np.testing.assert_allclose(y, reduce(x, axis=1, keepdims=keepdims))


@pytest.mark.parametrize(
    "layer,shape,message",
    [
        (
            Conv1D.from_options({"filters": 2, "kernel_size": 7}),
            (5, 3),
            "Conv1D output steps ((5 - 7 + 2*0) / 1) + 1 = -1 is not positive; use padding: same or kernel_size <= 5",
        ),
        (
            MaxPooling1D.from_options({"pool_size": 4}),
            (3, 2),
            (
                "MaxPooling1D output steps floor((3 - 4 + 2*0) / 4) + 1 = 0 is not positive; use padding: same or "
                "pool_size <= 3"
            ),
        ),
        (
            Conv1D.from_options({"filters": 2, "kernel_size": 3}),
            (28, 28, 1),
            (
                "Conv1D expects a sequence input (steps, channels), got shape (28, 28, 1); add a Reshape layer with "
                "target_shape [28, 28] before it"
            ),
        ),
        (
            GlobalMaxPooling1D.from_options(),
            (12,),
            (
                "GlobalMaxPooling1D expects a sequence input (steps, channels), got shape (12,); add a Reshape layer with "
                "target_shape [12, 1] before it"
            ),
        ),
    ],
)
def test_shape_errors(layer, shape, message):
    with pytest.raises(ShapeError) as error:
        layer.output_shape(shape)
    assert error.value.problems[0].message == message


def test_strides_with_dilation_is_a_spec_error():
    with pytest.raises(
        SpecError,
        match=r"Conv1D cannot combine strides > 1 with dilation_rate > 1 \(received "
        r"strides=2, dilation_rate=2\)",
    ):
        Conv1D.from_options({"filters": 2, "kernel_size": 3, "strides": 2, "dilation_rate": 2})
