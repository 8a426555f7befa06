"""Embedding: a learned vector per integer id (Keras 3's ``Embedding``), the first layer of a text model fed
token ids (a text source with ``vectorize.output_mode: int``)."""

from __future__ import annotations

import numpy as np

from specforge.base.errors import DataError
from specforge.layers.base import Layer, initializer_schema
from specforge.options.initializers import compute_fans, initialize


class Embedding(Layer):
    type = "Embedding"
    description = (
        "Row i of a learned (input_dim, output_dim) table for each integer id i: ids of shape (steps,) "
        "become (steps, output_dim). Takes the model's input of token ids (a text source with "
        "vectorize.output_mode: int)."
    )
    schema = {
        "input_dim": {
            "type": "integer",
            "minimum": 1,
            "description": "How many ids: the vocabulary's size, padding and out-of-vocabulary ids "
            "included (the largest id + 1).",
        },
        "output_dim": {"type": "integer", "minimum": 1, "description": "Values per id."},
        "embeddings_initializer": initializer_schema(
            "random_uniform", "table (Keras' default: uniform on [-0.05, 0.05])"
        ),
        "mask_zero": {
            "type": "boolean",
            "default": False,
            "description": "Whether id 0 (padding) is masked: the output carries a mask, false at the steps "
            "whose id is 0, which the layers after pass on or take as Keras' do (the recurrent layers skip "
            "those steps, attention does not attend to them, GlobalAveragePooling1D leaves them out of its "
            "mean). Id 0 must then be padding only, as vectorization makes it.",
        },
    }
    required = ("input_dim", "output_dim")
    examples = [
        ({"input_dim": 5, "output_dim": 3}, (4,)),
        ({"input_dim": 7, "output_dim": 2, "embeddings_initializer": "glorot_uniform"}, (3, 2)),
        ({"input_dim": 6, "output_dim": 2, "mask_zero": True}, (5,)),
    ]
    input_dtype = "int"

    def makes_mask(self) -> bool:
        return bool(self.config["mask_zero"])

    def output_shape(self, input_shape):
        return (*input_shape, self.config["output_dim"])

    def param_shapes(self, input_shape):
        return {"embeddings": (self.config["input_dim"], self.config["output_dim"])}

    def init_params(self, input_shape, rng):
        shape = self.param_shapes(input_shape)["embeddings"]
        return {"embeddings": initialize(self.config["embeddings_initializer"], shape, *compute_fans(shape), rng)}

    def forward(self, params, x, training=False, rng=None, activation=None):
        table = params["embeddings"]
        outside = (x < 0) | (x >= len(table))
        if outside.any():
            raise DataError(
                f"{self.name}: id {int(x[outside][0])} is outside [0, input_dim {len(table)}); give "
                "input_dim the vocabulary's size"
            )
        return table[x], x

    def backward(self, params, cache, dy, need_dx=True):
        table = np.zeros(params["embeddings"].shape, dtype=dy.dtype)
        np.add.at(table, cache.reshape(-1), dy.reshape(-1, table.shape[1]))
        return None, {"embeddings": table}

    def to_onnx(self, builder, params, input_name):
        table = builder.initializer(params["embeddings"].astype(np.float32), f"{self.name}_embeddings")
        return builder.node("Gather", [table, input_name], self.name, axis=0)

    def to_torch(self, node, params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import Embedding

        return Embedding(node, params)
