"""Activation layers: Activation (any named function) and the configurable ReLU, LeakyReLU and Softmax."""

from __future__ import annotations

from specforge import ops
from specforge.layers.base import ACTIVATION_NAMES, Layer, Params, Shape
from specforge.options import activations


class ActivationLayer(Layer):
    """A layer that applies one activation function elementwise (softmax: over the channels); the step planner
    knows it by ``function`` (specforge.graph.plan.ActivationNode) and fuses that function into the layer before."""

    applies_activation = True

    def function(self) -> activations.ActivationFunction:
        raise NotImplementedError

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def forward(self, params, x, training=False, rng=None, activation=None):
        y = ops.activate(self.function(), x)
        return y, (x, y)

    def backward(self, params, cache, dy, need_dx=True):
        if not need_dx:
            return None, {}
        x, y = cache
        return ops.activate_gradient(self.function(), x, y, dy), {}

    def to_onnx(self, builder, params, input_name):
        return self.function().to_onnx(builder, input_name, self.name)

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import Activation

        return Activation(node, params)


class Activation(ActivationLayer):
    type = "Activation"
    masking = "pass"
    description = "Applies an activation function to its input."
    schema = {
        "activation": {
            "enum": list(ACTIVATION_NAMES),
            "description": "Name of the function, as Keras 3 defines it: softmax normalises over the "
            "last axis; elu has alpha 1, leaky_relu slope 0.2; gelu is exact (erf); "
            "swish is x * sigmoid(x); selu has Keras' alpha 1.6733 and scale 1.0507; "
            "softplus is log(1 + exp(x)), softsign x / (1 + |x|); hard_sigmoid is "
            "relu6(x + 3) / 6 (Keras 2 had clip(0.2 x + 0.5, 0, 1)); mish is "
            "x * tanh(softplus(x)).",
        },
    }
    required = ("activation",)
    examples = [({"activation": name}, (2, 3, 4)) for name in ACTIVATION_NAMES]

    def function(self):
        return activations.create(self.config["activation"])


class ReLU(ActivationLayer):
    type = "ReLU"
    masking = "pass"
    description = (
        "Rectified linear unit: x above threshold (capped at max_value), negative_slope * (x - threshold) below."
    )
    schema = {
        "max_value": {
            "type": ["number", "null"],
            "minimum": 0,
            "default": None,
            "description": "Largest output value; null: no cap (6 gives ReLU6).",
        },
        "negative_slope": {"type": "number", "minimum": 0, "default": 0.0, "description": "Slope below the threshold."},
        "threshold": {
            "type": "number",
            "minimum": 0,
            "default": 0.0,
            "description": "Input value below which the negative slope applies; not negative, as in Keras.",
        },
    }
    examples = [
        ({}, (3, 2, 2)),
        ({"max_value": 6.0}, (5,)),
        ({"max_value": 1.5, "negative_slope": 0.1, "threshold": 0.5}, (2, 3, 2)),
        # a cap below the threshold: the negative slope still applies on [max_value, threshold)
        ({"max_value": 0.25, "negative_slope": 0.1, "threshold": 0.5}, (4, 5)),
    ]

    def function(self):
        return activations.Relu(self.config["max_value"], self.config["negative_slope"], self.config["threshold"])


class LeakyReLU(ActivationLayer):
    type = "LeakyReLU"
    masking = "pass"
    description = "Leaky rectified linear unit: x for x >= 0, negative_slope * x below."
    schema = {
        "negative_slope": {"type": "number", "minimum": 0, "default": 0.3, "description": "Slope for negative inputs."},
    }
    examples = [({}, (3, 2, 2)), ({"negative_slope": 0.05}, (4,))]

    def function(self):
        return activations.LeakyRelu(self.config["negative_slope"])


class Softmax(ActivationLayer):
    type = "Softmax"
    description = "Softmax over the last axis (the channels of an image): outputs are positive and sum to 1."
    schema = {
        "axis": {"enum": [-1], "default": -1, "description": "The normalised axis; only the last."},
    }
    examples = [({}, (5,)), ({}, (2, 3, 4))]

    def function(self):
        return activations.create("softmax")
