"""Sliding-window shape rules of the convolution and pooling kinds: the window a layer's options
plan over an input, and the image input they need, with errors that give the numbers and a fix."""

from __future__ import annotations

import math

from specforge import ops
from specforge.layers.base import Shape, shape_error

_AXES = ("height", "width")


def plan_window(
    layer_type: str,
    size_name: str,
    size: tuple[int, int],
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilation: tuple[int, int],
    padding: str,
    axes: tuple[str, str] = _AXES,
) -> ops.Window:
    """The window over a ``size`` (height, width) image; ShapeError when an output dimension is not positive.

    ``same`` padding follows TensorFlow: output ``ceil(n / s)``, and the odd pixel of padding goes after.
    ``axes`` names the two axes in messages (a sequence is a ``(1, steps)`` image).
    """
    pads: list[tuple[int, int]] = []
    for n, k, s, d in zip(size, kernel, strides, dilation):
        effective = d * (k - 1) + 1
        if padding == "same":
            total = max((math.ceil(n / s) - 1) * s + effective - n, 0)
            pads.append((total // 2, total - total // 2))
        else:
            pads.append((0, 0))
    window = ops.Window(kernel, strides, dilation, (pads[0], pads[1]))
    for axis, n, (before, after), e, s, d, out in zip(
        axes, size, window.pads, window.effective, strides, dilation, window.output_size(size)
    ):
        if out < 1:
            fitting = (n + before + after - 1) // d + 1
            ratio = f"({n} - {e} + 2*{before}) / {s}"
            formula = f"({ratio}) + 1" if s == 1 else f"floor({ratio}) + 1"
            fixes = f"padding: same or {size_name} <= {fitting}"
            dilated = ""
            if d > 1:
                k = (e - 1) // d + 1
                dilated = f", with the dilated kernel {d}*({k} - 1) + 1 = {e}"
                fixes = f"padding: same, {size_name} <= {fitting} or dilation_rate <= {(n - 1) // (k - 1)}"
            raise shape_error(f"{layer_type} output {axis} {formula} = {out} is not positive{dilated}; use {fixes}")
    return window


def require_image(layer_type: str, input_shape: Shape) -> tuple[int, int, int]:
    """``input_shape`` as ``(height, width, channels)``; ShapeError naming a Reshape that would fit."""
    if len(input_shape) == 3:
        height, width, channels = input_shape
        return int(height), int(width), int(channels)
    message = f"{layer_type} expects an image input (height, width, channels), got shape {tuple(input_shape)}"
    suggestion = _image_reshape(input_shape)
    if suggestion is None:
        raise shape_error(f"{message}; it needs 3 axes, add a Reshape layer before it")
    raise shape_error(f"{message}; add a Reshape layer with target_shape {suggestion} before it")


def _image_reshape(input_shape: Shape) -> list[int] | None:
    """The obvious image shape for a flat square (``(784,)``) or a single-channel ``(H, W)`` input."""
    if len(input_shape) == 2:
        return [int(input_shape[0]), int(input_shape[1]), 1]
    if len(input_shape) == 1:
        side = math.isqrt(int(input_shape[0]))
        if side > 1 and side * side == input_shape[0]:
            return [side, side, 1]
    return None
