"""BatchNormalization over the last axis (the channels), as Keras 3."""

from __future__ import annotations

import numpy as np

from specforge import ops
from specforge.base.layout import NCHW
from specforge.layers.base import Layer, Params, Shape, initializer_schema
from specforge.options.initializers import compute_fans, initialize


class BatchNormalization(Layer):
    """Training normalises with the batch's statistics over every axis but the channels (biased
    variance) and returns the moved running statistics as ``new_state``; inference uses the running
    statistics."""

    type = "BatchNormalization"
    description = (
        "Normalises each channel to zero mean and unit variance (batch statistics in training, "
        "moving averages at inference), then scales by gamma and shifts by beta."
    )
    schema = {
        "axis": {"enum": [-1], "default": -1, "description": "The normalised axis; only the last (channels)."},
        "momentum": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.99,
            "description": "Weight of the old value in the moving mean and variance updates.",
        },
        "epsilon": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 0.001,
            "description": "Added to the variance before the square root, for stability.",
        },
        "center": {"type": "boolean", "default": True, "description": "Whether to learn a shift beta."},
        "scale": {"type": "boolean", "default": True, "description": "Whether to learn a scale gamma."},
        "beta_initializer": initializer_schema("zeros", "shift beta"),
        "gamma_initializer": initializer_schema("ones", "scale gamma"),
    }
    examples = [
        ({}, (3, 2, 4)),
        ({"momentum": 0.9, "epsilon": 0.01, "center": False, "gamma_initializer": "random_uniform"}, (5,)),
        ({"scale": False}, (2, 3)),
    ]
    non_trainable = ("moving_mean", "moving_variance")
    fuses_activation = True

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        channels = (input_shape[-1],)
        learned = [name for name, on in (("gamma", self.config["scale"]), ("beta", self.config["center"])) if on]
        return dict.fromkeys((*learned, *self.non_trainable), channels)

    def init_params(self, input_shape: Shape, rng: np.random.Generator) -> Params:
        initializers = {
            "gamma": self.config["gamma_initializer"],
            "beta": self.config["beta_initializer"],
            "moving_mean": "zeros",
            "moving_variance": "ones",
        }
        return {
            name: initialize(initializers[name], shape, *compute_fans(shape), rng)
            for name, shape in self.param_shapes(input_shape).items()
        }

    def flops(self, input_shape: Shape) -> int:
        return 2 * int(np.prod(input_shape))

    def forward(self, params, x, training=False, rng=None, activation=None):
        """Per channel ``y = (x - mean) * scale + beta`` with ``scale = gamma / sqrt(variance + epsilon)``
        (``ops.batch_norm``), the batch's statistics in training, the moving ones at inference; the fused
        ``activation`` is applied to ``y`` in place."""
        statistics = None if training else (params["moving_mean"], params["moving_variance"])
        y, mean, variance, record = ops.batch_norm(
            x, params.get("gamma"), params.get("beta"), self.config["epsilon"], activation, statistics
        )
        state = {}
        if training:
            momentum = self.config["momentum"]
            for name, batch in (("moving_mean", mean), ("moving_variance", variance)):
                state[name] = params[name] * momentum
                state[name] += (1 - momentum) * batch
        return y, (record, state)

    def new_state(self, cache):
        return cache[1]

    def backward(self, params, cache, dy, need_dx=True):
        """The gradients of ``ops.batch_norm`` (``ops.batch_norm_gradients``)."""
        dx, dgamma, dbeta = ops.batch_norm_gradients(cache[0], dy, need_dx)
        return dx, {name: value for name, value in (("gamma", dgamma), ("beta", dbeta)) if name in params}

    def to_onnx(self, builder, params, input_name):
        """Folded into one Mul and one Add per channel; constants shaped to broadcast in the tensor's layout."""
        inv_std = 1 / np.sqrt(params["moving_variance"].astype(np.float64) + self.config["epsilon"])
        scale = inv_std * params["gamma"] if "gamma" in params else inv_std
        shift = -params["moving_mean"] * scale
        if "beta" in params:
            shift = shift + params["beta"]
        if builder.layout(input_name) == NCHW and len(builder.shape(input_name)) in (2, 3):
            # an image (C, H, W), or a sequence as one (C, 1, steps)
            scale, shift = scale[:, None, None], shift[:, None, None]
        scaled = builder.node(
            "Mul",
            [input_name, builder.initializer(scale.astype(np.float32), f"{self.name}_scale")],
            f"{self.name}_scaled",
        )
        return builder.node(
            "Add", [scaled, builder.initializer(shift.astype(np.float32), f"{self.name}_shift")], self.name
        )

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import BatchNormalization

        return BatchNormalization(node, params)
