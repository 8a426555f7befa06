"""SeparableConv2D: Keras' parameter layout and counts, and the forward as depthwise then pointwise."""

from __future__ import annotations

import numpy as np
import pytest

from layers.test_conv import reference_conv
from specforge.base.errors import SpecError
from specforge.layers.separable import SeparableConv2D


def test_parameters_as_keras_stores_them():
    layer = SeparableConv2D.from_options({"filters": 32, "kernel_size": 3, "depth_multiplier": 2})
    assert layer.param_shapes((28, 28, 16)) == {
        "depthwise_kernel": (3, 3, 16, 2),
        "pointwise_kernel": (1, 1, 32, 32),
        "bias": (32,),
    }
    # Keras' summary: 3*3*16*2 + 32*32 + 32
    assert layer.count_params((28, 28, 16)) == 288 + 1024 + 32
    assert layer.output_shape((28, 28, 16)) == (26, 26, 32)
    assert layer.flops((28, 28, 16)) == 2 * 26 * 26 * (288 + 1024)


@pytest.mark.parametrize(
    "config,pads",
    [
        ({"filters": 3, "kernel_size": [3, 2], "depth_multiplier": 2}, ((0, 0), (0, 0))),
        # ceil(7 / 2) = 4: 3*2 + 3 - 7 = 2 -> (1, 1); width 6, stride 1, kernel 3: pad 2 -> (1, 1)
        ({"filters": 2, "kernel_size": 3, "strides": [2, 1], "padding": "same", "use_bias": False}, ((1, 1), (1, 1))),
    ],
)
def test_forward_is_depthwise_then_pointwise(config, pads):
    layer = SeparableConv2D.from_options(config)
    rng = np.random.default_rng(0)
    shape = (7, 6, 3)
    params = {name: rng.standard_normal(s) for name, s in layer.param_shapes(shape).items()}
    x = rng.standard_normal((2, *shape))
    strides = config.get("strides") or [1, 1]
    middle = reference_conv(x, params["depthwise_kernel"], None, strides, (1, 1), pads, depthwise=True)
    want = reference_conv(middle, params["pointwise_kernel"], params.get("bias"), (1, 1), (1, 1), ((0, 0), (0, 0)))
    np.testing.assert_allclose(layer.forward(params, x)[0], want, rtol=1e-12, atol=1e-12)


def test_strides_with_dilation_is_a_spec_error():
    with pytest.raises(SpecError, match="SeparableConv2D cannot combine strides > 1 with dilation_rate > 1"):
        SeparableConv2D.from_options({"filters": 2, "kernel_size": 3, "strides": 2, "dilation_rate": 2})
