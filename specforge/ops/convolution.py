"""Convolutions, transposed convolutions and their gradients, each on the engine that suits it.

Three engines compute a convolution (see their modules for how and why):

- ``nchwc``: onnxruntime's NCHWc kernels, for float32 with channel counts they take
  (:func:`specforge.ops.nchwc.supports`); the input gradient runs there too;
- ``taps``: one matrix product per kernel tap, for one group, stride 1 and at least
  ``taps.MIN_CHANNELS`` input channels; the input gradient of any one-group convolution takes
  this form when the forward did not run on NCHWc;
- ``im2col``: one copy and one GEMM, for everything else (strides, depthwise, few channels).

The forward picks the engine once per batch and splits the batch across the cores
(:mod:`specforge.ops.parallel`); its record keeps what the backward needs on that engine (the
input, the padded input per shard, or the im2col columns per shard), so the backward computes the
gradients the forward's engine implies. Kernels are taken as Keras stores them: ``(KH, KW, Cin,
Cout)``, depthwise ``(KH, KW, C, depth multiplier)``, transposed ``(KH, KW, filters, Cin)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from specforge.ops import costs, nchwc, parallel, taps
from specforge.ops.epilogue import (
    ActivationFunction,
    Rectifier,
    activation_gradient,
    add_bias_and_activate,
    epilogue_work,
)
from specforge.ops.im2col import (
    columns,
    depthwise_kernel_gradient,
    grouped_conv,
    grouped_input_gradient,
    grouped_kernel_gradient,
    scattered_input_gradient,
    tap_major_columns,
)
from specforge.ops.scratch import column_sums, scratch
from specforge.ops.window import Frame, Window, crop_padding, pad_image

#: The engines, as a convolution record names them.
NCHWC, TAPS, IM2COL = "nchwc", "taps", "im2col"
#: Most input channels for which a kernel gradient on the NCHWc engine copies its columns tap-major
#: (:func:`specforge.ops.im2col.tap_major_columns`): with 1 to 3 channels that copy is 1.5-7x cheaper than
#: im2col's; from 6 on, no cheaper, and from 16 on, dearer.
TAP_MAJOR_CHANNELS = 3


@dataclass(frozen=True)
class ConvRecord:
    """What a convolution's backward needs; a layer keeps it as its cache and hands it back.

    ``kept`` is the forward's input (``nchwc``), or per shard its padded input (``taps``) or its im2col
    columns (``im2col``).
    """

    engine: str
    window: Window
    kernel: np.ndarray
    depthwise: bool
    has_bias: bool
    parts: list[slice]
    x_shape: tuple[int, ...]
    activation: ActivationFunction | None
    y: np.ndarray
    kept: Any

    @property
    def groups(self) -> int:
        return self.x_shape[3] if self.depthwise else 1


@dataclass(frozen=True)
class ConvTransposeRecord:
    """What a transposed convolution's backward needs."""

    x: np.ndarray
    kernel: np.ndarray
    frame: Frame
    has_bias: bool
    activation: ActivationFunction | None
    y: np.ndarray


def engine_of(window: Window, groups: int, channels: int, filters: int, dtype: np.dtype) -> str:
    """The engine a convolution's forward runs on."""
    if nchwc.supports(groups, channels, filters, dtype):
        return NCHWC
    if taps.takes_forward(window, groups, channels):
        return TAPS
    return IM2COL


def conv(
    x: np.ndarray,
    kernel: np.ndarray,
    window: Window,
    bias: np.ndarray | None = None,
    activation: ActivationFunction | None = None,
) -> tuple[np.ndarray, ConvRecord]:
    """``(y, record)``: the convolution of NHWC ``x`` with ``kernel`` (KH, KW, Cin, Cout) over ``window``, plus
    ``bias``, through ``activation`` applied in place."""
    return _convolve(x, kernel, window, bias, activation, depthwise=False)


def depthwise_conv(
    x: np.ndarray,
    kernel: np.ndarray,
    window: Window,
    bias: np.ndarray | None = None,
    activation: ActivationFunction | None = None,
) -> tuple[np.ndarray, ConvRecord]:
    """As :func:`conv`, each input channel with its own ``kernel[..., c, :]`` (KH, KW, C, M): output channel
    ``c * M + m``."""
    return _convolve(x, kernel, window, bias, activation, depthwise=True)


def conv_gradients(
    record: ConvRecord,
    dy: np.ndarray,
    need_dx: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """``(dx, dkernel, dbias)`` of the convolution that made ``record``, given its output gradient ``dy`` (after
    the fused activation); ``dx`` is None unless ``need_dx``, ``dbias`` None for a forward without bias."""
    window, kernel, engine = record.window, record.kernel, record.engine
    one_group = record.groups == 1
    dtype = np.result_type(dy, kernel)
    n, height, width, channels = record.x_shape
    (top, bottom), (left, right) = window.pads
    padded = (height + top + bottom, width + left + right)
    # a strided one-group convolution's input gradient is scattered back from each tap; otherwise, where the
    # forward ran on onnxruntime's kernels, so does the input gradient (unpadded); the tap products give it
    # padded, for one group; im2col for the others
    scattered_dx = need_dx and one_group and window.strides != (1, 1)
    tap_dx = need_dx and not scattered_dx and one_group and engine != NCHWC
    tap_dkernel = engine == TAPS or (engine == NCHWC and taps.takes_forward(window, record.groups, channels))
    dx = np.empty((n, *padded, channels) if tap_dx else record.x_shape if need_dx else (0,), dtype)
    grouped = _to_grouped(kernel, record.depthwise)
    nchwc_dx = need_dx and not scattered_dx and engine == NCHWC
    flipped = nchwc.gradient_filter(kernel, not one_group) if nchwc_dx else None

    def shard(index: int) -> tuple[np.ndarray, np.ndarray | None]:
        part = record.parts[index]
        dz = activation_gradient(record.activation, record.y[part], dy[part])
        grid: Any = None
        plan: Any = None
        if tap_dx or tap_dkernel:
            plan = taps.TapPlan.of(window, (part.stop - part.start, *padded))
            grid = taps.gradient_grid(dz, plan, dtype)
        if tap_dkernel:
            xp = (
                record.kept[index]
                if engine == TAPS
                else np.ascontiguousarray(pad_image(record.kept[part], window.pads))
            )
            dkernel = taps.kernel_gradient(xp, grid, plan, kernel.shape)
        elif engine == NCHWC and one_group and channels <= TAP_MAJOR_CHANNELS:
            dkernel = (tap_major_columns(record.kept[part], window) @ dz.reshape(-1, dz.shape[-1])).reshape(
                kernel.shape
            )
        elif engine == IM2COL or one_group:
            cols = record.kept[index] if engine == IM2COL else columns(record.kept[part], window, 1)
            dkernel = _from_grouped(grouped_kernel_gradient(cols, dz, grouped.shape), record.depthwise)
        else:
            dkernel = depthwise_kernel_gradient(record.kept[part], dz, window).reshape(kernel.shape)
        if scattered_dx:
            scattered_input_gradient(dz, kernel, window, dx[part])
        elif nchwc_dx:
            nchwc.input_gradient(dz, kernel, window, dx[part], not one_group, flipped)
        elif tap_dx:
            taps.input_gradient(grid, kernel, plan, dx[part].reshape(-1, channels))
        elif need_dx:
            grouped_input_gradient(grouped, window, dz, dx[part])
        return dkernel, column_sums(dz.reshape(-1, dz.shape[-1])) if record.has_bias else None

    results = parallel.run(shard, range(len(record.parts)))
    dkernel = parallel.sum_in_order([dkernel for dkernel, _ in results])
    dbias = parallel.sum_in_order([dbias for _, dbias in results if dbias is not None]) if record.has_bias else None
    if not need_dx:
        return None, dkernel, dbias
    return (crop_padding(dx, window.pads) if tap_dx else dx), dkernel, dbias


def conv_transpose(
    x: np.ndarray,
    kernel: np.ndarray,
    frame: Frame,
    bias: np.ndarray | None = None,
    activation: ActivationFunction | None = None,
) -> tuple[np.ndarray, ConvTransposeRecord]:
    """``(y, record)``: the transposed convolution of NHWC ``x`` with ``kernel`` (KH, KW, filters, Cin), the
    ``frame`` of its output, plus ``bias``, through ``activation``: the input gradient of the convolution
    over ``frame.window`` (on the NCHWc kernels or the tap products), cut to the frame."""
    dtype = np.result_type(x, kernel)
    filters = kernel.shape[2]
    y = np.zeros((len(x), *frame.size, filters), dtype)
    on_nchwc_kernels = nchwc.supports(1, filters, kernel.shape[3], dtype)
    flipped = nchwc.gradient_filter(kernel) if on_nchwc_kernels else None

    def shard(part: slice) -> None:
        if on_nchwc_kernels:
            full = scratch(
                ("transposed convolution image", frame), (part.stop - part.start, *frame.full, filters), dtype
            )
            nchwc.input_gradient(x[part], kernel, frame.window, full, blocked=flipped)
        else:
            plan = taps.TapPlan.of(frame.window, (part.stop - part.start, *frame.full))
            full = scratch(("transposed convolution image", plan), (plan.grid_rows, filters), dtype)
            taps.input_gradient(taps.gradient_grid(x[part], plan, dtype), kernel, plan, full)
            full = full.reshape(*plan.grid, -1)
        y[part][frame.output_region()] = full[frame.full_region()]
        add_bias_and_activate(y[part], bias, activation)

    pixels = x.shape[1] * x.shape[2]
    parallel.run(shard, costs.shards(len(x), _work(x, pixels, kernel, y[0].size, activation, on_nchwc_kernels)))
    return y, ConvTransposeRecord(x, kernel, frame, bias is not None, activation, y)


def conv_transpose_gradients(
    record: ConvTransposeRecord,
    dy: np.ndarray,
    need_dx: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """``(dx, dkernel, dbias)`` of the transposed convolution that made ``record``: the input gradient is the
    convolution of the output gradient (placed back on the full image), the kernel gradient that
    convolution's kernel gradient with the input as its output gradient."""
    frame, kernel = record.frame, record.kernel
    dz = activation_gradient(record.activation, record.y, dy)
    dbias = column_sums(dz.reshape(-1, dz.shape[-1])) if record.has_bias else None
    dfull = np.zeros((len(dz), *frame.full, dz.shape[-1]), np.result_type(dz, kernel))
    dfull[frame.full_region()] = dz[frame.output_region()]
    dx, convolution = conv(dfull, kernel, frame.window)
    dkernel = conv_gradients(convolution, record.x, need_dx=False)[1]
    return (dx if need_dx else None), dkernel, dbias


def _convolve(
    x: np.ndarray,
    kernel: np.ndarray,
    window: Window,
    bias: np.ndarray | None,
    activation: ActivationFunction | None,
    depthwise: bool,
) -> tuple[np.ndarray, ConvRecord]:
    channels = x.shape[3]
    groups = channels if depthwise else 1
    filters = channels * kernel.shape[3] if depthwise else kernel.shape[3]
    dtype = np.result_type(x, kernel)
    out_h, out_w = window.output_size(x.shape[1:3])
    y = np.empty((len(x), out_h, out_w, filters), dtype)
    engine = engine_of(window, groups, channels, filters, dtype)
    parts = costs.shards(len(x), _work(x, out_h * out_w, kernel, y[0].size, activation, engine == NCHWC))
    if engine == NCHWC:
        relu = isinstance(activation, Rectifier) and activation.name == "relu" and activation.is_plain
        finish = None if relu else activation
        blocked = nchwc.forward_filter(kernel, groups > 1)

        def nchwc_shard(part: slice) -> None:
            nchwc.forward(x[part], kernel, bias, window, relu, y[part], groups > 1, blocked)
            add_bias_and_activate(y[part], None, finish)

        parallel.run(nchwc_shard, parts)
        kept: Any = x
    elif engine == TAPS:

        def tap_shard(part: slice) -> np.ndarray:
            xp = np.ascontiguousarray(pad_image(x[part], window.pads))
            plan = taps.TapPlan.of(window, xp.shape)
            grid = scratch(("tap output grid", plan), (plan.grid_rows, filters), dtype)
            taps.forward(xp, kernel, plan, grid, bias, activation)
            y[part] = plan.outputs(grid)
            return xp

        kept = parallel.run(tap_shard, parts)
    else:
        grouped = _to_grouped(kernel, depthwise)

        def im2col_shard(part: slice) -> np.ndarray:
            cols = grouped_conv(x[part], grouped, window, y[part])
            add_bias_and_activate(y[part], bias, activation)
            return cols

        kept = parallel.run(im2col_shard, parts)
    return y, ConvRecord(engine, window, kernel, depthwise, bias is not None, parts, x.shape, activation, y, kept)


def _work(
    x: np.ndarray,
    pixels: int,
    kernel: np.ndarray,
    outputs: int,
    activation: ActivationFunction | None,
    on_nchwc_kernels: bool,
) -> costs.Work:
    """A convolution's work per example: one product of the kernel per pixel (of the output; of the input for
    a transposed convolution), the input and the ``outputs`` elements moved once, and the bias and activation
    over the output; per shard, one run of the NCHWc kernels or a product per kernel tap, each reading the
    weights again."""
    offsets = kernel.shape[0] * kernel.shape[1]
    return costs.Work(
        flops=2.0 * pixels * kernel.size,
        bytes=float(x.itemsize * (x[0].size + outputs)),
        weights=float(kernel.size),
        calls=0.0 if on_nchwc_kernels else float(offsets),
        sessions=1.0 if on_nchwc_kernels else 0.0,
    ) + epilogue_work(outputs, activation, x.itemsize)


def _to_grouped(kernel: np.ndarray, depthwise: bool) -> np.ndarray:
    """The kernel as ``(G, KH, KW, Cin per group, Cout per group)``."""
    return kernel.transpose(2, 0, 1, 3)[:, :, :, None, :] if depthwise else kernel[None]


def _from_grouped(grouped: np.ndarray, depthwise: bool) -> np.ndarray:
    return grouped[:, :, :, 0, :].transpose(1, 2, 0, 3) if depthwise else grouped[0]
