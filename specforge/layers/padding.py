"""ZeroPadding2D and Cropping2D: rows and columns added around an image or taken off its edges (Keras 3
options); the forward of one is the backward of the other."""

from __future__ import annotations

from typing import Any

import numpy as np

from specforge import ops
from specforge.base.layout import NCHW
from specforge.layers.base import Layer, Params, Shape, shape_error
from specforge.layers.windows import require_image
from specforge.options.activations import ActivationFunction

_SIZE = {"type": "integer", "minimum": 0}
_PAIR = {"type": "array", "items": _SIZE, "minItems": 2, "maxItems": 2}


def _sides_schema(what: str, default: Any) -> dict:
    return {
        "description": f"{what}: an int (the same on all four sides), [height, width] (symmetric per axis) or "
        "[[top, bottom], [left, right]].",
        "oneOf": [_SIZE, _PAIR, {"type": "array", "items": _PAIR, "minItems": 2, "maxItems": 2}],
        "default": default,
    }


def image_pads(padding: int | list) -> ops.Pads:
    """Keras' ``padding`` option as ``((top, bottom), (left, right))``."""
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    height, width = padding
    if isinstance(height, int):
        return ((height, height), (width, width))
    return ((int(height[0]), int(height[1])), (int(width[0]), int(width[1])))


class ZeroPadding2D(Layer):
    type = "ZeroPadding2D"
    description = "Adds rows and columns of zeros at the top, bottom, left and right of an image."
    schema = {
        "padding": _sides_schema("Rows and columns of zeros added", 1),
    }
    examples = [
        ({}, (4, 5, 2)),
        ({"padding": [1, 2]}, (3, 4, 1)),
        ({"padding": [[0, 2], [1, 3]]}, (3, 2, 2)),
    ]

    @property
    def pads(self) -> ops.Pads:
        return image_pads(self.config["padding"])

    def output_shape(self, input_shape: Shape) -> Shape:
        height, width, channels = require_image(self.type, input_shape)
        (top, bottom), (left, right) = self.pads
        return (height + top + bottom, width + left + right, channels)

    def forward(
        self,
        params: Params,
        x: np.ndarray,
        training: bool = False,
        rng: np.random.Generator | None = None,
        activation: ActivationFunction | None = None,
    ) -> tuple[np.ndarray, Any]:
        require_image(self.type, x.shape[1:])
        return ops.pad_image(x, self.pads), None

    def backward(
        self, params: Params, cache: Any, dy: np.ndarray, need_dx: bool = True
    ) -> tuple[np.ndarray | None, Params]:
        return (ops.crop_padding(dy, self.pads) if need_dx else None), {}

    def to_onnx(self, builder, params: Params, input_name: str) -> str:
        """A Pad node in whatever layout the input already has, so it adds no Transpose."""
        (top, bottom), (left, right) = self.pads
        if builder.layout(input_name) == NCHW:
            pads = [0, 0, top, left, 0, 0, bottom, right]
        else:
            pads = [0, top, left, 0, 0, bottom, right, 0]
        return builder.node(
            "Pad", [input_name, builder.constant_int64(pads, f"{self.name}_pads")], hint=self.name, mode="constant"
        )

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import ZeroPadding

        return ZeroPadding(node, params)


class Cropping2D(Layer):
    type = "Cropping2D"
    description = "Removes rows and columns at the top, bottom, left and right of an image."
    schema = {
        "cropping": _sides_schema("Rows and columns removed", [[0, 0], [0, 0]]),
    }
    examples = [
        ({}, (3, 2, 2)),
        ({"cropping": 1}, (4, 5, 2)),
        ({"cropping": [1, 2]}, (4, 6, 1)),
        ({"cropping": [[0, 2], [1, 3]]}, (5, 6, 2)),
    ]

    @property
    def crops(self) -> ops.Pads:
        return image_pads(self.config["cropping"])

    def output_shape(self, input_shape: Shape) -> Shape:
        height, width, channels = require_image(self.type, input_shape)
        kept = []
        for axis, size, (before, after) in zip(("rows", "columns"), (height, width), self.crops):
            if before + after >= size:
                raise shape_error(
                    f"Cropping2D removes {before} + {after} = {before + after} of the {size} {axis} "
                    f"of its input, leaving none; crop fewer than {size} {axis} in all"
                )
            kept.append(size - before - after)
        return (*kept, channels)

    def forward(
        self,
        params: Params,
        x: np.ndarray,
        training: bool = False,
        rng: np.random.Generator | None = None,
        activation: ActivationFunction | None = None,
    ) -> tuple[np.ndarray, Any]:
        self.output_shape(x.shape[1:])
        return np.ascontiguousarray(ops.crop_padding(x, self.crops)), None

    def backward(
        self, params: Params, cache: Any, dy: np.ndarray, need_dx: bool = True
    ) -> tuple[np.ndarray | None, Params]:
        return (ops.pad_image(dy, self.crops) if need_dx else None), {}

    def to_onnx(self, builder, params: Params, input_name: str) -> str:
        """A Slice of the height and width axes in whatever layout the input already has."""
        height, width, _ = builder.shape(input_name)
        (top, bottom), (left, right) = self.crops
        axes = [2, 3] if builder.layout(input_name) == NCHW else [1, 2]
        inputs = [
            input_name,
            builder.constant_int64([top, left], f"{self.name}_starts"),
            builder.constant_int64([height - bottom, width - right], f"{self.name}_ends"),
            builder.constant_int64(axes, f"{self.name}_axes"),
        ]
        return builder.node("Slice", inputs, hint=self.name)

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import Cropping

        return Cropping(node, params)
