"""Pooling: MaxPooling2D, AveragePooling2D and their global forms (Keras 3 options).

Windowed pooling reduces over the kernel offsets of the padded input (``ops.pool`` hands a kind
one strided view per offset; the kind's ``reduce`` and ``spread`` are the math).

Max pooling sends the gradient of a window to its first maximal element in row-major
order (as TensorFlow and PyTorch do), so a window of equal values (e.g. all zeros after
a ReLU) passes its whole gradient to one pixel.
"""

from __future__ import annotations

import functools
import operator
from typing import Any, ClassVar

import numpy as np

from specforge import ops
from specforge.base.layout import NCHW, NHWC
from specforge.layers.base import PADDING_SCHEMA, Layer, Params, Shape, as_pair, int_or_pair
from specforge.layers.windows import plan_window, require_image
from specforge.options.activations import ActivationFunction

_STRIDES = int_or_pair("Step of the window along height and width; null (the default) means pool_size.")


class _Pooling2D(Layer):
    """What MaxPooling2D and AveragePooling2D share: options, shapes and the ONNX node."""

    schema = {
        "pool_size": int_or_pair("Height and width of the pooling window; an int for a square window.", default=2),
        "strides": {**_STRIDES, "oneOf": [*_STRIDES["oneOf"], {"type": "null"}], "default": None},
        "padding": PADDING_SCHEMA,
    }
    examples = [
        ({}, (7, 6, 3)),
        ({"pool_size": [3, 2], "strides": [2, 1], "padding": "same"}, (7, 6, 2)),
        ({"pool_size": 3, "strides": 2, "padding": "same"}, (6, 5, 2)),
        ({"pool_size": [2, 3], "strides": 1}, (5, 6, 1)),
    ]
    onnx_op: ClassVar[str]
    onnx_attrs: ClassVar[dict[str, Any]] = {}
    #: the value of padded pixels, neutral for the reduction (0 for a sum, -inf for a maximum)
    pad_value: ClassVar[float] = 0.0
    #: the ops layer's compiled kernel that computes what ``reduce`` and ``spread`` do (``ops.pool``)
    compiled: ClassVar[str]

    def window(self, input_shape: Shape) -> ops.Window:
        height, width, _ = require_image(self.type, input_shape)
        pool = as_pair(self.config["pool_size"])
        strides = pool if self.config["strides"] is None else as_pair(self.config["strides"])
        return plan_window(self.type, "pool_size", (height, width), pool, strides, (1, 1), self.config["padding"])

    def output_shape(self, input_shape: Shape) -> Shape:
        return (*self.window(input_shape).output_size((input_shape[0], input_shape[1])), input_shape[2])

    def forward(
        self,
        params: Params,
        x: np.ndarray,
        training: bool = False,
        rng: np.random.Generator | None = None,
        activation: ActivationFunction | None = None,
    ) -> tuple[np.ndarray, Any]:
        window, size = self.window(x.shape[1:]), x.shape[1:3]
        record = self.new_record((len(x), *window.output_size(size), x.shape[3]), window) if training else None

        def reduce(slices: list[np.ndarray], out: np.ndarray, part: slice) -> None:
            self.reduce(slices, window, size, out, None if record is None else record[part])

        y = ops.pool(x, window, reduce, self.pad_value, self.compiled)
        # An inference forward keeps its input instead, for a backward (a gradient check) to redo the record.
        return y, (x.shape, record, window, size, None if training else x)

    def backward(
        self, params: Params, cache: Any, dy: np.ndarray, need_dx: bool = True
    ) -> tuple[np.ndarray | None, Params]:
        if not need_dx:
            return None, {}
        x_shape, record, window, size, x = cache
        if x is not None:
            record = self.forward(params, x, training=True)[1][1]

        def spread(targets: list[np.ndarray], dy_part: np.ndarray, part: slice, tiling: bool) -> None:
            self.spread(targets, None if record is None else record[part], dy_part, window, size, tiling)

        return ops.pool_gradient(dy, x_shape, window, spread, self.compiled, record), {}

    def to_onnx(self, builder, params: Params, input_name: str) -> str:
        window = self.window(builder.shape(input_name))
        return builder.node(
            self.onnx_op,
            [builder.to_layout(input_name, NCHW)],
            hint=self.name,
            layout=NCHW,
            kernel_shape=list(window.kernel),
            strides=list(window.strides),
            pads=window.onnx_pads,
            **self.onnx_attrs,
        )

    # -- what a kind fills in -------------------------------------------------------------
    def new_record(self, shape: tuple[int, ...], window: ops.Window) -> np.ndarray | None:
        """What a training forward notes for the backward beside the output of ``shape`` (None: nothing)."""
        return None

    def reduce(
        self,
        slices: list[np.ndarray],
        window: ops.Window,
        size: tuple[int, int],
        out: np.ndarray,
        record: np.ndarray | None,
    ) -> None:
        """Write into ``out`` the pooled output from the input pixels under each kernel offset, and fill
        ``record`` (from ``new_record``; None in inference)."""
        raise NotImplementedError

    def spread(
        self,
        targets: list[np.ndarray],
        record: np.ndarray | None,
        dy: np.ndarray,
        window: ops.Window,
        size: tuple[int, int],
        tiling: bool,
    ) -> None:
        """Put the input gradient into the padded input's pixels under each kernel offset (``targets``):
        written when the windows tile the input (``tiling``), else added to the zeros there."""
        raise NotImplementedError

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch import modules

        kind = modules.MaxPooling if self.type.startswith("Max") else modules.AveragePooling
        return kind(node, params)


class MaxPooling2D(_Pooling2D):
    """A training forward records which kernel offset holds each window's first maximum (strictly greater
    than all before it), so that the backward sends each gradient there with one comparison per offset."""

    type = "MaxPooling2D"
    description = "Maximum over each pool_size window of an image, per channel."
    onnx_op = "MaxPool"
    pad_value = -np.inf
    compiled = "max"

    def new_record(self, shape, window):
        return np.zeros(shape, np.min_scalar_type(window.kernel[0] * window.kernel[1] - 1))

    def reduce(self, slices, window, size, out, record):
        np.copyto(out, slices[0])
        if record is None:
            for part in slices[1:]:
                np.maximum(out, part, out=out)
            return
        greater = np.empty(out.shape, bool)
        marks = np.empty(out.shape, record.dtype)
        for offset, part in enumerate(slices[1:], 1):
            np.greater(part, out, out=greater)
            np.maximum(out, part, out=out)
            # A later offset that is greater wins: the record is the largest offset that was.
            np.maximum(record, np.multiply(greater, record.dtype.type(offset), out=marks), out=record)

    def spread(self, targets, record, dy, window, size, tiling):
        chosen = np.empty(dy.shape, bool)
        gradient = None if tiling else np.empty_like(dy)
        for offset, target in enumerate(targets):
            np.equal(record, offset, out=chosen)
            if tiling:
                np.multiply(dy, chosen, out=target)
            else:
                target += np.multiply(dy, chosen, out=gradient)


class AveragePooling2D(_Pooling2D):
    type = "AveragePooling2D"
    description = (
        "Mean over each pool_size window of an image, per channel; with padding: same a window "
        "averages only its real (non-padded) pixels."
    )
    onnx_op = "AveragePool"
    onnx_attrs = {"count_include_pad": 0}
    compiled = "average"

    def reduce(self, slices, window, size, out, record):
        np.copyto(out, slices[0])
        for part in slices[1:]:
            out += part
        out /= self._counts(window, size, out.dtype)

    def spread(self, targets, record, dy, window, size, tiling):
        share = dy / self._counts(window, size, dy.dtype)
        for target in targets:
            if tiling:
                np.copyto(target, share)
            else:
                target += share

    @staticmethod
    def _counts(window: ops.Window, size: tuple[int, int], dtype: np.dtype) -> np.ndarray:
        """``(OH, OW, 1)``: how many real pixels each window covers."""
        real = ops.pad_image(np.ones((1, *size, 1), dtype=dtype), window.pads)
        out_size = window.output_size(size)
        covered = [real[index] for index in ops.offset_slices(window, out_size)]
        return functools.reduce(operator.add, covered)[0]


class _GlobalPooling2D(Layer):
    """A reduction over height and width, per channel."""

    schema = {
        "keepdims": {
            "type": "boolean",
            "default": False,
            "description": "Keep the spatial axes: output (1, 1, channels) instead of (channels,).",
        },
    }
    examples = [({}, (5, 4, 3)), ({"keepdims": True}, (3, 4, 2))]
    onnx_op: ClassVar[str]

    def output_shape(self, input_shape: Shape) -> Shape:
        channels = require_image(self.type, input_shape)[2]
        return (1, 1, channels) if self.config["keepdims"] else (channels,)

    def forward(
        self,
        params: Params,
        x: np.ndarray,
        training: bool = False,
        rng: np.random.Generator | None = None,
        activation: ActivationFunction | None = None,
    ) -> tuple[np.ndarray, Any]:
        require_image(self.type, x.shape[1:])
        flat = x.reshape(x.shape[0], -1, x.shape[3])
        y, cache = self.reduce(flat)
        return (y[:, None, None] if self.config["keepdims"] else y), (x.shape, cache)

    def backward(
        self, params: Params, cache: Any, dy: np.ndarray, need_dx: bool = True
    ) -> tuple[np.ndarray | None, Params]:
        if not need_dx:
            return None, {}
        x_shape, reduce_cache = cache
        dy = dy.reshape(x_shape[0], x_shape[3])
        return self.spread(dy, reduce_cache, x_shape[1] * x_shape[2]).reshape(x_shape), {}

    def to_onnx(self, builder, params: Params, input_name: str) -> str:
        pooled = builder.node(
            self.onnx_op,
            [builder.to_layout(input_name, NCHW)],
            layout=NCHW,
            hint=self.name if self.config["keepdims"] else f"{self.name}_pooled",
        )
        if self.config["keepdims"]:
            return pooled
        return builder.node("Flatten", [pooled], hint=self.name, layout=NHWC, axis=1)

    def reduce(self, flat: np.ndarray) -> tuple[np.ndarray, Any]:
        """``(y, cache)`` for ``flat`` (N, H*W, C)."""
        raise NotImplementedError

    def spread(self, dy: np.ndarray, cache: Any, pixels: int) -> np.ndarray:
        """The ``(N, H*W, C)`` input gradient of ``dy`` (N, C)."""
        raise NotImplementedError

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import GlobalPooling

        return GlobalPooling(node, params)


class GlobalAveragePooling2D(_GlobalPooling2D):
    type = "GlobalAveragePooling2D"
    description = "Mean of each channel over the whole image."
    onnx_op = "GlobalAveragePool"

    def reduce(self, flat: np.ndarray) -> tuple[np.ndarray, Any]:
        return ops.position_sums(flat) / np.asarray(flat.shape[1], flat.dtype), None

    def spread(self, dy: np.ndarray, cache: Any, pixels: int) -> np.ndarray:
        return np.broadcast_to((dy / pixels)[:, None, :], (dy.shape[0], pixels, dy.shape[1]))


class GlobalMaxPooling2D(_GlobalPooling2D):
    type = "GlobalMaxPooling2D"
    description = (
        "Maximum of each channel over the whole image; the gradient goes to the first maximal pixel in row-major order."
    )
    onnx_op = "GlobalMaxPool"

    def reduce(self, flat: np.ndarray) -> tuple[np.ndarray, Any]:
        first = flat.argmax(axis=1)[:, None, :]
        return np.take_along_axis(flat, first, axis=1)[:, 0], first

    def spread(self, dy: np.ndarray, cache: Any, pixels: int) -> np.ndarray:
        dx = np.zeros((dy.shape[0], pixels, dy.shape[1]), dtype=dy.dtype)
        np.put_along_axis(dx, cache, dy[:, None, :], axis=1)
        return dx
