"""Sliding windows over NHWC batches: the window's geometry, padding, strided window views, and
where a transposed convolution's output sits on the image it covers.

``Window`` is what the convolutions (im2col, tap products, NCHWc), pooling and the padding layers
share; nothing here computes more than a copy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Pads = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class Window:
    """A 2-D sliding window: its size, strides, dilation and explicit zero padding.

    ``pads`` is ``((top, bottom), (left, right))``.
    """

    kernel: tuple[int, int]
    strides: tuple[int, int]
    dilation: tuple[int, int]
    pads: Pads

    @property
    def effective(self) -> tuple[int, int]:
        """The extent of the dilated kernel, ``D*(K-1)+1`` per axis."""
        (kh, kw), (dh, dw) = self.kernel, self.dilation
        return dh * (kh - 1) + 1, dw * (kw - 1) + 1

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """Output pixels per axis over an unpadded ``size`` (height, width) image."""
        height, width = (
            (n + a + b - e) // s + 1 for n, (a, b), e, s in zip(size, self.pads, self.effective, self.strides)
        )
        return height, width

    @property
    def onnx_pads(self) -> list[int]:
        """ONNX order: all begins, then all ends (``[top, left, bottom, right]``)."""
        (top, bottom), (left, right) = self.pads
        return [top, left, bottom, right]


@dataclass(frozen=True)
class Frame:
    """Where a transposed convolution's output sits on the ``full`` image it covers.

    ``window`` is the valid convolution from ``full`` pixels down to the input's; the output is
    ``full[before:before + size]`` per axis, zero past the end of ``full``.
    """

    window: Window
    full: tuple[int, int]
    before: tuple[int, int]
    size: tuple[int, int]

    @property
    def overlap(self) -> tuple[int, int]:
        """Rows and columns of the output that lie on the full image."""
        rows, columns = (min(size, full - before) for size, full, before in zip(self.size, self.full, self.before))
        return rows, columns

    def output_region(self) -> tuple[slice, ...]:
        return (slice(None), *(slice(0, length) for length in self.overlap))

    def full_region(self) -> tuple[slice, ...]:
        return (slice(None), *(slice(before, before + length) for before, length in zip(self.before, self.overlap)))

    @property
    def onnx_pads(self) -> list[int]:
        """ConvTranspose's pads: the offset before, the part of ``full`` left out after."""
        after = [max(full - before - size, 0) for full, before, size in zip(self.full, self.before, self.size)]
        return [*self.before, *after]

    @property
    def onnx_output_padding(self) -> list[int]:
        """ConvTranspose's output_padding: the rows and columns past the end of ``full``."""
        return [max(before + size - full, 0) for full, before, size in zip(self.full, self.before, self.size)]


def pad_image(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """``x`` (N, H, W, C) with ``pads`` rows and columns of ``value`` around each image; ``x`` itself
    when there are none."""
    if not any(a or b for a, b in pads):
        return x
    return np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=value)


def window_view(xp: np.ndarray, window: Window) -> np.ndarray:
    """``(N, OH, OW, C, KH, KW)`` strided view of the padded input ``xp``; no copy."""
    (sh, sw), (dh, dw) = window.strides, window.dilation
    return sliding_window_view(xp, window.effective, axis=(1, 2))[:, ::sh, ::sw, :, ::dh, ::dw]


def offset_slices(window: Window, out_size: tuple[int, int]) -> Iterator[tuple[slice, slice, slice]]:
    """For each kernel offset, the index of the padded input's pixels it touches, one per output pixel."""
    (sh, sw), (dh, dw) = window.strides, window.dilation
    out_h, out_w = out_size
    for kh in range(window.kernel[0]):
        for kw in range(window.kernel[1]):
            rows = slice(kh * dh, kh * dh + (out_h - 1) * sh + 1, sh)
            cols = slice(kw * dw, kw * dw + (out_w - 1) * sw + 1, sw)
            yield slice(None), rows, cols


def crop_padding(xp: np.ndarray, pads: Pads) -> np.ndarray:
    """The view of ``xp`` without ``pads`` (the inverse of :func:`pad_image`)."""
    (top, bottom), (left, right) = pads
    return xp[:, top : xp.shape[1] - bottom, left : xp.shape[2] - right]
