"""Dropout: randomly zeroes inputs during training (inverted dropout); the identity at inference."""

from __future__ import annotations

from typing import Any

import numpy as np

from specforge.layers.base import Layer, Shape


class Dropout(Layer):
    type = "Dropout"
    description = ("During training, sets each input to 0 with probability rate and scales the others by "
                   "1 / (1 - rate), so that inference needs no rescaling; does nothing at inference.")
    schema = {
        "rate": {"type": "number", "minimum": 0, "exclusiveMaximum": 1,
                 "description": "Fraction of the inputs to drop, in [0, 1)."},
        "seed": {"type": ["integer", "null"], "minimum": 0, "default": None,
                 "description": "Seed of this layer's masks; null: drawn from the run's random generator."},
    }
    required = ("rate",)
    examples = [({"rate": 0.5}, (3, 4)), ({"rate": 0.25, "seed": 7}, (6,))]

    def __init__(self, config: dict[str, Any] | None = None, name: str | None = None):
        super().__init__(config, name)
        seed = self.config["seed"]
        self._rng = None if seed is None else np.random.default_rng(seed)

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def forward(self, params, x, training=False, rng=None, activation=None):
        rate = self.config["rate"]
        if not training or rate == 0:
            return x, None
        generator = self._rng if self._rng is not None else rng
        if generator is None:
            raise ValueError("Dropout in training needs a random generator: pass rng or set seed")
        mask = (generator.random(x.shape, dtype=np.float32) >= rate).astype(x.dtype)
        mask *= 1 / (1 - rate)
        return x * mask, mask

    def backward(self, params, cache, dy, need_dx=True):
        if not need_dx:
            return None, {}
        return (dy if cache is None else dy * cache), {}

    def to_onnx(self, builder, params, input_name):
        return input_name
