"""LayerNormalization (Keras 3): each example normalised over the given axes, then scaled and shifted.

With ``A`` the normalised axes of one example (by default its channels), ``mean`` and biased
``variance`` over ``A``::

    x_hat = (x - mean) / sqrt(variance + epsilon)        y = gamma * x_hat + beta

``gamma`` and ``beta`` have the shape of the axes in ``A`` and broadcast over the others. Unlike
BatchNormalization nothing depends on the batch, so training and inference compute the same. The
backward is the usual one over ``A``, ``n`` its size::

    dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(variance + epsilon),    g = dy * gamma
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specforge.base.layout import NHWC
from specforge.layers.base import Layer, Params, Shape, shape_error
from specforge.layers.normalization import BatchNormalization
from specforge.options.activations import ActivationFunction
from specforge.options.initializers import compute_fans, initialize

_AXIS = {"type": "integer", "not": {"const": 0}}


class LayerNormalization(Layer):
    type = "LayerNormalization"
    masking = "pass"
    description = (
        "Normalises each example over the given axes (by default its last: the channels) to zero mean "
        "and unit variance, then scales by gamma and shifts by beta; the same in training and inference."
    )
    schema = {
        "axis": {
            "description": "The normalised axis or axes, counted as Keras does with the batch as axis 0: -1 "
            "is the last (channels), [1, 2, 3] every axis of an image.",
            "oneOf": [_AXIS, {"type": "array", "items": _AXIS, "minItems": 1, "uniqueItems": True}],
            "default": -1,
        },
        # Keras gives both normalizations the same options and defaults besides the axis.
        **{
            key: BatchNormalization.schema[key]
            for key in ("epsilon", "center", "scale", "beta_initializer", "gamma_initializer")
        },
    }
    examples = [
        ({}, (3, 2, 4)),
        ({"axis": [1, 2, 3], "epsilon": 0.01}, (3, 2, 4)),
        ({"axis": [-2, -1], "center": False, "gamma_initializer": "random_uniform"}, (4, 3)),
        ({"axis": 1, "scale": False}, (5, 2)),
        ({"epsilon": 0.1}, (6,)),
    ]

    def axes(self, input_shape: Shape) -> tuple[int, ...]:
        """The normalised axes of the batched tensor, in order (1 to rank); ShapeError for one out of range."""
        rank = len(input_shape) + 1
        axes = self.config["axis"] if isinstance(self.config["axis"], list) else [self.config["axis"]]
        for axis in axes:
            if not -rank < axis < rank:
                allowed = ", ".join(map(str, [*range(1, rank), *range(-1, -rank, -1)]))
                raise shape_error(
                    f"LayerNormalization axis {axis} is out of range for input shape "
                    f"{tuple(input_shape)} (axis 0 is the batch); use one of {allowed}"
                )
        return tuple(sorted({axis % rank for axis in axes}))

    def broadcast_shape(self, input_shape: Shape) -> Shape:
        """The shape of gamma and beta as they broadcast over a batch: the input's sizes on the axes, 1 elsewhere."""
        axes = self.axes(input_shape)
        return tuple(size if axis in axes else 1 for axis, size in enumerate((1, *input_shape)))

    # -- shapes and sizes ---------------------------------------------------------------------------
    def output_shape(self, input_shape: Shape) -> Shape:
        self.axes(input_shape)
        return tuple(input_shape)

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        shape = tuple(input_shape[axis - 1] for axis in self.axes(input_shape))
        learned = (("gamma", self.config["scale"]), ("beta", self.config["center"]))
        return {name: shape for name, on in learned if on}

    def init_params(self, input_shape: Shape, rng: np.random.Generator) -> Params:
        return {
            name: initialize(self.config[f"{name}_initializer"], shape, *compute_fans(shape), rng)
            for name, shape in self.param_shapes(input_shape).items()
        }

    def flops(self, input_shape: Shape) -> int:
        return 2 * int(np.prod(input_shape))

    # -- math ----------------------------------------------------------------------------------------
    def forward(
        self,
        params: Params,
        x: np.ndarray,
        training: bool = False,
        rng: np.random.Generator | None = None,
        activation: ActivationFunction | None = None,
    ) -> tuple[np.ndarray, Any]:
        axes, broadcast = self.axes(x.shape[1:]), self.broadcast_shape(x.shape[1:])
        x_hat = x - x.mean(axis=axes, keepdims=True)
        inv_std = 1 / np.sqrt(np.mean(x_hat * x_hat, axis=axes, keepdims=True) + self.config["epsilon"])
        x_hat *= inv_std
        y = x_hat * params["gamma"].reshape(broadcast) if "gamma" in params else x_hat.copy()
        if "beta" in params:
            y += params["beta"].reshape(broadcast)
        return y, (x_hat, inv_std, axes, broadcast)

    def backward(
        self, params: Params, cache: Any, dy: np.ndarray, need_dx: bool = True
    ) -> tuple[np.ndarray | None, Params]:
        x_hat, inv_std, axes, broadcast = cache
        others = tuple(axis for axis in range(dy.ndim) if axis not in axes)
        grads = {}
        if "gamma" in params:
            grads["gamma"] = (dy * x_hat).sum(axis=others).reshape(params["gamma"].shape)
        if "beta" in params:
            grads["beta"] = dy.sum(axis=others).reshape(params["beta"].shape)
        if not need_dx:
            return None, grads
        g = dy * params["gamma"].reshape(broadcast) if "gamma" in params else dy
        dx = g - g.mean(axis=axes, keepdims=True) - x_hat * (g * x_hat).mean(axis=axes, keepdims=True)
        dx *= inv_std
        return dx, grads

    # -- export ----------------------------------------------------------------------------------------
    def to_onnx(self, builder, params: Params, input_name: str) -> str:
        """The formula in elementary nodes on the NHWC tensor (ONNX's LayerNormalization, opset 17 and later,
        only normalises trailing axes)."""
        shape = builder.shape(input_name)
        axes, broadcast = list(self.axes(shape)), self.broadcast_shape(shape)
        x = builder.to_layout(input_name, NHWC)
        centred = builder.node("Sub", [x, self._mean(builder, x, axes, "mean")], f"{self.name}_centred")
        variance = self._mean(
            builder, builder.node("Mul", [centred, centred], f"{self.name}_squares"), axes, "variance"
        )
        epsilon = builder.initializer(np.asarray(self.config["epsilon"], np.float32), f"{self.name}_epsilon")
        std = builder.node(
            "Sqrt", [builder.node("Add", [variance, epsilon], f"{self.name}_variance_epsilon")], f"{self.name}_std"
        )
        operations = [("Div", std)]
        for name, op in (("gamma", "Mul"), ("beta", "Add")):
            if name in params:
                value = params[name].reshape(broadcast).astype(np.float32)
                operations.append((op, builder.initializer(value, f"{self.name}_{name}")))
        y = centred
        for op, operand in operations[:-1]:
            y = builder.node(op, [y, operand], f"{self.name}_{op.lower()}")
        op, operand = operations[-1]
        return builder.node(op, [y, operand], self.name)

    def _mean(self, builder, name: str, axes: list[int], hint: str) -> str:
        """ReduceMean over ``axes`` keeping them; its axes moved from an attribute to an input in opset 18."""
        if builder.opset >= 18:
            return builder.node(
                "ReduceMean",
                [name, builder.constant_int64(axes, f"{self.name}_axes")],
                f"{self.name}_{hint}",
                keepdims=1,
            )
        return builder.node("ReduceMean", [name], f"{self.name}_{hint}", axes=axes, keepdims=1)

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import LayerNormalization

        return LayerNormalization(node, params)
