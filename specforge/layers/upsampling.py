"""UpSampling2D: an image enlarged by integer factors (Keras 3, nearest or bilinear interpolation).

Either interpolation is linear in the input and acts on each axis on its own, so the layer is
``y = A_h x A_w^T`` per example and channel, with ``A`` the ``(n * factor, n)`` interpolation matrix of
an axis, and the backward is ``dx = A_h^T dy A_w``: two matrix products each way.

- nearest: output pixel ``o`` copies input pixel ``o // factor`` (every pixel repeated ``factor`` times);
- bilinear: TensorFlow's resize with half-pixel centres (what Keras calls): output pixel ``o`` sits at
  input coordinate ``(o + 0.5) / factor - 0.5`` and mixes the two input pixels around it, linearly; a
  coordinate before the first pixel or past the last takes that pixel.

ONNX: Resize with the same coordinate rule (``asymmetric`` with ``floor`` for nearest, ``half_pixel``
for bilinear), in whatever layout the input already has.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specforge.base.layout import NCHW
from specforge.layers.base import Layer, Params, Shape, as_pair, int_or_pair
from specforge.layers.windows import require_image
from specforge.options.activations import ActivationFunction

_RESIZE_ATTRIBUTES = {
    "nearest": {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
    "bilinear": {"mode": "linear", "coordinate_transformation_mode": "half_pixel"},
}


def interpolation_matrix(size: int, factor: int, interpolation: str, dtype: np.dtype) -> np.ndarray:
    """``A`` (size * factor, size): row ``o`` holds the weights of the input pixels in output pixel ``o``."""
    out = np.arange(size * factor)
    matrix = np.zeros((size * factor, size), dtype)
    if interpolation == "nearest":
        matrix[out, out // factor] = 1
        return matrix
    source = (out + 0.5) / factor - 0.5
    below = np.floor(source)
    lerp = source - below
    np.add.at(matrix, (out, np.clip(below, 0, size - 1).astype(int)), 1 - lerp)
    np.add.at(matrix, (out, np.clip(below + 1, 0, size - 1).astype(int)), lerp)
    return matrix


class UpSampling2D(Layer):
    type = "UpSampling2D"
    description = (
        "Enlarges an image by integer factors along height and width: nearest repeats every pixel, "
        "bilinear interpolates between pixel centres (TensorFlow's half-pixel rule)."
    )
    schema = {
        "size": int_or_pair("Factors by which height and width grow; an int for both.", default=2),
        "interpolation": {
            "enum": ["nearest", "bilinear"],
            "default": "nearest",
            "description": "nearest: every pixel repeated size times; bilinear: linear "
            "interpolation between the pixel centres.",
        },
    }
    examples = [
        ({}, (3, 4, 2)),
        ({"size": [2, 3]}, (3, 2, 2)),
        ({"interpolation": "bilinear"}, (3, 4, 2)),
        ({"size": [3, 2], "interpolation": "bilinear"}, (4, 3, 1)),
        ({"size": [1, 4], "interpolation": "bilinear"}, (2, 3, 2)),
    ]

    def output_shape(self, input_shape: Shape) -> Shape:
        height, width, channels = require_image(self.type, input_shape)
        factor_h, factor_w = as_pair(self.config["size"])
        return (height * factor_h, width * factor_w, channels)

    def flops(self, input_shape: Shape) -> int:
        height, width, channels = require_image(self.type, input_shape)
        out_h, out_w, _ = self.output_shape(input_shape)
        return 2 * channels * (out_h * height * width + out_h * out_w * width)

    def matrices(self, input_shape: Shape, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """``(A_h, A_w)``: the interpolation matrices of height and width."""
        height, width, _ = require_image(self.type, input_shape)
        a_h, a_w = (
            interpolation_matrix(size, factor, self.config["interpolation"], dtype)
            for size, factor in zip((height, width), as_pair(self.config["size"]))
        )
        return a_h, a_w

    def forward(
        self,
        params: Params,
        x: np.ndarray,
        training: bool = False,
        rng: np.random.Generator | None = None,
        activation: ActivationFunction | None = None,
    ) -> tuple[np.ndarray, Any]:
        a_h, a_w = self.matrices(x.shape[1:], x.dtype)
        n, height, width, channels = x.shape
        rows = np.matmul(a_h, x.reshape(n, height, width * channels))
        y = np.matmul(a_w, rows.reshape(n * len(a_h), width, channels))
        return y.reshape(n, len(a_h), len(a_w), channels), x.shape

    def backward(
        self, params: Params, cache: Any, dy: np.ndarray, need_dx: bool = True
    ) -> tuple[np.ndarray | None, Params]:
        if not need_dx:
            return None, {}
        n, _height, width, channels = cache
        a_h, a_w = self.matrices(cache[1:], dy.dtype)
        rows = np.matmul(a_w.T, dy.reshape(n * len(a_h), len(a_w), channels))
        return np.matmul(a_h.T, rows.reshape(n, len(a_h), width * channels)).reshape(cache), {}

    def to_onnx(self, builder, params: Params, input_name: str) -> str:
        factor_h, factor_w = as_pair(self.config["size"])
        scales = [1, 1, factor_h, factor_w] if builder.layout(input_name) == NCHW else [1, factor_h, factor_w, 1]
        scales_name = builder.initializer(np.asarray(scales, np.float32), f"{self.name}_scales")
        return builder.node(
            "Resize", [input_name, "", scales_name], hint=self.name, **_RESIZE_ATTRIBUTES[self.config["interpolation"]]
        )

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import UpSampling

        return UpSampling(node, params)
