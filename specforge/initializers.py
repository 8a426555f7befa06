"""Weight initializers with Keras 3's formulas, deterministic given the generator.

The variance-scaling family (glorot, he, lecun) draws with variance ``scale / n``
where ``n`` is the fan-in, or the mean of fan-in and fan-out for glorot.  Normal
variants draw from a normal truncated at two standard deviations, whose spread
Keras widens by 1 / 0.8796... so that the truncated draw keeps the variance.
"""

from __future__ import annotations

import math

import numpy as np

from specforge.errors import SpecError
from specforge.registry import Registry

#: Standard deviation of a unit normal truncated to [-2, 2].
_TRUNCATED_STD = 0.87962566103423978

#: name -> (scale, fan mode, distribution) of the variance-scaling initializers.
_VARIANCE_SCALING = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "normal"),
}
_OTHERS = ("zeros", "ones", "random_normal", "random_uniform")
#: Every initializer a spec may name (``initialize`` draws each).
INITIALIZERS: Registry[str] = Registry("initializer", str, (*_VARIANCE_SCALING, *_OTHERS))

#: Keras 3's RandomNormal stddev and RandomUniform bound.
_RANDOM_SCALE = 0.05


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras' fans of a kernel: ``(in, out)`` for a matrix; for a conv kernel ``(kh, kw, in, out)``
    both are multiplied by the receptive field ``kh * kw``."""
    if len(shape) < 2:
        size = int(shape[0]) if shape else 1
        return size, size
    receptive_field = math.prod(shape[:-2])
    return int(shape[-2]) * receptive_field, int(shape[-1]) * receptive_field


def initialize(name: str, shape: tuple[int, ...], fan_in: int, fan_out: int,
               rng: np.random.Generator, dtype: np.dtype | type = np.float32) -> np.ndarray:
    """A new array of ``shape`` filled by the initializer called ``name``."""
    if name in _VARIANCE_SCALING:
        scale, mode, distribution = _VARIANCE_SCALING[name]
        n = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, n)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            values = rng.uniform(-limit, limit, size=shape)
        else:
            values = _truncated_normal(shape, math.sqrt(variance) / _TRUNCATED_STD, rng)
    elif name == "zeros":
        values = np.zeros(shape)
    elif name == "ones":
        values = np.ones(shape)
    elif name == "random_normal":
        values = rng.normal(0.0, _RANDOM_SCALE, size=shape)
    elif name == "random_uniform":
        values = rng.uniform(-_RANDOM_SCALE, _RANDOM_SCALE, size=shape)
    else:
        raise SpecError(f"unknown initializer {name!r}; use one of: {', '.join(INITIALIZERS)}")
    return np.asarray(values, dtype=dtype)


def _truncated_normal(shape: tuple[int, ...], stddev: float, rng: np.random.Generator) -> np.ndarray:
    """Normal draws with those beyond two standard deviations redrawn (as Keras' TruncatedNormal)."""
    values = rng.standard_normal(size=shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(size=int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values * stddev
