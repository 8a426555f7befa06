"""Position embeddings of a sequence (keras_hub's ``PositionEmbedding`` and ``SinePositionEncoding``).

As in keras_hub, such a layer adds nothing itself: its output is the embedding of each position,
``(steps, features)`` like its input and the same for every example of the batch, and a spec adds it to the
sequence with an ``Add`` layer (``inputs: [tokens, positions]``). The input gives only the number of steps and
features; its values do not matter, so its gradient is zero.
"""

from __future__ import annotations

import numpy as np

from specforge.layers.base import Layer, Params, Shape, initializer_schema, shape_error
from specforge.layers.sequence import require_sequence
from specforge.options.initializers import compute_fans, initialize


class _PositionLayer(Layer):
    """A table of ``(steps, features)`` position values broadcast over the batch; the kinds give the table."""

    def output_shape(self, input_shape: Shape) -> Shape:
        return require_sequence(self.type, input_shape)

    def table(self, params: Params, steps: int, features: int) -> np.ndarray:
        """The values of the first ``steps`` positions, ``(steps, features)``."""
        raise NotImplementedError

    def forward(self, params, x, training=False, rng=None, activation=None):
        y = np.empty(x.shape, np.result_type(x, *params.values()))
        y[...] = self.table(params, x.shape[1], x.shape[2])
        return y, x.shape

    def backward(self, params, cache, dy, need_dx=True):
        grads = self.table_gradients(params, dy)
        return (np.zeros(cache, dy.dtype) if need_dx else None), grads

    def table_gradients(self, params: Params, dy: np.ndarray) -> Params:
        """The gradients of the parameters given the output's."""
        return {}

    def to_onnx(self, builder, params: Params, input_name: str) -> str:
        """The table as an initializer, expanded to ``(N, steps, features)``: only the input's batch size is read
        (whichever layout it is in, so that no Transpose is made for it)."""
        steps, features = builder.shape(input_name)
        table = builder.initializer(self.table(params, steps, features).astype(np.float32), f"{self.name}_table")
        shape = builder.node("Shape", [input_name], f"{self.name}_input_shape")
        batch = builder.node(
            "Slice",
            [shape, builder.constant_int64([0], f"{self.name}_start"), builder.constant_int64([1], f"{self.name}_end")],
            f"{self.name}_batch",
        )
        rest = builder.constant_int64([steps, features], f"{self.name}_positions_shape")
        target = builder.node("Concat", [batch, rest], f"{self.name}_shape", axis=0)
        return builder.node("Expand", [table, target], self.name)

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import PositionTable

        return PositionTable(node, params)


class PositionEmbedding(_PositionLayer):
    type = "PositionEmbedding"
    masking = "pass"
    description = (
        "A learned embedding per position (keras_hub's PositionEmbedding): the output is row t of a "
        "(sequence_length, features) table at step t, for every example; add it to the sequence with Add."
    )
    schema = {
        "sequence_length": {
            "type": "integer",
            "minimum": 1,
            "description": "Most steps a sequence may have: the table's rows.",
        },
        "initializer": initializer_schema("glorot_uniform", "table (sequence_length, features)"),
    }
    required = ("sequence_length",)
    examples = [({"sequence_length": 4}, (4, 3)), ({"sequence_length": 6, "initializer": "random_uniform"}, (3, 2))]

    def output_shape(self, input_shape: Shape) -> Shape:
        steps, features = super().output_shape(input_shape)
        if steps > self.config["sequence_length"]:
            raise shape_error(
                f"PositionEmbedding has sequence_length {self.config['sequence_length']} positions but its input "
                f"{tuple(input_shape)} has {steps} steps; give sequence_length at least {steps}"
            )
        return steps, features

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        return {"embeddings": (self.config["sequence_length"], self.output_shape(input_shape)[1])}

    def init_params(self, input_shape: Shape, rng: np.random.Generator) -> Params:
        shape = self.param_shapes(input_shape)["embeddings"]
        return {"embeddings": initialize(self.config["initializer"], shape, *compute_fans(shape), rng)}

    def table(self, params, steps, features):
        return params["embeddings"][:steps]

    def table_gradients(self, params, dy):
        grad = np.zeros(params["embeddings"].shape, dy.dtype)
        grad[: dy.shape[1]] = dy.sum(axis=0)
        return {"embeddings": grad}


def sine_table(steps: int, features: int, max_wavelength: float) -> np.ndarray:
    """keras_hub's encoding ``(steps, features)``: position p at feature i is ``sin(p / w_i)`` for an even i,
    ``cos(p / w_i)`` for an odd one, with ``w_i = max_wavelength ** (2 * (i // 2) / features)``."""
    positions = np.arange(steps, dtype=np.float64)[:, None]
    timescales = (1 / max_wavelength) ** (2 * (np.arange(features) // 2) / features)
    angles = positions * timescales[None, :]
    return np.where(np.arange(features) % 2 == 0, np.sin(angles), np.cos(angles))


class SinePositionEncoding(_PositionLayer):
    type = "SinePositionEncoding"
    masking = "pass"
    description = (
        "The fixed sinusoidal encoding of each position (keras_hub's SinePositionEncoding, from 'Attention Is "
        "All You Need'): sines on the even features, cosines on the odd, over geometrically spaced "
        "wavelengths; no weights. Add it to the sequence with Add."
    )
    schema = {
        "max_wavelength": {
            "type": "number",
            "exclusiveMinimum": 1,
            "default": 10000,
            "description": "The longest wavelength of the sines and cosines (that of the last features).",
        },
    }
    examples = [({}, (5, 4)), ({"max_wavelength": 100}, (3, 5))]

    def table(self, params: Params, steps: int, features: int) -> np.ndarray:
        return sine_table(steps, features, self.config["max_wavelength"])
