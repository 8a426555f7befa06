"""Conv2DTranspose: Keras' output sizes worked by hand, the forward against a scatter loop, exact errors."""

from __future__ import annotations

import numpy as np
import pytest

from specforge.base.errors import ShapeError, SpecError
from specforge.layers.transpose import Conv2DTranspose


def reference_transpose(x, kernel, bias, strides, dilation, before, size):
    """Each input pixel adds kernel * value onto the full image; the output is its window at ``before``."""
    n, height, width, _ = x.shape
    kh, kw, filters, _ = kernel.shape
    full_h = (height - 1) * strides[0] + dilation[0] * (kh - 1) + 1
    full_w = (width - 1) * strides[1] + dilation[1] * (kw - 1) + 1
    full = np.zeros((n, max(full_h, before[0] + size[0]), max(full_w, before[1] + size[1]), filters))
    for i in range(height):
        for j in range(width):
            for a in range(kh):
                for b in range(kw):
                    row, col = i * strides[0] + a * dilation[0], j * strides[1] + b * dilation[1]
                    full[:, row, col] += x[:, i, j] @ kernel[a, b].T
    y = full[:, before[0] : before[0] + size[0], before[1] : before[1] + size[1]]
    return y if bias is None else y + bias


# (config, input (height, width), expected output (height, width), expected offset (top, left)), by hand.
CASES = [
    # valid: n*s + max(k - s, 0): 4 + 2 = 6 ; 5 + 1 = 6
    ({"filters": 3, "kernel_size": [3, 2]}, (4, 5), (6, 6), (0, 0)),
    # same: n*s = 6, 8; the full image is 2*2 + 3 = 7, 9 pixels: TensorFlow drops (7 - 6) // 2 = 0 before
    ({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}, (3, 4), (6, 8), (0, 0)),
    # valid with kernel smaller than the stride: n*s = 9 rows, the full image has 2*3 + 2 = 8: one zero row
    ({"filters": 2, "kernel_size": [2, 3], "strides": [3, 2]}, (3, 3), (9, 7), (0, 0)),
    # same with output_padding: (n-1)*s + k - 2*(k//2) + p = 4 + 3 - 2 + 1 = 6 ; 2 + 4 - 4 + 1 = 3
    # full 7 and 6 pixels: (7 - 6) // 2 = 0 and (6 - 3) // 2 = 1 before
    (
        {"filters": 2, "kernel_size": [3, 4], "strides": 2, "padding": "same", "output_padding": [1, 1]},
        (3, 2),
        (6, 3),
        (0, 1),
    ),
    # valid with output_padding: (n-1)*s + k + p = 2 + 3 + 1 = 6 ; 6 + 3 + 2 = 11
    ({"filters": 2, "kernel_size": 3, "strides": [2, 3], "output_padding": [1, 2]}, (2, 3), (6, 11), (0, 0)),
    # dilated 2*(3-1)+1 = 5 rows, same stride 1: 4 rows out of the 8 of the full image, 2 dropped before
    ({"filters": 3, "kernel_size": [3, 2], "dilation_rate": [2, 1], "padding": "same"}, (4, 4), (4, 4), (2, 0)),
]


@pytest.mark.parametrize("config,size,expected,before", CASES)
def test_against_reference(config, size, expected, before):
    layer = Conv2DTranspose.from_options(config)
    shape = (*size, 2)
    assert layer.output_shape(shape) == (*expected, config["filters"])
    assert layer.frame(shape).before == before
    rng = np.random.default_rng(0)
    params = {name: rng.standard_normal(s) for name, s in layer.param_shapes(shape).items()}
    assert params["kernel"].shape[2:] == (config["filters"], 2)
    x = rng.standard_normal((3, *shape))
    strides = np.broadcast_to(config.get("strides", 1), 2)
    dilation = np.broadcast_to(config.get("dilation_rate", 1), 2)
    want = reference_transpose(x, params["kernel"], params.get("bias"), strides, dilation, before, expected)
    np.testing.assert_allclose(layer.forward(params, x)[0], want, rtol=1e-12, atol=1e-12)


def test_keras_sizes_of_a_decoder():
    # The Keras autoencoder example: 7x7 -> 14x14 -> 28x28 with kernel 3, strides 2, padding same.
    layer = Conv2DTranspose.from_options({"filters": 32, "kernel_size": 3, "strides": 2, "padding": "same"})
    assert layer.output_shape((7, 7, 64)) == (14, 14, 32)
    assert layer.output_shape((14, 14, 64)) == (28, 28, 32)
    assert layer.count_params((7, 7, 64)) == 3 * 3 * 32 * 64 + 32


def test_output_padding_must_be_below_the_stride():
    with pytest.raises(SpecError) as error:
        Conv2DTranspose.from_options({"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": [1, 2]})
    assert error.value.problems[0].message == (
        "Conv2DTranspose output_padding must be smaller than strides along each axis (received strides=2, "
        "output_padding=[1, 2]); use output_padding < strides or null"
    )


@pytest.mark.parametrize(
    "config,size,message",
    [
        # an even kernel with output_padding 0: (2 - 1)*2 + 4 - 4 + 0 = 2 pixels, ceil(2 / 2) = 1, not 2
        (
            {"filters": 2, "kernel_size": [3, 4], "strides": 2, "padding": "same", "output_padding": [1, 0]},
            (3, 2),
            (
                "Conv2DTranspose output width ((2 - 1)*2 + 4 - 2*2 + 0) = 2 with padding same, but TensorFlow requires "
                "ceil(2 / 2) = 1 to equal the input width 2; use output_padding 1 along width, an odd kernel_size, "
                "padding: valid or output_padding: null"
            ),
        ),
        # stride 1 leaves output_padding only 0: (5 - 1)*1 + 2 - 2 + 0 = 4 pixels, not 5
        (
            {"filters": 2, "kernel_size": 2, "padding": "same", "output_padding": 0},
            (5, 5),
            (
                "Conv2DTranspose output height ((5 - 1)*1 + 2 - 2*1 + 0) = 4 with padding same, but TensorFlow requires "
                "ceil(4 / 1) = 4 to equal the input height 5; use an odd kernel_size, padding: valid or output_padding: null"
            ),
        ),
        (
            {"filters": 2, "kernel_size": 4, "strides": 3, "padding": "same", "output_padding": [2, 0]},
            (4, 4),
            (
                "Conv2DTranspose output width ((4 - 1)*3 + 4 - 2*2 + 0) = 9 with padding same, but TensorFlow requires "
                "ceil(9 / 3) = 3 to equal the input width 4; use output_padding 1 to 2 along width, an odd kernel_size, "
                "padding: valid or output_padding: null"
            ),
        ),
    ],
)
def test_same_padding_refuses_the_output_padding_tensorflow_refuses(config, size, message):
    with pytest.raises(ShapeError) as error:
        Conv2DTranspose.from_options(config).output_shape((*size, 1))
    assert error.value.problems[0].message == message


def test_same_padding_takes_every_output_padding_that_keeps_the_input_size():
    # ceil(((n - 1)*s + k % 2 + p) / s) = n for every p in 1..s-1 (and p = 0 with an odd kernel)
    for kernel in (2, 3, 4, 5):
        for padding in range(kernel % 2 == 0, 3):
            layer = Conv2DTranspose.from_options(
                {"filters": 1, "kernel_size": kernel, "strides": 3, "padding": "same", "output_padding": padding}
            )
            assert layer.output_shape((4, 4, 1))[0] == 9 + kernel % 2 + padding


def test_needs_an_image():
    with pytest.raises(
        ShapeError,
        match=r"Conv2DTranspose expects an image input \(height, width, channels\), "
        r"got shape \(784,\); add a Reshape layer with target_shape \[28, 28, 1\]",
    ):
        Conv2DTranspose.from_options({"filters": 2, "kernel_size": 3}).output_shape((784,))
