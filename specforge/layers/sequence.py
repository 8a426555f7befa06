"""Layers over sequences of shape (steps, channels): Conv1D, MaxPooling1D, AveragePooling1D and the global
poolings (Keras 3 options).

A sequence is an image one pixel high. Each kind runs its 2-D counterpart on the ``(1, steps, channels)``
view of its input (a reshape, no copy), so Conv1D takes the same tap products or im2col products, batch
split and fused activation as Conv2D, and the poolings the same window reductions. What is the 1-D kind's
own is its window: planned over the steps with Keras' padding rules, including Conv1D's ``causal`` padding
(all of it before the first step, so that output step t sees only inputs up to t).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from specforge import ops
from specforge.base.layout import NCHW, NHWC
from specforge.layers.base import Layer, Params, Shape, initializer_schema, shape_error
from specforge.layers.conv import Conv2D, require_strides_or_dilation
from specforge.layers.pooling import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D
from specforge.layers.windows import plan_window
from specforge.options.activations import ActivationFunction

#: How plan_window names the axes of a sequence seen as a ``(1, steps)`` image.
_AXES = ("height", "steps")
_POSITIVE = {"type": "integer", "minimum": 1}


def require_sequence(layer_type: str, input_shape: Shape) -> tuple[int, int]:
    """``input_shape`` as ``(steps, channels)``; ShapeError naming a Reshape that would fit."""
    if len(input_shape) == 2:
        return int(input_shape[0]), int(input_shape[1])
    if len(input_shape) == 3:
        target = [int(input_shape[0]), int(input_shape[1]) * int(input_shape[2])]
    else:
        target = [math.prod(int(d) for d in input_shape), 1]
    raise shape_error(
        f"{layer_type} expects a sequence input (steps, channels), got shape {tuple(input_shape)}; "
        f"add a Reshape layer with target_shape {target} before it"
    )


class _OnRows(Layer):
    """Mixin for a 2-D kind that runs over ``(1, steps)`` images with the window its 1-D layer plans."""

    def __init__(self, config: dict[str, Any], name: str, plan: Callable[[int], ops.Window]):
        super().__init__(config, name)
        self.plan = plan

    def window(self, input_shape: Shape) -> ops.Window:
        return self.plan(int(input_shape[1]))


class _RowConv2D(_OnRows, Conv2D):
    pass


class _RowMaxPooling2D(_OnRows, MaxPooling2D):
    pass


class _RowAveragePooling2D(_OnRows, AveragePooling2D):
    pass


class _SequenceLayer(Layer):
    """A 1-D kind computed by its 2-D counterpart (``image_layer``) on the ``(1, steps, channels)`` view.

    A kernel gets the extra leading axis of the image kernel (``(k, in, out)`` <-> ``(1, k, in, out)``);
    an output of rank 3 loses it again.
    """

    def __init__(self, config: dict[str, Any], name: str | None = None):
        super().__init__(config, name)
        self.image_layer = self.make_image_layer()

    def make_image_layer(self) -> Layer:
        raise NotImplementedError

    @property
    def image_name(self) -> str:
        """The image layer's name, which its ONNX nodes and weights take."""
        return f"{self.name}_image"

    def image_shape(self, input_shape: Shape) -> Shape:
        return (1, *require_sequence(self.type, input_shape))

    @staticmethod
    def from_image_shape(shape: Shape) -> Shape:
        return tuple(shape[1:]) if len(shape) == 3 else tuple(shape)

    @staticmethod
    def image_params(params: Params) -> Params:
        return {name: value[None] if name == "kernel" else value for name, value in params.items()}

    @staticmethod
    def sequence_params(params: Params) -> Params:
        return {name: value[0] if name == "kernel" else value for name, value in params.items()}

    # -- shapes and sizes --------------------------------------------------------------------------
    def output_shape(self, input_shape: Shape) -> Shape:
        return self.from_image_shape(self.image_layer.output_shape(self.image_shape(input_shape)))

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        shapes = self.image_layer.param_shapes(self.image_shape(input_shape))
        return {name: shape[1:] if name == "kernel" else shape for name, shape in shapes.items()}

    def init_params(self, input_shape: Shape, rng: np.random.Generator) -> Params:
        return self.sequence_params(self.image_layer.init_params(self.image_shape(input_shape), rng))

    def flops(self, input_shape: Shape) -> int:
        return self.image_layer.flops(self.image_shape(input_shape))

    # -- math ------------------------------------------------------------------------------------------
    def forward(
        self,
        params: Params,
        x: np.ndarray,
        training: bool = False,
        rng: np.random.Generator | None = None,
        activation: ActivationFunction | None = None,
    ) -> tuple[np.ndarray, Any]:
        y, cache = self.image_layer.forward(self.image_params(params), x[:, None], training, rng, activation)
        return y.reshape(len(x), *self.from_image_shape(y.shape[1:])), (cache, y.shape)

    def backward(
        self, params: Params, cache: Any, dy: np.ndarray, need_dx: bool = True
    ) -> tuple[np.ndarray | None, Params]:
        image_cache, image_y_shape = cache
        dx, grads = self.image_layer.backward(
            self.image_params(params), image_cache, dy.reshape(image_y_shape), need_dx
        )
        return (None if dx is None else dx[:, 0]), self.sequence_params(grads)

    # -- export --------------------------------------------------------------------------------------------
    def to_onnx(self, builder, params: Params, input_name: str) -> str:
        """The image layer's nodes on the sequence in its NCHW form, the image ``(N, C, 1, steps)``; the result
        stays in that form, so the next 1-D layer takes it as it is."""
        image = builder.to_layout(input_name, NCHW)
        sequence_shape = builder.shapes[image]
        builder.shapes[image] = self.image_shape(sequence_shape)  # what the image layer sees, for this call
        try:
            out = self.image_layer.to_onnx(builder, self.image_params(params), image)
        finally:
            builder.shapes[image] = sequence_shape
        if builder.layout(out) == NCHW:
            return out
        target = builder.constant_int64([-1, *self.output_shape(sequence_shape)], f"{self.name}_shape")
        return builder.node("Reshape", [out, target], self.name)


class Conv1D(_SequenceLayer):
    type = "Conv1D"
    description = (
        "1-D convolution over a sequence (steps, channels) with a learned kernel (kernel_size, "
        "channels, filters) per output channel."
    )
    schema = {
        "filters": Conv2D.schema["filters"],
        "kernel_size": {**_POSITIVE, "description": "Length of the convolution window, in steps."},
        "strides": {**_POSITIVE, "default": 1, "description": "Step of the window along the sequence."},
        "padding": {
            "description": "valid: no padding, the output shrinks by the kernel; same: zero-pad so that "
            "output = ceil(steps / strides) (the odd step of padding goes after); causal: "
            "dilation_rate * (kernel_size - 1) zeros before the first step, so that output "
            "step t depends only on inputs up to t.",
            "enum": ["valid", "same", "causal"],
            "default": "valid",
        },
        "dilation_rate": {
            **_POSITIVE,
            "default": 1,
            "description": "Spacing between kernel taps (atrous convolution); cannot be combined with strides > 1.",
        },
        **{key: Conv2D.schema[key] for key in ("activation", "use_bias")},
        "kernel_initializer": initializer_schema("glorot_uniform", "kernel (kernel_size, in, out)"),
        "bias_initializer": Conv2D.schema["bias_initializer"],
    }
    required = ("filters", "kernel_size")
    fuses_activation = True
    examples = [
        ({"filters": 4, "kernel_size": 3}, (7, 3)),
        ({"filters": 2, "kernel_size": 2, "strides": 2, "padding": "same"}, (7, 3)),
        ({"filters": 3, "kernel_size": 3, "padding": "causal", "dilation_rate": 2, "use_bias": False}, (6, 2)),
        ({"filters": 2, "kernel_size": 4, "strides": 3, "padding": "causal"}, (8, 2)),
        ({"filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": "same"}, (5, 2)),
        ({"filters": 3, "kernel_size": 2, "strides": 2}, (5, 34)),
        ({"filters": 3, "kernel_size": 3, "padding": "same"}, (6, 33)),
    ]

    def make_image_layer(self) -> Layer:
        require_strides_or_dilation(self)
        config = {key: self.config[key] for key in ("filters", "use_bias", "kernel_initializer", "bias_initializer")}
        return _RowConv2D.from_options(
            {**config, "kernel_size": [1, self.config["kernel_size"]]}, self.image_name, plan=self.window
        )

    def window(self, steps: int) -> ops.Window:
        k, s, d = (self.config[key] for key in ("kernel_size", "strides", "dilation_rate"))
        if self.config["padding"] == "causal":
            return ops.Window((1, k), (1, s), (1, d), ((0, 0), (d * (k - 1), 0)))
        return plan_window(
            self.type, "kernel_size", (1, steps), (1, k), (1, s), (1, d), self.config["padding"], axes=_AXES
        )

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import Convolution

        return Convolution(node, params)


class _Pooling1D(_SequenceLayer):
    schema = {
        "pool_size": {**_POSITIVE, "default": 2, "description": "Length of the pooling window, in steps."},
        "strides": {
            "oneOf": [_POSITIVE, {"type": "null"}],
            "default": None,
            "description": "Step of the window along the sequence; null (the default) means pool_size.",
        },
        "padding": {
            "description": "valid: no padding; same: pad so that output = ceil(steps / strides), "
            "the odd step after (padded steps never win a maximum or count in a mean).",
            "enum": ["valid", "same"],
            "default": "valid",
        },
    }
    examples = [
        ({}, (7, 3)),
        ({"pool_size": 3, "strides": 2, "padding": "same"}, (6, 2)),
        ({"pool_size": 3, "strides": 1}, (5, 2)),
        ({"pool_size": 2, "strides": 3, "padding": "same"}, (7, 1)),
    ]
    image_kind: type[_OnRows]

    def make_image_layer(self) -> Layer:
        return self.image_kind.from_options(
            {"pool_size": [1, self.config["pool_size"]]}, self.image_name, plan=self.window
        )

    def window(self, steps: int) -> ops.Window:
        pool = self.config["pool_size"]
        stride = pool if self.config["strides"] is None else self.config["strides"]
        return plan_window(
            self.type, "pool_size", (1, steps), (1, pool), (1, stride), (1, 1), self.config["padding"], axes=_AXES
        )

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch import modules

        kind = modules.MaxPooling if self.type.startswith("Max") else modules.AveragePooling
        return kind(node, params)


class MaxPooling1D(_Pooling1D):
    type = "MaxPooling1D"
    description = "Maximum over each pool_size window of a sequence, per channel."
    image_kind = _RowMaxPooling2D


class AveragePooling1D(_Pooling1D):
    type = "AveragePooling1D"
    description = (
        "Mean over each pool_size window of a sequence, per channel; with padding: same a window "
        "averages only its real (non-padded) steps."
    )
    image_kind = _RowAveragePooling2D


class _GlobalPooling1D(_SequenceLayer):
    schema = {
        "keepdims": {
            "type": "boolean",
            "default": False,
            "description": "Keep the steps axis: output (1, channels) instead of (channels,).",
        },
    }
    examples = [({}, (5, 3)), ({"keepdims": True}, (4, 2))]
    image_kind: type[Layer]

    def make_image_layer(self) -> Layer:
        return self.image_kind(self.config, self.image_name)

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import GlobalPooling

        return GlobalPooling(node, params)


class GlobalAveragePooling1D(_GlobalPooling1D):
    """With a mask of the steps (``Layer.masking``), the mean of the steps that count, as Keras'; a sequence
    with none that counts gives zeros (where Keras' 0 / 0 gives NaN)."""

    type = "GlobalAveragePooling1D"
    description = (
        "Mean of each channel over all the steps of a sequence (over the steps that count when a mask of the "
        "padding reaches it: Embedding mask_zero)."
    )
    image_kind = GlobalAveragePooling2D
    masking = "take"

    @staticmethod
    def step_weights(mask: np.ndarray, dtype) -> np.ndarray:
        """``(N, steps, 1)``: 1 / (the steps that count) at each of them, 0 elsewhere."""
        kept = mask.astype(dtype)
        return (kept / np.maximum(kept.sum(axis=1, keepdims=True), 1))[:, :, None]

    def forward(self, params, x, training=False, rng=None, activation=None, *, mask=None):
        if mask is None:
            return super().forward(params, x, training, rng, activation)
        weights = self.step_weights(mask, x.dtype)
        y = (x * weights).sum(axis=1, keepdims=self.config["keepdims"])
        return y, _MaskedMean(weights)

    def backward(self, params, cache, dy, need_dx=True):
        if not isinstance(cache, _MaskedMean):
            return super().backward(params, cache, dy, need_dx)
        if not need_dx:
            return None, {}
        return cache.weights * dy.reshape(len(dy), 1, -1), {}

    def to_onnx(self, builder, params: Params, input_name: str, *, mask: str | None = None) -> str:
        """With a mask (float ``(N, steps)``, 1 where a step counts), the weighted sum of the steps in their
        NHWC form, ``(N, steps, channels)``."""
        if mask is None:
            return super().to_onnx(builder, params, input_name)
        x = builder.to_layout(input_name, NHWC)
        steps_axis = builder.constant_int64([1], f"{self.name}_steps_axis")
        count = builder.node("ReduceSum", [mask, steps_axis], f"{self.name}_count", keepdims=1)
        one = builder.initializer(np.ones((), np.float32), f"{self.name}_one")
        share = builder.node("Div", [mask, builder.node("Max", [count, one], f"{self.name}_divisor")], f"{self.name}_w")
        weights = builder.node(
            "Unsqueeze", [share, builder.constant_int64([2], f"{self.name}_axis")], f"{self.name}_ws"
        )
        weighted = builder.node("Mul", [x, weights], f"{self.name}_weighted", layout=NHWC)
        keepdims = int(self.config["keepdims"])
        return builder.node("ReduceSum", [weighted, steps_axis], self.name, keepdims=keepdims, layout=NHWC)


@dataclass
class _MaskedMean:
    """What the backward of a masked mean needs: each step's weight, ``(N, steps, 1)``."""

    weights: np.ndarray


class GlobalMaxPooling1D(_GlobalPooling1D):
    type = "GlobalMaxPooling1D"
    description = (
        "Maximum of each channel over all the steps of a sequence; the gradient goes to the first maximal step."
    )
    image_kind = GlobalMaxPooling2D
