"""Dense: a fully connected layer, ``y = x @ kernel + bias``."""

from __future__ import annotations

import numpy as np

from specforge import ops
from specforge.layers.base import (
    Layer,
    Params,
    Shape,
    activation_schema,
    initializer_schema,
    kernel_and_bias,
    shape_error,
)
from specforge.options.initializers import compute_fans, initialize


class Dense(Layer):
    type = "Dense"
    description = "Fully connected layer: every output unit is a weighted sum of all input features plus a bias."
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
    ]

    def output_shape(self, input_shape: Shape) -> Shape:
        self._features(input_shape)
        return (self.config["units"],)

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
        return 2 * self._features(input_shape) * self.config["units"]

    @staticmethod
    def _features(input_shape: Shape) -> int:
        if len(input_shape) != 1:
            raise shape_error(
                f"Dense expects a flat input (features,), got shape {tuple(input_shape)}; "
                "add a Flatten (or GlobalAveragePooling2D) layer before it"
            )
        return int(input_shape[0])

    def forward(self, params, x, training=False, rng=None, activation=None):
        return ops.dense(x, params["kernel"], params.get("bias"), activation)

    def backward(self, params, cache, dy, need_dx=True):
        dx, dkernel, dbias = ops.dense_gradients(cache, dy, need_dx)
        return dx, kernel_and_bias(dkernel, dbias)

    def to_onnx(self, builder, params, input_name):
        kernel = builder.initializer(np.asarray(params["kernel"], np.float32), f"{self.name}_kernel")
        if "bias" not in params:
            return builder.node("MatMul", [input_name, kernel], self.name)
        bias = builder.initializer(np.asarray(params["bias"], np.float32), f"{self.name}_bias")
        return builder.node("Gemm", [input_name, kernel, bias], self.name)

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import Dense

        return Dense(node, params)
