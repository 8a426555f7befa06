"""Windowed pooling over NHWC batches: the padding, the strided slices under each kernel offset and
the split across the cores, around a reduction and its gradient that the pooling kind supplies.

The forward pads the input with the reduction's neutral value and hands the kind one strided view
per kernel offset (one vectorised operation per offset of the small pool window, none per pixel or
example); the backward hands it the matching views of the padded input gradient. Windows that tile
the padded input cover each pixel once, so their gradients can be written rather than added to zeros.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from specforge.ops import costs, kernels, parallel
from specforge.ops.window import Window, crop_padding, offset_slices, pad_image

#: ``reduce(slices, out, part)``: write into ``out`` the pooled output of batch rows ``part`` from the input
#: pixels under each kernel offset (``slices``).
Reduce = Callable[[list[np.ndarray], np.ndarray, slice], None]
#: ``spread(targets, dy, part, tiling)``: put the input gradient of batch rows ``part`` from their output
#: gradient ``dy`` into the padded input's pixels under each kernel offset (``targets``): written when the
#: windows tile the input (``tiling``), else added to the zeros there.
Spread = Callable[[list[np.ndarray], np.ndarray, slice, bool], None]


#: The reductions with compiled kernels: ``average``, the mean over the real (unpadded) pixels, forward and
#: backward; ``max``, whose backward takes the forward's record (the kernel offset, row-major, of each window's
#: first maximum), backward only.
COMPILED = ("max", "average")


def pool(
    x: np.ndarray,
    window: Window,
    reduce: Reduce,
    pad_value: float = 0.0,
    compiled: str | None = None,
) -> np.ndarray:
    """The pooled ``x`` (N, H, W, C) over ``window``, padded pixels ``pad_value``, from ``reduce``; or from the
    ``compiled`` kernel (one of ``COMPILED``) that computes the same, where it has a forward."""
    out_size = window.output_size(x.shape[1:3])
    y = np.empty((len(x), *out_size, x.shape[3]), x.dtype)
    if compiled == "average" and _compiles(compiled, window, x, None):
        fused = kernels.active()
        assert fused is not None
        source = np.ascontiguousarray(x)
        parallel.run(lambda part: fused.average_pool(source[part], _geometry(window), y[part]), _parts(window, y))
        return y

    def shard(part: slice) -> None:
        xp = pad_image(x[part], window.pads, pad_value)
        reduce([xp[index] for index in offset_slices(window, out_size)], y[part], part)

    parallel.run(shard, _parts(window, y))
    return y


def pool_gradient(
    dy: np.ndarray,
    x_shape: tuple[int, ...],
    window: Window,
    spread: Spread,
    compiled: str | None = None,
    record: np.ndarray | None = None,
) -> np.ndarray:
    """The gradient of the input (of ``x_shape``) of :func:`pool` from the output gradient ``dy``, by ``spread``,
    or by the ``compiled`` kernel's gradient (with the forward's ``record`` for ``max``)."""
    if _compiles(compiled, window, dy, record):
        fused = kernels.active()
        assert fused is not None
        dy = np.ascontiguousarray(dy)
        dx = np.zeros(x_shape, dy.dtype)
        if compiled == "max":
            assert record is not None, "max pooling's gradient needs the forward's record"
            marks = record
            parallel.run(
                lambda part: fused.max_pool_gradient(dy[part], marks[part], _geometry(window), dx[part]),
                _parts(window, dy),
            )
        else:
            parallel.run(
                lambda part: fused.average_pool_gradient(dy[part], _geometry(window), dx[part]), _parts(window, dy)
            )
        return dx
    (top, bottom), (left, right) = window.pads
    padded = (x_shape[0], x_shape[1] + top + bottom, x_shape[2] + left + right, x_shape[3])
    out_size = dy.shape[1:3]
    tiling = (
        window.strides == window.kernel
        and window.dilation == (1, 1)
        and all(count * stride == extent for count, stride, extent in zip(out_size, window.strides, padded[1:3]))
    )
    dxp = (np.empty if tiling else np.zeros)(padded, dy.dtype)

    def shard(part: slice) -> None:
        spread([dxp[part][index] for index in offset_slices(window, out_size)], dy[part], part, tiling)

    parallel.run(shard, _parts(window, dy))
    return crop_padding(dxp, window.pads)


def _compiles(compiled: str | None, window: Window, x: np.ndarray, record: np.ndarray | None) -> bool:
    """Whether the ``compiled`` kernel takes this pooling: an undilated window on float32, a uint8 record."""
    return (
        compiled in COMPILED
        and window.dilation == (1, 1)
        and (record is None or record.dtype == np.uint8)
        and kernels.takes(np.ascontiguousarray(x))
    )


def _geometry(window: Window) -> tuple[int, int, int, int, int, int]:
    """``(kernel height, kernel width, stride, stride, pad top, pad left)``, as the kernels take it."""
    (kh, kw), (sh, sw), ((top, _), (left, _)) = window.kernel, window.strides, window.pads
    return (kh, kw, sh, sw, top, left)


def _parts(window: Window, y: np.ndarray) -> list[slice]:
    """The shards of a pooling of output (or output gradient) ``y``: a pass per kernel offset over the output,
    reading an input about the strides' area times as large."""
    (kh, kw), (sh, sw) = window.kernel, window.strides
    return costs.shards(len(y), costs.Work.passes(y[0].size, kh * kw, y.itemsize, arrays=1 + sh * sw))
