"""Dense: a fully connected layer, ``y = x @ kernel + bias``, on the last axis of its input (Keras 3): a flat
``(features,)`` input gives ``(units,)``, a sequence ``(steps, features)`` gives ``(steps, units)`` (the same
kernel at every step), an image ``(height, width, channels)`` gives ``(height, width, units)``.

Every position's features are one row of the product, so an input of any rank is the matrix
``(N * positions, features)`` (a reshape, no copy), and a flat input is that matrix itself."""

from __future__ import annotations

import math

import numpy as np

from specforge import ops
from specforge.base.layout import NHWC
from specforge.layers.base import (
    Layer,
    Params,
    Shape,
    activation_schema,
    initializer_schema,
    kernel_and_bias,
)
from specforge.options.initializers import compute_fans, initialize


class Dense(Layer):
    type = "Dense"
    masking = "pass"
    description = (
        "Fully connected layer: every output unit is a weighted sum of the input's last axis plus a bias; "
        "applied at every position of a sequence or image (steps, features) -> (steps, units)."
    )
    schema = {
        "units": {"type": "integer", "minimum": 1, "description": "Number of output features."},
        "activation": activation_schema(),
        "use_bias": {"type": "boolean", "default": True, "description": "Whether to add a learned bias per unit."},
        "kernel_initializer": initializer_schema("glorot_uniform", "kernel (input features x units)"),
        "bias_initializer": initializer_schema("zeros", "bias"),
    }
    required = ("units",)
    fuses_activation = True
    examples = [
        ({"units": 3}, (4,)),
        ({"units": 2, "use_bias": False, "activation": "relu", "kernel_initializer": "he_normal"}, (5,)),
        ({"units": 3, "activation": "relu"}, (4, 5)),
        ({"units": 2, "use_bias": False}, (2, 3, 4)),
    ]

    def output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.config["units"])

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {"kernel": (self._features(input_shape), self.config["units"])}
        if self.config["use_bias"]:
            shapes["bias"] = (self.config["units"],)
        return shapes

    def init_params(self, input_shape: Shape, rng: np.random.Generator) -> Params:
        return {
            name: initialize(self.config[f"{name}_initializer"], shape, *compute_fans(shape), rng)
            for name, shape in self.param_shapes(input_shape).items()
        }

    def flops(self, input_shape: Shape) -> int:
        positions = math.prod(input_shape[:-1])
        return 2 * positions * self._features(input_shape) * self.config["units"]

    @staticmethod
    def _features(input_shape: Shape) -> int:
        return int(input_shape[-1])

    def forward(self, params, x, training=False, rng=None, activation=None):
        rows = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
        y, record = ops.dense(rows, params["kernel"], params.get("bias"), activation)
        return y.reshape(*x.shape[:-1], y.shape[-1]), (record, x.shape)

    def backward(self, params, cache, dy, need_dx=True):
        record, x_shape = cache
        dx, dkernel, dbias = ops.dense_gradients(record, dy if dy.ndim == 2 else dy.reshape(-1, dy.shape[-1]), need_dx)
        return (None if dx is None else dx.reshape(x_shape)), kernel_and_bias(dkernel, dbias)

    def to_onnx(self, builder, params, input_name):
        """Gemm on a flat input; MatMul (and Add) on the last axis of a sequence or image, in its NHWC form."""
        kernel = builder.initializer(np.asarray(params["kernel"], np.float32), f"{self.name}_kernel")
        flat = len(builder.shape(input_name)) == 1
        if not flat:
            input_name = builder.to_layout(input_name, NHWC)
        if "bias" not in params:
            return builder.node("MatMul", [input_name, kernel], self.name)
        bias = builder.initializer(np.asarray(params["bias"], np.float32), f"{self.name}_bias")
        if flat:
            return builder.node("Gemm", [input_name, kernel, bias], self.name)
        product = builder.node("MatMul", [input_name, kernel], f"{self.name}_matmul")
        return builder.node("Add", [product, bias], self.name)

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import Dense

        return Dense(node, params)
