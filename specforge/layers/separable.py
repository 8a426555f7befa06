"""SeparableConv2D: a depthwise convolution followed by a 1x1 (pointwise) convolution, as Keras 3.

The layer is the composition of the two convolution kinds, each with its own kernel: the depthwise
step filters every input channel on its own (``depth_multiplier`` kernels each), the pointwise step
mixes the ``channels * depth_multiplier`` results into ``filters`` outputs, adds the bias and applies
the fused activation. Backward runs the two backwards in reverse order.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

from specforge.layers.base import (
    PADDING_SCHEMA,
    Layer,
    Params,
    Shape,
    initializer_schema,
    int_or_pair,
)
from specforge.layers.conv import Conv2D, DepthwiseConv2D, require_strides_or_dilation
from specforge.options.activations import ActivationFunction

#: what ``join`` combines: parameters, their gradients or their shapes
_T = TypeVar("_T")


class SeparableConv2D(Layer):
    type = "SeparableConv2D"
    description = (
        "Depthwise separable 2-D convolution: each input channel convolved with its own "
        "depth_multiplier kernels, then a 1x1 convolution mixing the results into filters channels."
    )
    schema = {
        "filters": Conv2D.schema["filters"],
        "kernel_size": int_or_pair("Height and width of the depthwise window; an int for a square window."),
        "strides": int_or_pair("Step of the depthwise window along height and width.", default=1),
        "padding": PADDING_SCHEMA,
        "dilation_rate": int_or_pair(
            "Spacing between depthwise kernel taps; cannot be combined with strides > 1.", default=1
        ),
        "depth_multiplier": {
            "type": "integer",
            "minimum": 1,
            "default": 1,
            "description": "Depthwise outputs per input channel.",
        },
        "activation": Conv2D.schema["activation"],
        "use_bias": {
            "type": "boolean",
            "default": True,
            "description": "Whether to add a learned bias per output channel (after the pointwise step).",
        },
        "depthwise_initializer": initializer_schema(
            "glorot_uniform", "depthwise kernel (height, width, channels, depth_multiplier)"
        ),
        "pointwise_initializer": initializer_schema(
            "glorot_uniform", "pointwise kernel (1, 1, channels * depth_multiplier, filters)"
        ),
        "bias_initializer": Conv2D.schema["bias_initializer"],
    }
    required = ("filters", "kernel_size")
    fuses_activation = True
    examples = [
        ({"filters": 4, "kernel_size": [3, 2]}, (7, 6, 3)),
        ({"filters": 2, "kernel_size": [2, 3], "strides": [2, 1], "padding": "same", "depth_multiplier": 2}, (7, 6, 3)),
        ({"filters": 3, "kernel_size": 3, "dilation_rate": [2, 1], "use_bias": False}, (7, 6, 2)),
        ({"filters": 2, "kernel_size": [3, 4], "strides": 2, "padding": "same"}, (5, 7, 2)),
    ]

    def __init__(self, config: dict[str, Any], name: str | None = None):
        super().__init__(config, name)
        require_strides_or_dilation(self)
        depthwise = ("kernel_size", "strides", "padding", "dilation_rate", "depth_multiplier", "depthwise_initializer")
        self.depthwise = DepthwiseConv2D.from_options(
            {**{key: self.config[key] for key in depthwise}, "use_bias": False}, f"{self.name}_depthwise"
        )
        self.pointwise = Conv2D.from_options(
            {
                "filters": self.config["filters"],
                "kernel_size": 1,
                "use_bias": self.config["use_bias"],
                "kernel_initializer": self.config["pointwise_initializer"],
                "bias_initializer": self.config["bias_initializer"],
            },
            self.name,
        )

    @staticmethod
    def split(params: Params) -> tuple[Params, Params]:
        """The depthwise and the pointwise step's parameters."""
        pointwise = {"kernel": params["pointwise_kernel"]}
        if "bias" in params:
            pointwise["bias"] = params["bias"]
        return {"kernel": params["depthwise_kernel"]}, pointwise

    @staticmethod
    def join(depthwise: dict[str, _T], pointwise: dict[str, _T]) -> dict[str, _T]:
        return {
            "depthwise_kernel": depthwise["kernel"],
            "pointwise_kernel": pointwise["kernel"],
            **({"bias": pointwise["bias"]} if "bias" in pointwise else {}),
        }

    # -- shapes and sizes ---------------------------------------------------------------------------
    def output_shape(self, input_shape: Shape) -> Shape:
        return self.pointwise.output_shape(self.depthwise.output_shape(input_shape))

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        middle = self.depthwise.output_shape(input_shape)
        return self.join(self.depthwise.param_shapes(input_shape), self.pointwise.param_shapes(middle))

    def init_params(self, input_shape: Shape, rng: np.random.Generator) -> Params:
        depthwise = self.depthwise.init_params(input_shape, rng)
        return self.join(depthwise, self.pointwise.init_params(self.depthwise.output_shape(input_shape), rng))

    def flops(self, input_shape: Shape) -> int:
        return self.depthwise.flops(input_shape) + self.pointwise.flops(self.depthwise.output_shape(input_shape))

    # -- math ------------------------------------------------------------------------------------------
    def forward(
        self,
        params: Params,
        x: np.ndarray,
        training: bool = False,
        rng: np.random.Generator | None = None,
        activation: ActivationFunction | None = None,
    ) -> tuple[np.ndarray, Any]:
        depthwise, pointwise = self.split(params)
        middle, depthwise_cache = self.depthwise.forward(depthwise, x, training, rng)
        y, pointwise_cache = self.pointwise.forward(pointwise, middle, training, rng, activation=activation)
        return y, (depthwise_cache, pointwise_cache)

    def backward(
        self, params: Params, cache: Any, dy: np.ndarray, need_dx: bool = True
    ) -> tuple[np.ndarray | None, Params]:
        depthwise, pointwise = self.split(params)
        depthwise_cache, pointwise_cache = cache
        dmiddle, pointwise_grads = self.pointwise.backward(pointwise, pointwise_cache, dy)
        assert dmiddle is not None, "backward returns the input gradient unless told not to"
        dx, depthwise_grads = self.depthwise.backward(depthwise, depthwise_cache, dmiddle, need_dx)
        return dx, self.join(depthwise_grads, pointwise_grads)

    # -- export ----------------------------------------------------------------------------------------
    def to_onnx(self, builder, params: Params, input_name: str) -> str:
        depthwise, pointwise = self.split(params)
        middle = self.depthwise.to_onnx(builder, depthwise, input_name)
        builder.shapes[middle] = self.depthwise.output_shape(builder.shape(input_name))
        return self.pointwise.to_onnx(builder, pointwise, middle)

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import SeparableConvolution

        return SeparableConvolution(node, params)
