"""Convolutions: Conv2D and DepthwiseConv2D (Keras 3 options, kernels stored as Keras stores them).

Both compute through the ops layer (``ops.conv``, ``ops.depthwise_conv`` and ``ops.conv_gradients``),
which chooses the engine and splits the batch across the cores.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from specforge import ops
from specforge.base.errors import SpecError
from specforge.base.layout import NCHW
from specforge.layers.base import (
    PADDING_SCHEMA,
    Layer,
    Params,
    Shape,
    activation_schema,
    as_pair,
    initializer_schema,
    int_or_pair,
    kernel_and_bias,
)
from specforge.layers.windows import plan_window, require_image
from specforge.options.activations import ActivationFunction
from specforge.options.initializers import compute_fans, initialize

_USE_BIAS = {"type": "boolean", "default": True, "description": "Whether to add a learned bias per output channel."}
_COMMON_SCHEMA = {
    "kernel_size": int_or_pair("Height and width of the convolution window; an int for a square window."),
    "strides": int_or_pair("Step of the window along height and width.", default=1),
    "padding": PADDING_SCHEMA,
    "dilation_rate": int_or_pair(
        "Spacing between kernel taps (atrous convolution); cannot be combined with strides > 1.", default=1
    ),
    "activation": activation_schema(),
    "use_bias": _USE_BIAS,
}


def require_strides_or_dilation(layer: Layer) -> None:
    """SpecError unless the layer's ``strides`` or its ``dilation_rate`` is 1 (Keras' rule for convolutions)."""
    strides, dilation = as_pair(layer.config["strides"]), as_pair(layer.config["dilation_rate"])
    if max(strides) > 1 and max(dilation) > 1:
        raise SpecError(
            f"{layer.type} cannot combine strides > 1 with dilation_rate > 1 (received "
            f"strides={layer.config['strides']}, dilation_rate={layer.config['dilation_rate']}); "
            f"use strides: 1 or dilation_rate: 1"
        )


class _Convolution(Layer):
    """What Conv2D and DepthwiseConv2D share; a subclass gives its kernel's shape, its output channels and its
    groups."""

    fuses_activation = True
    #: whether each input channel has kernels of its own (``ops.depthwise_conv``) rather than all of them
    depthwise: ClassVar[bool] = False

    #: the option naming the kernel's initializer
    kernel_initializer_option: ClassVar[str]

    def __init__(self, config: dict[str, Any], name: str | None = None):
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
    def onnx_weight(kernel: np.ndarray) -> np.ndarray:
        """The kernel in ONNX Conv's ``(M, C/group, KH, KW)`` layout."""
        raise NotImplementedError

    # -- shapes and sizes -----------------------------------------------------------------
    def window(self, input_shape: Shape) -> ops.Window:
        height, width, _ = require_image(self.type, input_shape)
        return plan_window(
            self.type,
            "kernel_size",
            (height, width),
            as_pair(self.config["kernel_size"]),
            as_pair(self.config["strides"]),
            as_pair(self.config["dilation_rate"]),
            self.config["padding"],
        )

    def output_shape(self, input_shape: Shape) -> Shape:
        out_h, out_w = self.window(input_shape).output_size((input_shape[0], input_shape[1]))
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
        params = {
            "kernel": initialize(
                self.config[self.kernel_initializer_option], shapes["kernel"], fan_in, fan_out, rng, dtype=np.float32
            )
        }
        if "bias" in shapes:
            params["bias"] = initialize(
                self.config["bias_initializer"], shapes["bias"], fan_in, fan_out, rng, dtype=np.float32
            )
        return params

    def flops(self, input_shape: Shape) -> int:
        out_h, out_w, _ = self.output_shape(input_shape)
        return 2 * out_h * out_w * int(np.prod(self.kernel_shape(input_shape[2])))

    # -- math ---------------------------------------------------------------------------------
    def forward(
        self,
        params: Params,
        x: np.ndarray,
        training: bool = False,
        rng: np.random.Generator | None = None,
        activation: ActivationFunction | None = None,
    ) -> tuple[np.ndarray, Any]:
        convolve = ops.depthwise_conv if self.depthwise else ops.conv
        return convolve(x, params["kernel"], self.window(x.shape[1:]), params.get("bias"), activation)

    def backward(
        self, params: Params, cache: Any, dy: np.ndarray, need_dx: bool = True
    ) -> tuple[np.ndarray | None, Params]:
        dx, dkernel, dbias = ops.conv_gradients(cache, dy, need_dx)
        return dx, kernel_and_bias(dkernel, dbias)

    # -- export -----------------------------------------------------------------------------------
    def to_onnx(self, builder, params: Params, input_name: str) -> str:
        input_shape = builder.shape(input_name)
        window = self.window(input_shape)
        inputs = [
            builder.to_layout(input_name, NCHW),
            builder.initializer(self.onnx_weight(params["kernel"]).astype(np.float32), f"{self.name}_kernel"),
        ]
        if "bias" in params:
            inputs.append(builder.initializer(params["bias"].astype(np.float32), f"{self.name}_bias"))
        return builder.node(
            "Conv",
            inputs,
            hint=self.name,
            layout=NCHW,
            kernel_shape=list(window.kernel),
            strides=list(window.strides),
            dilations=list(window.dilation),
            pads=window.onnx_pads,
            group=self.groups(input_shape[2]),
        )

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import Convolution

        return Convolution(node, params)


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
    def onnx_weight(kernel: np.ndarray) -> np.ndarray:
        return kernel.transpose(3, 2, 0, 1)


class DepthwiseConv2D(_Convolution):
    type = "DepthwiseConv2D"
    description = (
        "Depthwise 2-D convolution: each input channel is convolved with its own depth_multiplier "
        "kernels, giving channels * depth_multiplier outputs."
    )
    schema = {
        "kernel_size": _COMMON_SCHEMA["kernel_size"],
        "strides": _COMMON_SCHEMA["strides"],
        "padding": PADDING_SCHEMA,
        "depth_multiplier": {
            "type": "integer",
            "minimum": 1,
            "default": 1,
            "description": "Output channels per input channel (input c, multiplier m -> "
            "output c * depth_multiplier + m).",
        },
        **{key: _COMMON_SCHEMA[key] for key in ("dilation_rate", "activation", "use_bias")},
        "depthwise_initializer": initializer_schema(
            "glorot_uniform", "depthwise kernel (height, width, channels, depth_multiplier)"
        ),
        "bias_initializer": initializer_schema("zeros", "bias"),
    }
    required = ("kernel_size",)
    examples = [
        ({"kernel_size": [3, 2]}, (7, 6, 3)),
        ({"kernel_size": 3, "depth_multiplier": 2, "strides": [1, 2], "padding": "same"}, (7, 6, 3)),
        (
            {"kernel_size": [2, 3], "dilation_rate": 2, "padding": "same", "depth_multiplier": 3, "use_bias": False},
            (6, 7, 2),
        ),
        ({"kernel_size": 2, "strides": 2}, (5, 7, 2)),
    ]
    kernel_initializer_option = "depthwise_initializer"
    depthwise = True

    def kernel_shape(self, channels: int) -> Shape:
        return (*as_pair(self.config["kernel_size"]), channels, self.config["depth_multiplier"])

    def out_channels(self, channels: int) -> int:
        return channels * self.config["depth_multiplier"]

    def groups(self, channels: int) -> int:
        return channels

    @staticmethod
    def onnx_weight(kernel: np.ndarray) -> np.ndarray:
        kh, kw, channels, multiplier = kernel.shape
        return kernel.reshape(kh, kw, channels * multiplier).transpose(2, 0, 1)[:, None]
