"""Sliding windows over NHWC batches: padding, strided window views and the im2col convolution.

Everything is batch-level: windows are strided views of the padded input
(``sliding_window_view``), an im2col convolution is one copy plus one GEMM (a batched
GEMM over channel groups for depthwise), and pooling combines the strided slices under
each kernel offset (one vectorised operation per offset).
"""

from __future__ import annotations

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
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return tuple((n + a + b - e) // s + 1
                     for n, (a, b), e, s in zip(size, self.pads, self.effective, self.strides))

    @property
    def onnx_pads(self) -> list[int]:
        """ONNX order: all begins, then all ends (``[top, left, bottom, right]``)."""
        (top, bottom), (left, right) = self.pads
        return [top, left, bottom, right]



# -- window views -------------------------------------------------------------------
def pad_image(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    if not any(a or b for a, b in pads):
        return x
    return np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=value)


def window_view(xp: np.ndarray, window: Window) -> np.ndarray:
    """``(N, OH, OW, C, KH, KW)`` strided view of the padded input ``xp``; no copy."""
    (sh, sw), (dh, dw) = window.strides, window.dilation
    return sliding_window_view(xp, window.effective, axis=(1, 2))[:, ::sh, ::sw, :, ::dh, ::dw]


def offset_slices(window: Window, out_size: tuple[int, int]):
    """For each kernel offset, the index of the padded input's pixels it touches, one per output pixel."""
    (sh, sw), (dh, dw) = window.strides, window.dilation
    out_h, out_w = out_size
    for kh in range(window.kernel[0]):
        for kw in range(window.kernel[1]):
            rows = slice(kh * dh, kh * dh + (out_h - 1) * sh + 1, sh)
            cols = slice(kw * dw, kw * dw + (out_w - 1) * sw + 1, sw)
            yield slice(None), rows, cols


def crop_padding(xp: np.ndarray, pads: Pads) -> np.ndarray:
    (top, bottom), (left, right) = pads
    return xp[:, top:xp.shape[1] - bottom, left:xp.shape[2] - right]


# -- grouped convolution (Conv2D is one group, DepthwiseConv2D one group per channel) ----------------
def grouped_conv(x: np.ndarray, kernel: np.ndarray, window: Window, out: np.ndarray) -> np.ndarray:
    """The im2col columns ``cols`` for ``x`` (N, H, W, G*Cin) and ``kernel`` (G, KH, KW, Cin, Cout),
    with the convolution written to ``out`` (N, OH, OW, G*Cout), a C-contiguous array.

    ``cols`` (G, N*OH*OW, KH*KW*Cin) are kept for the kernel gradient; the output channels are
    group-major (group g, channel o -> g*Cout + o), as Keras orders them.
    """
    groups, kh, kw, cin, cout = kernel.shape
    cols = columns(x, window, groups)
    taps = kernel.reshape(groups, kh * kw * cin, cout)
    if groups == 1:
        np.matmul(cols[0], taps[0], out=out.reshape(-1, cout))
    else:
        out.reshape(-1, groups, cout)[...] = np.matmul(cols, taps).transpose(1, 0, 2)
    return cols


def columns(x: np.ndarray, window: Window, groups: int) -> np.ndarray:
    """The im2col columns (G, N*OH*OW, KH*KW*Cin) of ``x`` (N, H, W, G*Cin): a copy."""
    view = window_view(pad_image(x, window.pads), window)
    n, out_h, out_w, channels, kh, kw = view.shape
    view = view.reshape(n, out_h, out_w, groups, channels // groups, kh, kw)
    # (KH, KW, Cin) innermost keeps runs of Cin contiguous in the copy and matches Keras' kernel layout.
    return view.transpose(3, 0, 1, 2, 5, 6, 4).reshape(groups, n * out_h * out_w, -1)


def grouped_kernel_gradient(cols: np.ndarray, dy: np.ndarray, kernel_shape: tuple[int, ...]) -> np.ndarray:
    """The kernel gradient of :func:`grouped_conv` from its columns and the output gradient."""
    groups, cout = kernel_shape[0], kernel_shape[-1]
    dy_groups = dy.reshape(-1, groups, cout).transpose(1, 0, 2)
    return _group_matmul(cols.transpose(0, 2, 1), dy_groups).reshape(kernel_shape)


def depthwise_kernel_gradient(x: np.ndarray, dy: np.ndarray, window: Window) -> np.ndarray:
    """The (KH, KW, C) kernel gradient of a depthwise convolution with one output per channel, from its
    input ``x`` (N, H, W, C) and output gradient ``dy``: for each kernel offset, the sum over the batch
    and the pixels of the input it reads times the gradient, channel by channel (no im2col copy)."""
    xp = pad_image(x, window.pads)
    taps = [np.einsum("nyxc,nyxc->c", xp[index], dy) for index in offset_slices(window, dy.shape[1:3])]
    return np.stack(taps).reshape(*window.kernel, x.shape[3])


def grouped_input_gradient(kernel: np.ndarray, window: Window, dy: np.ndarray, out: np.ndarray) -> None:
    """The input gradient of :func:`grouped_conv`, written to ``out`` (N, H, W, G*Cin): the full
    correlation of the output gradient, spread out by the strides, with the flipped kernel whose
    in/out channels are swapped (another im2col + GEMM)."""
    flipped = kernel[:, ::-1, ::-1].transpose(0, 1, 2, 4, 3)
    spread = spread_gradient(dy, window, out.shape[1:3])
    full = Window(window.kernel, (1, 1), window.dilation, ((0, 0), (0, 0)))
    grouped_conv(spread, np.ascontiguousarray(flipped), full, out)


def spread_gradient(dy: np.ndarray, window: Window, size: tuple[int, int]) -> np.ndarray:
    """``dy`` placed at the strided output positions inside a zero image sized for a full correlation.

    The result has ``size + effective - 1`` pixels per axis, cropped to the unpadded input, so a
    valid stride-1 correlation with the flipped kernel yields exactly the input gradient.
    """
    n, out_h, out_w, channels = dy.shape
    (eh, ew), (sh, sw) = window.effective, window.strides
    (top, _), (left, _) = window.pads
    spread = np.zeros((n, size[0] + eh - 1, size[1] + ew - 1, channels), dtype=dy.dtype)
    row, col = eh - 1 - top, ew - 1 - left
    spread[:, row:row + (out_h - 1) * sh + 1:sh, col:col + (out_w - 1) * sw + 1:sw] = dy
    return spread


def _group_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` per group ``(G, P, K) @ (G, K, C) -> (G, P, C)``; one plain GEMM for a single group."""
    if a.shape[0] == 1:
        return (a[0] @ b[0])[None]
    return np.matmul(a, b)
