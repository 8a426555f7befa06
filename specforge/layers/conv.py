"""Convolutions: Conv2D and DepthwiseConv2D (Keras 3 options, kernels stored as Keras stores them).

Both are grouped convolutions (one group, or one group per input channel). A Conv2D with stride 1
and enough input channels runs as one matrix product per kernel tap (:mod:`specforge.ops.taps`);
the others as im2col and one GEMM (:func:`specforge.ops.im2col.grouped_conv`). The input
gradient of a Conv2D always takes the tap form. Each batch is split across the cores
(:mod:`specforge.ops.parallel`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from specforge.options.activations import ActivationFunction, Relu
from specforge.base.errors import SpecError
from specforge.options.initializers import compute_fans, initialize
from specforge.ops import nchwc, parallel, taps
from specforge.ops.epilogue import activation_gradient, add_bias_and_activate
from specforge.ops.im2col import (
    Window, columns, crop_padding, depthwise_kernel_gradient, grouped_conv, grouped_input_gradient,
    grouped_kernel_gradient, pad_image,
)
from specforge.ops.scratch import column_sums, scratch
from specforge.layers.base import (
    PADDING_SCHEMA, Layer, Params, Shape, activation_schema, as_pair, initializer_schema, int_or_pair,
)
from specforge.layers.windows import plan_window, require_image
from specforge.base.layout import NCHW

_USE_BIAS = {"type": "boolean", "default": True, "description": "Whether to add a learned bias per output channel."}
_COMMON_SCHEMA = {
    "kernel_size": int_or_pair("Height and width of the convolution window; an int for a square window."),
    "strides": int_or_pair("Step of the window along height and width.", default=1),
    "padding": PADDING_SCHEMA,
    "dilation_rate": int_or_pair("Spacing between kernel taps (atrous convolution); cannot be combined "
                                 "with strides > 1.", default=1),
    "activation": activation_schema(),
    "use_bias": _USE_BIAS,
}


def require_strides_or_dilation(layer: Layer) -> None:
    """SpecError unless the layer's ``strides`` or its ``dilation_rate`` is 1 (Keras' rule for convolutions)."""
    strides, dilation = as_pair(layer.config["strides"]), as_pair(layer.config["dilation_rate"])
    if max(strides) > 1 and max(dilation) > 1:
        raise SpecError(f"{layer.type} cannot combine strides > 1 with dilation_rate > 1 (received "
                        f"strides={layer.config['strides']}, dilation_rate={layer.config['dilation_rate']}); "
                        f"use strides: 1 or dilation_rate: 1")


@dataclass
class _Saved:
    """What a convolution's backward needs: the shards of the batch, the fused activation with the
    output it produced, and what the forward kept for the kernel gradient: its input when it ran on
    onnxruntime's kernels, else per shard its padded input (tap products) or its im2col columns."""

    window: Window
    parts: list[slice]
    x_shape: Shape
    activation: ActivationFunction | None
    y: np.ndarray
    x: np.ndarray | None = None
    tap_inputs: list[np.ndarray] | None = None
    cols: list[np.ndarray] | None = None


class _Convolution(Layer):
    """What Conv2D and DepthwiseConv2D share; a subclass maps its kernel to and from the grouped form."""

    fuses_activation = True

    #: the option naming the kernel's initializer
    kernel_initializer_option: ClassVar[str]

    def __init__(self, config: dict[str, Any] | None = None, name: str | None = None):
        super().__init__(config, name)
        require_strides_or_dilation(self)

    # -- the kind's kernel ------------------------------------------------------------
    def kernel_shape(self, channels: int) -> Shape:
        raise NotImplementedError

    def out_channels(self, channels: int) -> int:
        raise NotImplementedError

    def groups(self, channels: int) -> int:
        raise NotImplementedError

    @staticmethod
    def to_grouped(kernel: np.ndarray) -> np.ndarray:
        """The kernel as ``(G, KH, KW, Cin per group, Cout per group)``."""
        raise NotImplementedError

    @staticmethod
    def from_grouped(grouped: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def onnx_weight(kernel: np.ndarray) -> np.ndarray:
        """The kernel in ONNX Conv's ``(M, C/group, KH, KW)`` layout."""
        raise NotImplementedError

    # -- shapes and sizes -----------------------------------------------------------------
    def window(self, input_shape: Shape) -> Window:
        height, width, _ = require_image(self.type, input_shape)
        return plan_window(self.type, "kernel_size", (height, width), as_pair(self.config["kernel_size"]),
                           as_pair(self.config["strides"]), as_pair(self.config["dilation_rate"]),
                           self.config["padding"])

    def output_shape(self, input_shape: Shape) -> Shape:
        out_h, out_w = self.window(input_shape).output_size(tuple(input_shape[:2]))
        return (out_h, out_w, self.out_channels(input_shape[2]))

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        require_image(self.type, input_shape)
        shapes = {"kernel": self.kernel_shape(input_shape[2])}
        if self.config["use_bias"]:
            shapes["bias"] = (self.out_channels(input_shape[2]),)
        return shapes

    def init_params(self, input_shape: Shape, rng: np.random.Generator) -> Params:
        shapes = self.param_shapes(input_shape)
        fan_in, fan_out = compute_fans(shapes["kernel"])
        params = {"kernel": initialize(self.config[self.kernel_initializer_option], shapes["kernel"],
                                       fan_in, fan_out, rng, dtype=np.float32)}
        if "bias" in shapes:
            params["bias"] = initialize(self.config["bias_initializer"], shapes["bias"], fan_in, fan_out, rng,
                                        dtype=np.float32)
        return params

    def flops(self, input_shape: Shape) -> int:
        out_h, out_w, _ = self.output_shape(input_shape)
        return 2 * out_h * out_w * int(np.prod(self.kernel_shape(input_shape[2])))

    # -- math ---------------------------------------------------------------------------------
    def forward(self, params: Params, x: np.ndarray, training: bool = False, rng: np.random.Generator | None = None,
                activation: ActivationFunction | None = None) -> tuple[np.ndarray, Any]:
        window = self.window(x.shape[1:])
        kernel, bias = params["kernel"], params.get("bias")
        dtype = np.result_type(x, kernel)
        groups = self.groups(x.shape[3])
        parts = parallel.shards(len(x), self.flops(x.shape[1:]))
        y = np.empty((len(x), *self.output_shape(x.shape[1:])), dtype)
        if nchwc.supports(groups, x.shape[3], y.shape[3], dtype):
            relu = isinstance(activation, Relu) and activation.is_plain
            finish = None if relu else activation

            def nchwc_shard(part: slice) -> None:
                nchwc.forward(x[part], kernel, bias, window, relu, y[part], depthwise=groups > 1)
                add_bias_and_activate(y[part], None, finish)

            parallel.run(nchwc_shard, parts)
            return y, _Saved(window, parts, x.shape, activation, y, x=x)
        if taps.takes_forward(window, groups, x.shape[3]):
            def tap_shard(part: slice) -> np.ndarray:
                xp = np.ascontiguousarray(pad_image(x[part], window.pads))
                plan = taps.TapPlan.of(window, xp.shape)
                grid = scratch(("tap output grid", plan), (plan.grid_rows, kernel.shape[-1]), dtype)
                taps.forward(xp, kernel, plan, grid, bias, activation)
                y[part] = plan.outputs(grid)
                return xp

            return y, _Saved(window, parts, x.shape, activation, y, tap_inputs=parallel.run(tap_shard, parts))
        grouped = self.to_grouped(kernel)

        def im2col_shard(part: slice) -> np.ndarray:
            cols = grouped_conv(x[part], grouped, window, y[part])
            add_bias_and_activate(y[part], bias, activation)
            return cols

        cols = parallel.run(im2col_shard, parts)
        return y, _Saved(window, parts, x.shape, activation, y, cols=cols)

    def backward(self, params: Params, cache: Any, dy: np.ndarray,
                 need_dx: bool = True) -> tuple[np.ndarray | None, Params]:
        saved: _Saved = cache
        window, kernel = saved.window, params["kernel"]
        grouped = self.to_grouped(kernel)
        one_group = grouped.shape[0] == 1
        dtype = np.result_type(dy, kernel)
        n, height, width, channels = saved.x_shape
        (top, bottom), (left, right) = window.pads
        padded = (height + top + bottom, width + left + right)
        # where the forward ran on onnxruntime's kernels, so does the input gradient (unpadded); the
        # tap products give it padded
        nchwc_dx = need_dx and saved.x is not None
        tap_dx = need_dx and one_group and not nchwc_dx
        tap_dkernel = saved.tap_inputs is not None or (
            saved.x is not None and taps.takes_forward(window, grouped.shape[0], channels))
        dx = None
        if need_dx:
            dx = np.empty((n, *padded, channels) if tap_dx else saved.x_shape, dtype)

        def shard(index: int) -> tuple[np.ndarray, np.ndarray]:
            part = saved.parts[index]
            dz = activation_gradient(saved.activation, saved.y[part], dy[part])
            grid = plan = None
            if tap_dx or tap_dkernel:
                plan = taps.TapPlan.of(window, (part.stop - part.start, *padded))
                grid = taps.gradient_grid(dz, plan, dtype)
            if tap_dkernel:
                xp = (saved.tap_inputs[index] if saved.tap_inputs is not None
                      else np.ascontiguousarray(pad_image(saved.x[part], window.pads)))
                dkernel = taps.kernel_gradient(xp, grid, plan, kernel.shape)
            elif one_group or saved.cols is not None:
                cols = saved.cols[index] if saved.cols is not None else columns(saved.x[part], window, 1)
                dkernel = self.from_grouped(grouped_kernel_gradient(cols, dz, grouped.shape))
            else:
                dkernel = depthwise_kernel_gradient(saved.x[part], dz, window).reshape(kernel.shape)
            if nchwc_dx:
                nchwc.input_gradient(dz, kernel, window, dx[part], depthwise=not one_group)
            elif tap_dx:
                taps.input_gradient(grid, kernel, plan, dx[part].reshape(-1, channels))
            elif need_dx:
                grouped_input_gradient(grouped, window, dz, dx[part])
            return dkernel, column_sums(dz.reshape(-1, dz.shape[-1]))

        results = parallel.run(shard, range(len(saved.parts)))
        grads = {"kernel": parallel.sum_in_order([dkernel for dkernel, _ in results])}
        if "bias" in params:
            grads["bias"] = parallel.sum_in_order([dbias for _, dbias in results])
        if tap_dx:
            dx = crop_padding(dx, window.pads)
        return dx, grads

    # -- export -----------------------------------------------------------------------------------
    def to_onnx(self, builder, params: Params, input_name: str) -> str:
        input_shape = builder.shape(input_name)
        window = self.window(input_shape)
        inputs = [builder.to_layout(input_name, NCHW),
                  builder.initializer(self.onnx_weight(params["kernel"]).astype(np.float32), f"{self.name}_kernel")]
        if "bias" in params:
            inputs.append(builder.initializer(params["bias"].astype(np.float32), f"{self.name}_bias"))
        return builder.node("Conv", inputs, hint=self.name, layout=NCHW, kernel_shape=list(window.kernel),
                            strides=list(window.strides), dilations=list(window.dilation), pads=window.onnx_pads,
                            group=self.groups(input_shape[2]))


class Conv2D(_Convolution):
    type = "Conv2D"
    description = "2-D convolution over an image (height, width, channels) with a learned kernel per output channel."
    schema = {
        "filters": {"type": "integer", "minimum": 1, "description": "Number of output channels."},
        **_COMMON_SCHEMA,
        "kernel_initializer": initializer_schema("glorot_uniform", "kernel (height, width, in, out)"),
        "bias_initializer": initializer_schema("zeros", "bias"),
    }
    required = ("filters", "kernel_size")
    examples = [
        ({"filters": 4, "kernel_size": [3, 2]}, (7, 6, 3)),
        ({"filters": 2, "kernel_size": [2, 3], "strides": [2, 1], "padding": "same"}, (7, 6, 3)),
        ({"filters": 3, "kernel_size": 3, "dilation_rate": [2, 1], "use_bias": False}, (7, 6, 2)),
        ({"filters": 2, "kernel_size": [3, 4], "strides": 2, "padding": "same"}, (5, 7, 3)),
        ({"filters": 2, "kernel_size": 2, "strides": 3}, (7, 6, 1)),
        ({"filters": 2, "kernel_size": [2, 3], "dilation_rate": 2, "padding": "same"}, (6, 5, 2)),
        # enough input channels for the tap products (specforge.ops.taps.MIN_CHANNELS)
        ({"filters": 2, "kernel_size": 2, "padding": "same"}, (3, 4, 32)),
    ]
    kernel_initializer_option = "kernel_initializer"

    def kernel_shape(self, channels: int) -> Shape:
        return (*as_pair(self.config["kernel_size"]), channels, self.config["filters"])

    def out_channels(self, channels: int) -> int:
        return self.config["filters"]

    def groups(self, channels: int) -> int:
        return 1

    @staticmethod
    def to_grouped(kernel: np.ndarray) -> np.ndarray:
        return kernel[None]

    @staticmethod
    def from_grouped(grouped: np.ndarray) -> np.ndarray:
        return grouped[0]

    @staticmethod
    def onnx_weight(kernel: np.ndarray) -> np.ndarray:
        return kernel.transpose(3, 2, 0, 1)


class DepthwiseConv2D(_Convolution):
    type = "DepthwiseConv2D"
    description = ("Depthwise 2-D convolution: each input channel is convolved with its own depth_multiplier "
                   "kernels, giving channels * depth_multiplier outputs.")
    schema = {
        "kernel_size": _COMMON_SCHEMA["kernel_size"],
        "strides": _COMMON_SCHEMA["strides"],
        "padding": PADDING_SCHEMA,
        "depth_multiplier": {"type": "integer", "minimum": 1, "default": 1,
                             "description": "Output channels per input channel (input c, multiplier m -> "
                                            "output c * depth_multiplier + m)."},
        **{key: _COMMON_SCHEMA[key] for key in ("dilation_rate", "activation", "use_bias")},
        "depthwise_initializer": initializer_schema("glorot_uniform", "depthwise kernel (height, width, "
                                                                      "channels, depth_multiplier)"),
        "bias_initializer": initializer_schema("zeros", "bias"),
    }
    required = ("kernel_size",)
    examples = [
        ({"kernel_size": [3, 2]}, (7, 6, 3)),
        ({"kernel_size": 3, "depth_multiplier": 2, "strides": [1, 2], "padding": "same"}, (7, 6, 3)),
        ({"kernel_size": [2, 3], "dilation_rate": 2, "padding": "same", "depth_multiplier": 3, "use_bias": False},
         (6, 7, 2)),
        ({"kernel_size": 2, "strides": 2}, (5, 7, 2)),
    ]
    kernel_initializer_option = "depthwise_initializer"

    def kernel_shape(self, channels: int) -> Shape:
        return (*as_pair(self.config["kernel_size"]), channels, self.config["depth_multiplier"])

    def out_channels(self, channels: int) -> int:
        return channels * self.config["depth_multiplier"]

    def groups(self, channels: int) -> int:
        return channels

    @staticmethod
    def to_grouped(kernel: np.ndarray) -> np.ndarray:
        return kernel.transpose(2, 0, 1, 3)[:, :, :, None, :]

    @staticmethod
    def from_grouped(grouped: np.ndarray) -> np.ndarray:
        return grouped[:, :, :, 0, :].transpose(1, 2, 0, 3)

    @staticmethod
    def onnx_weight(kernel: np.ndarray) -> np.ndarray:
        kh, kw, channels, multiplier = kernel.shape
        return kernel.reshape(kh, kw, channels * multiplier).transpose(2, 0, 1)[:, None]
