"""Dropout and SpatialDropout2D: randomly zero inputs (or whole channels) during training (inverted dropout);
the identity at inference."""

from __future__ import annotations

from typing import Any

import numpy as np

from specforge.layers.base import Layer, Params, Shape
from specforge.layers.windows import require_image


class Dropout(Layer):
    type = "Dropout"
    masking = "pass"
    description = (
        "During training, sets each input to 0 with probability rate and scales the others by "
        "1 / (1 - rate), so that inference needs no rescaling; does nothing at inference."
    )
    schema = {
        "rate": {
            "type": "number",
            "minimum": 0,
            "exclusiveMaximum": 1,
            "description": "Fraction of the inputs to drop, in [0, 1).",
        },
        "seed": {
            "type": ["integer", "null"],
            "minimum": 0,
            "default": None,
            "description": "Seed of this layer's masks; null: drawn from the run's random generator.",
        },
    }
    required = ("rate",)
    examples = [({"rate": 0.5}, (3, 4)), ({"rate": 0.25, "seed": 7}, (6,))]

    def __init__(self, config: dict[str, Any], name: str | None = None):
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
        mask = (generator.random(self.mask_shape(x.shape), dtype=np.float32) >= rate).astype(x.dtype)
        mask *= 1 / (1 - rate)
        return x * mask, mask

    def mask_shape(self, shape: Shape) -> Shape:
        """The shape of the random mask for inputs of ``shape`` (batch included); it broadcasts over the rest."""
        return shape

    def backward(self, params, cache, dy, need_dx=True):
        if not need_dx:
            return None, {}
        return (dy if cache is None else dy * cache), {}

    def to_onnx(self, builder, params, input_name):
        return input_name

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import Dropout

        return Dropout(node, params)


class SpatialDropout2D(Dropout):
    """Keras' SpatialDropout2D: one draw per example and channel, so that neighbouring pixels, which are
    strongly correlated in feature maps, are dropped together."""

    type = "SpatialDropout2D"
    description = (
        "During training, sets whole channels of an image to 0 with probability rate (the same "
        "channels at every pixel of an example) and scales the others by 1 / (1 - rate); does nothing "
        "at inference."
    )
    examples = [({"rate": 0.5}, (3, 4, 5)), ({"rate": 0.25, "seed": 7}, (2, 2, 6))]

    def output_shape(self, input_shape: Shape) -> Shape:
        return require_image(self.type, input_shape)

    def mask_shape(self, shape: Shape) -> Shape:
        require_image(self.type, shape[1:])
        return (shape[0], 1, 1, shape[3])
