"""Sliding windows: the geometry of a window, padding and cropping, the strided views the convolutions and
pooling read, and where a transposed convolution's output sits on its full image."""

from __future__ import annotations

import numpy as np
import pytest

from specforge.ops.window import (
    Frame,
    Window,
    crop_padding,
    offset_slices,
    pad_image,
    window_view,
)

WINDOWS = [
    Window((3, 2), (1, 1), (1, 1), ((0, 0), (0, 0))),
    Window((3, 3), (2, 1), (1, 1), ((1, 1), (0, 1))),
    Window((2, 3), (1, 1), (2, 2), ((1, 2), (2, 0))),
]


def test_effective_extent_and_output_size():
    window = Window((3, 2), (2, 1), (2, 3), ((1, 0), (2, 2)))
    assert window.effective == (5, 4)  # 2*(3-1)+1, 3*(2-1)+1
    assert window.output_size((9, 6)) == ((9 + 1 - 5) // 2 + 1, 6 + 4 - 4 + 1)


def test_onnx_pads_are_all_begins_then_all_ends():
    assert Window((3, 3), (1, 1), (1, 1), ((1, 2), (3, 4))).onnx_pads == [1, 3, 2, 4]


def test_pad_image_without_pads_is_the_input_itself():
    x = np.ones((1, 2, 2, 1))
    assert pad_image(x, ((0, 0), (0, 0))) is x


def test_pad_image_pads_each_image_and_crop_padding_undoes_it():
    x = np.arange(2 * 3 * 4 * 2, dtype=float).reshape(2, 3, 4, 2)
    xp = pad_image(x, ((1, 2), (0, 3)), value=-7.0)
    assert xp.shape == (2, 6, 7, 2)
    np.testing.assert_array_equal(xp[:, 1:4, 0:4], x)
    assert (xp[:, 0] == -7).all() and (xp[:, 4:] == -7).all() and (xp[:, :, 4:] == -7).all()
    np.testing.assert_array_equal(crop_padding(xp, ((1, 2), (0, 3))), x)


@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_window_view_and_offset_slices_read_the_pixels_under_each_tap(window):
    x = np.random.default_rng(0).standard_normal((2, 6, 7, 3))
    xp = pad_image(x, window.pads)
    out_h, out_w = window.output_size((6, 7))
    view = window_view(xp, window)
    assert view.shape == (2, out_h, out_w, 3, *window.kernel)
    slices = list(offset_slices(window, (out_h, out_w)))
    assert len(slices) == window.kernel[0] * window.kernel[1]
    (sh, sw), (dh, dw) = window.strides, window.dilation
    for tap, index in enumerate(slices):
        a, b = divmod(tap, window.kernel[1])
        for i in range(out_h):
            for j in range(out_w):
                pixel = xp[:, i * sh + a * dh, j * sw + b * dw]
                np.testing.assert_array_equal(view[:, i, j, :, a, b], pixel)
                np.testing.assert_array_equal(xp[index][:, i, j], pixel)


def test_frame_regions_and_onnx_attributes():
    # full images of 7 x 5 pixels; an output of 6 x 7 starting at (1, 0): 6 rows on the image, 5 columns
    frame = Frame(Window((3, 3), (2, 2), (1, 1), ((0, 0), (0, 0))), full=(7, 5), before=(1, 0), size=(6, 7))
    assert frame.overlap == (6, 5)
    full = np.arange(7 * 5).reshape(1, 7, 5)
    out = np.zeros((1, 6, 7), int)
    out[frame.output_region()] = full[frame.full_region()]
    np.testing.assert_array_equal(out[0, :, :5], full[0, 1:7])
    assert not out[0, :, 5:].any()
    assert frame.onnx_pads == [1, 0, 0, 0]
    assert frame.onnx_output_padding == [0, 2]
