"""The im2col convolution: a window's pixels copied into columns, then one GEMM.

An im2col convolution is one copy plus one GEMM (a batched GEMM over channel groups for depthwise);
its gradients are another GEMM (the kernel) and another im2col convolution (the input).
"""

from __future__ import annotations

import numpy as np

from specforge.ops import kernels
from specforge.ops.window import Window, crop_padding, offset_slices, pad_image, window_view


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


def tap_major_columns(x: np.ndarray, window: Window) -> np.ndarray:
    """The im2col columns of one group, transposed: ``(KH*KW*Cin, N*OH*OW)``, copied one tap and channel at a
    time from the channel-major padded input.

    For the kernel gradient of a convolution with few input channels (the first of an image model), this is
    the cheap layout: each row is a run of pixels copied whole, where :func:`columns` writes ``KH*KW*Cin``
    scattered elements per pixel (for 64 MNIST images and a 5x5 kernel, 0.9 ms against 3.4, and the product
    that follows reads contiguous rows: 1.0 ms against 1.3, on one core)."""
    n, channels = x.shape[0], x.shape[3]
    out_size = window.output_size(x.shape[1:3])
    planes = np.ascontiguousarray(pad_image(x, window.pads).transpose(3, 0, 1, 2))
    offsets = list(offset_slices(window, out_size))
    out = np.empty((len(offsets), channels, n, *out_size), x.dtype)
    for tap, (_, rows, cols) in enumerate(offsets):
        out[tap] = planes[:, :, rows, cols]
    return out.reshape(len(offsets) * channels, -1)


def grouped_kernel_gradient(cols: np.ndarray, dy: np.ndarray, kernel_shape: tuple[int, ...]) -> np.ndarray:
    """The kernel gradient of :func:`grouped_conv` from its columns and the output gradient."""
    groups, cout = kernel_shape[0], kernel_shape[-1]
    dy_groups = dy.reshape(-1, groups, cout).transpose(1, 0, 2)
    return _group_matmul(cols.transpose(0, 2, 1), dy_groups).reshape(kernel_shape)


def depthwise_kernel_gradient(x: np.ndarray, dy: np.ndarray, window: Window) -> np.ndarray:
    """The (KH, KW, C) kernel gradient of a depthwise convolution with one output per channel, from its
    input ``x`` (N, H, W, C) and output gradient ``dy``: for each kernel offset, the sum over the batch
    and the pixels of the input it reads times the gradient, channel by channel (no im2col copy); in one
    pass by the compiled kernel where it is in use."""
    if kernels.takes(x, dy) and dy.shape[3] == x.shape[3]:
        compiled = kernels.active()
        assert compiled is not None
        (kh, kw), (sh, sw), (dh, dw), ((top, _), (left, _)) = (
            window.kernel,
            window.strides,
            window.dilation,
            window.pads,
        )
        dkernel = np.empty((kh, kw, x.shape[3]), np.float64)
        compiled.depthwise_kernel_gradient(x, dy, (kh, kw, sh, sw, dh, dw, top, left), dkernel)
        return dkernel.astype(x.dtype)
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


def scattered_input_gradient(dy: np.ndarray, kernel: np.ndarray, window: Window, out: np.ndarray) -> None:
    """The input gradient of a strided one-group convolution, written to ``out`` (N, H, W, Cin): each output
    pixel's gradient times each tap of ``kernel`` (KH, KW, Cin, Cout) transposed, added onto the input pixel
    that tap read (col2im).

    The other ways take the gradient as a stride-1 correlation over an image of zeros with the output gradient
    spread out at the strides, and compute on the zeros too: four times the work at stride 2. Here the taps
    are summed per phase of the strides (the input pixels whose row and column leave the same remainders),
    where each tap's term is a contiguous block, and each phase is then copied to its pixels once (on one core,
    for 64 images: 4.8 against 10 ms for a 3x3 convolution from 32 to 64 channels at stride 2 on 14x14, 2.9
    against 3.9 ms for a 1x1 from 16 to 16 on 28x28; a depthwise convolution gained nothing, and keeps the
    other way)."""
    kh, kw, channels, outputs = kernel.shape
    n, out_h, out_w, _ = dy.shape
    (sh, sw), (dh, dw) = window.strides, window.dilation
    (top, bottom), (left, right) = window.pads
    padded = np.empty((n, out.shape[1] + top + bottom, out.shape[2] + left + right, channels), out.dtype)
    rows = dy.reshape(-1, outputs)
    term = np.empty((len(rows), channels), out.dtype)
    for row_phase, column_phase in np.ndindex(sh, sw):
        phase = padded[:, row_phase::sh, column_phase::sw]
        total = np.zeros(phase.shape, out.dtype)
        for a, b in np.ndindex(kh, kw):
            if (a * dh % sh, b * dw % sw) != (row_phase, column_phase):
                continue
            np.matmul(rows, kernel[a, b].T, out=term)
            first_row, first_column = a * dh // sh, b * dw // sw
            total[:, first_row : first_row + out_h, first_column : first_column + out_w] += term.reshape(
                n, out_h, out_w, channels
            )
        phase[...] = total
    out[...] = crop_padding(padded, window.pads)


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
    spread[:, row : row + (out_h - 1) * sh + 1 : sh, col : col + (out_w - 1) * sw + 1 : sw] = dy
    return spread


def _group_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` per group ``(G, P, K) @ (G, K, C) -> (G, P, C)``; one plain GEMM for a single group."""
    if a.shape[0] == 1:
        return (a[0] @ b[0])[None]
    return np.matmul(a, b)
