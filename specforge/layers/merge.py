"""Merge layers: several inputs, one output (Keras' Add, Subtract, Multiply, Average, Maximum, Minimum,
Concatenate).

A merge layer takes a list everywhere a single-input layer takes one tensor: ``output_shape`` gets the
input shapes, ``forward`` the input batches, ``backward`` returns one gradient per input, ``to_onnx``
gets one tensor name per input.  The shapes of the inputs must agree (Concatenate: on every axis but
its own); the error names each input and its shape, and the graph adds the layers they come from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from specforge.base.layout import NCHW
from specforge.layers.base import Layer, Params, Shape, shape_error


def _describe(shapes: Sequence[Shape], names: Sequence[str] | None) -> str:
    """``(14, 14, 64) from 'conv_b' and (28, 28, 64) from 'stem'`` (input positions when names are unknown)."""
    sources = [repr(name) for name in names] if names else [f"input {index}" for index in range(len(shapes))]
    return " and ".join(f"{tuple(shape)} from {source}" for shape, source in zip(shapes, sources))


def _fix_hint(first: Shape, other: Shape) -> str:
    """What would make two image inputs agree: a 1x1 Conv2D on the shortcut (the larger input, else the
    later one, as in Add([x, shortcut])) taking it to the other's shape."""
    if len(first) != 3 or len(other) != 3:
        return ""
    shortcut, target = (other, first) if other[0] * other[1] >= first[0] * first[1] else (first, other)
    if shortcut[0] % target[0] or shortcut[1] % target[1]:
        return ""
    strides = (shortcut[0] // target[0], shortcut[1] // target[1])
    options = [f"filters {target[2]}"] if shortcut[2] != target[2] else []
    if strides != (1, 1):
        options.append(f"strides {strides[0] if strides[0] == strides[1] else list(strides)}")
    return f"give the shortcut a 1x1 Conv2D with {' and '.join(options)}"


def _total(xs: Sequence[np.ndarray]) -> np.ndarray:
    """The inputs summed in order, a new array."""
    total = xs[0] + xs[1]
    for x in xs[2:]:
        total += x
    return total


#: examples of the elementwise kinds: two vectors, and three images
ELEMENTWISE_EXAMPLES: list[tuple[dict, Shape | list[Shape]]] = [
    ({"inputs": ["a", "b"]}, [(3, 4), (3, 4)]),
    ({"inputs": ["a", "b", "c"]}, [(2, 2, 3)] * 3),
]


class Merge(Layer):
    """Base of the merge kinds: several inputs of one shape, combined elementwise. An activation after the
    merge (the ReLU after a residual Add) is fused: applied to the fresh combination in place."""

    merges = True
    fuses_activation = True
    masking = "pass"  # the inputs' masks joined: a step counts where it counts in every input with a mask
    examples = ELEMENTWISE_EXAMPLES
    arity: ClassVar[tuple[int, int | None]] = (2, None)

    # A merge takes one shape per input where Layer takes one shape (the contract Layer.merges documents); the
    # graph calls it through Merge, with the inputs' names.
    def output_shape(  # type: ignore[override]
        self, input_shapes: Sequence[Shape], names: Sequence[str] | None = None
    ) -> Shape:
        first = tuple(input_shapes[0])
        for position, shape in enumerate(input_shapes[1:], start=1):
            if tuple(shape) != first:
                pair_names = None if names is None else [names[0], names[position]]
                hint = _fix_hint(first, tuple(shape)) or f"{self.type} needs inputs of one shape"
                raise shape_error(f"{self.type} got {_describe([first, tuple(shape)], pair_names)}; {hint}")
        return first

    # -- math: the kinds fill in combine and gradients -----------------------------------
    def forward(self, params, x, training=False, rng=None, activation=None):
        y = self.combine(x)
        if activation is not None:
            activation.forward_into(y, y)
        return y, (x, activation, y)

    def backward(self, params, cache, dy, need_dx=True):
        if not need_dx:
            return None, {}
        xs, activation, y = cache
        if activation is not None:
            # A new array, not a scratch buffer: the input gradients outlive this call.
            dz = np.empty(dy.shape, np.result_type(y, dy))
            activation.backward_into(y, y, dy, dz)
            dy = dz
        return self.gradients(xs, dy), {}

    def combine(self, xs: Sequence[np.ndarray]) -> np.ndarray:
        """The merged batch, a new array."""
        raise NotImplementedError

    def gradients(self, xs: Sequence[np.ndarray], dy: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    # -- export -------------------------------------------------------------------------
    onnx_op: ClassVar[str] = ""

    # One tensor name per input where Layer takes one name (Layer.merges); the exporter narrows to the list.
    def to_onnx(self, builder, params: Params, input_names: list[str]) -> str:  # type: ignore[override]
        layout = builder.layout(input_names[0])
        names = [builder.to_layout(name, layout) for name in input_names]
        return builder.node(self.onnx_op, names, self.name)

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import Merge

        return Merge(node, params)


class Add(Merge):
    type = "Add"
    description = "Sums its inputs elementwise (a residual connection); every input has the same shape."
    onnx_op = "Sum"

    def combine(self, xs):
        return _total(xs)

    def gradients(self, xs, dy):
        return [dy for _ in xs]


class Subtract(Merge):
    type = "Subtract"
    description = "The first input minus the second, elementwise; both have the same shape."
    arity = (2, 2)
    onnx_op = "Sub"
    examples = [({"inputs": ["a", "b"]}, [(3, 4), (3, 4)]), ({"inputs": ["a", "b"]}, [(2, 3, 2)] * 2)]

    def combine(self, xs):
        return xs[0] - xs[1]

    def gradients(self, xs, dy):
        return [dy, -dy]


class Multiply(Merge):
    type = "Multiply"
    description = "The product of its inputs, elementwise (gating); every input has the same shape."

    def combine(self, xs):
        product = xs[0] * xs[1]
        for x in xs[2:]:
            product *= x
        return product

    def gradients(self, xs, dy):
        return [
            dy * self.combine([x for other, x in enumerate(xs) if other != index])
            if len(xs) > 2
            else dy * xs[1 - index]
            for index in range(len(xs))
        ]

    def to_onnx(self, builder, params, input_names):
        layout = builder.layout(input_names[0])
        names = [builder.to_layout(name, layout) for name in input_names]
        product = names[0]
        for position, name in enumerate(names[1:], start=1):
            product = builder.node(
                "Mul", [product, name], self.name if position == len(names) - 1 else f"{self.name}_partial"
            )
        return product


class Average(Merge):
    type = "Average"
    description = "The mean of its inputs, elementwise; every input has the same shape."
    onnx_op = "Mean"

    def combine(self, xs):
        return _total(xs) / np.asarray(len(xs), xs[0].dtype)

    def gradients(self, xs, dy):
        share = dy / np.asarray(len(xs), dy.dtype)
        return [share for _ in xs]


class _Extreme(Merge):
    """Maximum and Minimum: the gradient goes to the first input holding the extreme (as max pooling)."""

    pick: ClassVar[Any]

    def combine(self, xs):
        result = self.pick(xs[0], xs[1])
        for x in xs[2:]:
            self.pick(result, x, out=result)
        return result

    def gradients(self, xs, dy):
        result = self.combine(xs)
        taken = np.zeros(dy.shape, bool)
        grads = []
        for x in xs:
            mine = (x == result) & ~taken
            taken |= mine
            grads.append(np.where(mine, dy, 0).astype(dy.dtype))
        return grads


class Maximum(_Extreme):
    type = "Maximum"
    description = "The largest of its inputs, elementwise; every input has the same shape."
    onnx_op = "Max"
    pick = staticmethod(np.maximum)


class Minimum(_Extreme):
    type = "Minimum"
    description = "The smallest of its inputs, elementwise; every input has the same shape."
    onnx_op = "Min"
    pick = staticmethod(np.minimum)


class Concatenate(Merge):
    type = "Concatenate"
    description = (
        "Joins its inputs along axis (the channels by default); the other axes must agree. "
        "Axis counts the batch axis as 0, as in Keras."
    )
    schema = {
        "axis": {
            "oneOf": [{"type": "integer", "maximum": -1}, {"type": "integer", "minimum": 1}],
            "default": -1,
            "description": "Axis to join along: -1 (the last, channels) or 1..rank; 0, the batch axis, "
            "cannot be joined.",
        },
    }
    examples = [
        ({"inputs": ["a", "b"]}, [(2, 2, 3), (2, 2, 5)]),
        ({"inputs": ["a", "b", "c"], "axis": 1}, [(2, 3), (1, 3), (4, 3)]),
        ({"inputs": ["a", "b"]}, [(3, 2), (3, 4)]),
        ({"inputs": ["a", "b"], "axis": 2}, [(2, 3, 2), (2, 1, 2)]),
    ]

    def passes_mask(self) -> bool:
        """Joined along the features (the last axis, or one after the steps), the inputs' masks pass; along the
        steps, as a mask of the steps may not be, they are dropped."""
        axis = self.config["axis"]
        return axis == -1 or axis > 1

    def axis(self, rank: int) -> int:
        """The axis of a shape without the batch axis; ShapeError when out of range."""
        axis = self.config["axis"]
        if not (-rank <= axis <= rank and axis != 0):
            raise shape_error(
                f"Concatenate axis {axis} does not exist for inputs of rank {rank} (batch axis "
                f"not counted); use -1 or 1..{rank}"
            )
        return axis - 1 if axis > 0 else rank + axis

    def output_shape(self, input_shapes, names=None):
        first = tuple(input_shapes[0])
        axis = self.axis(len(first))
        for position, shape in enumerate(input_shapes[1:], start=1):
            shape = tuple(shape)
            rest = [d for i, d in enumerate(shape) if i != axis]
            if len(shape) != len(first) or rest != [d for i, d in enumerate(first) if i != axis]:
                pair_names = None if names is None else [names[0], names[position]]
                raise shape_error(
                    f"Concatenate got {_describe([first, shape], pair_names)}; every axis but "
                    f"axis {self.config['axis']} must agree (use axis to join along another, or "
                    f"resize one input)"
                )
        return (*first[:axis], sum(int(shape[axis]) for shape in input_shapes), *first[axis + 1 :])

    def combine(self, xs):
        return np.concatenate(xs, axis=self.axis(xs[0].ndim - 1) + 1)

    def gradients(self, xs, dy):
        axis = self.axis(dy.ndim - 1) + 1
        return np.split(dy, np.cumsum([x.shape[axis] for x in xs])[:-1], axis=axis)

    def to_onnx(self, builder, params, input_names):
        layout = builder.layout(input_names[0])
        names = [builder.to_layout(name, layout) for name in input_names]
        rank = len(builder.shape(input_names[0]))
        axis = self.axis(rank) + 1
        if layout == NCHW:  # (N, C, H, W), or a sequence as (N, C, 1, steps)
            axis = {1: 2, 2: 3, 3: 1}[axis] if rank == 3 else {1: 3, 2: 1}[axis]
        return builder.node("Concat", names, self.name, axis=axis)
