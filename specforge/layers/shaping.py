"""Layers that only change the shape: Flatten and Reshape (NHWC order, channels fastest, as Keras)."""

from __future__ import annotations

import math

from specforge.base.layout import NHWC
from specforge.layers.base import Layer, Params, Shape, shape_error


class _Reshaping(Layer):
    """Forward and backward of a pure reshape; in ONNX the input is first brought back to NHWC
    so that the element order is the spec's, not the convolutions' NCHW."""

    onnx_op = ""

    def forward(self, params, x, training=False, rng=None, activation=None):
        return x.reshape(len(x), *self.output_shape(x.shape[1:])), x.shape

    def backward(self, params, cache, dy, need_dx=True):
        return (dy.reshape(cache) if need_dx else None), {}

    def to_onnx(self, builder, params, input_name):
        return self._emit(builder, builder.to_layout(input_name, NHWC), tuple(builder.shape(input_name)))

    def _emit(self, builder, input_name: str, input_shape: Shape) -> str:
        raise NotImplementedError


class Flatten(_Reshaping):
    type = "Flatten"
    description = "Flattens each example to one axis (height, width, channels order, channels fastest)."
    examples = [({}, (3, 2, 4)), ({}, (5,))]

    def output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def _emit(self, builder, input_name, input_shape):
        return builder.node("Flatten", [input_name], self.name, axis=1)

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import Flatten

        return Flatten(node, params)


class Reshape(_Reshaping):
    type = "Reshape"
    description = "Reshapes each example to target_shape, keeping the element order (channels fastest)."
    schema = {
        "target_shape": {
            "type": "array",
            "minItems": 1,
            "items": {"oneOf": [{"type": "integer", "minimum": 1}, {"const": -1}]},
            "description": "Shape of each example without the batch axis; one entry may be -1, "
            "inferred from the number of values.",
        },
    }
    required = ("target_shape",)
    examples = [({"target_shape": [4, 6]}, (2, 3, 4)), ({"target_shape": [-1, 2, 3]}, (12,))]

    def output_shape(self, input_shape: Shape) -> Shape:
        target = tuple(int(d) for d in self.config["target_shape"])
        source = tuple(input_shape)
        total = math.prod(source)
        known = math.prod(d for d in target if d != -1)
        unknowns = target.count(-1)
        if unknowns > 1:
            raise shape_error(
                f"Reshape target_shape {target} has {unknowns} entries of -1; at most one dimension can be inferred"
            )
        if unknowns == 0 and known != total:
            raise shape_error(
                f"Reshape cannot turn {source} = {total} values into {target} = {known} values; "
                f"the target_shape must multiply to {total}"
            )
        if unknowns == 1 and total % known:
            raise shape_error(
                f"Reshape cannot turn {source} = {total} values into {target}: {total} is not "
                f"a multiple of {known}; the other entries of target_shape must divide {total}"
            )
        return tuple(total // known if d == -1 else d for d in target)

    def _emit(self, builder, input_name, input_shape):
        shape = builder.constant_int64([-1, *self.output_shape(input_shape)], f"{self.name}_shape")
        return builder.node("Reshape", [input_name, shape], self.name)

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import Reshape

        return Reshape(node, params)
