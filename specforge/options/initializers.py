"""Weight initializers with Keras 3's formulas, deterministic given the generator.

The variance-scaling family (glorot, he, lecun) draws with variance ``scale / n``
where ``n`` is the fan-in, or the mean of fan-in and fan-out for glorot.  Normal
variants draw from a normal truncated at two standard deviations, whose spread
Keras widens by 1 / 0.8796... so that the truncated draw keeps the variance.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from specforge.base.errors import SpecError
from specforge.base.registry import Kind, Registry

#: Standard deviation of a unit normal truncated to [-2, 2].
_TRUNCATED_STD = 0.87962566103423978

#: Keras 3's RandomNormal stddev and RandomUniform bound.
_RANDOM_SCALE = 0.05


#: Every initializer a spec may name, by name: each ``Initializer`` subclass with a ``name``, as it is defined.
INITIALIZERS: Registry[type[Initializer]] = Registry("initializer", lambda kind: kind.name)


class Initializer(Kind, registry=INITIALIZERS, key="name"):
    """One initializer a spec may name in a layer's ``*_initializer`` option: ``draw`` fills a new array."""

    name: ClassVar[str]
    description: ClassVar[str]

    @classmethod
    def json_schema(cls) -> dict:
        """The JSON Schema fragment of a value naming this initializer."""
        return {"const": cls.name, "description": cls.description}

    #: Valid values naming this initializer: its name alone (it takes no options).
    examples: ClassVar[list[str]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if "name" in cls.__dict__:
            cls.examples = [cls.name]
        super().__init_subclass__(**kwargs)

    def draw(self, shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        """Values of ``shape`` for a weight with these fans, drawn from ``rng``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class VarianceScaling(Initializer):
    """Variance ``scale / n``, ``n`` the fan-in or (``fan_avg``) the mean of fan-in and fan-out, drawn
    uniformly on [-sqrt(3 variance), sqrt(3 variance)] or from a normal truncated at two standard deviations.
    A kind sets the four and is described by them."""

    scale: ClassVar[float]
    mode: ClassVar[str]
    distribution: ClassVar[str]
    author: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        fan = {"fan_in": "fan-in", "fan_avg": "((fan-in + fan-out) / 2)"}[cls.mode]
        shape = {"uniform": "uniform", "normal": "truncated normal"}[cls.distribution]
        cls.description = f"{cls.author}: {shape} with variance {cls.scale:g} / {fan}."
        super().__init_subclass__(**kwargs)

    def draw(self, shape, fan_in, fan_out, rng):
        n = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, size=shape)
        return _truncated_normal(shape, math.sqrt(variance) / _TRUNCATED_STD, rng)


class GlorotUniform(VarianceScaling):
    name = "glorot_uniform"
    scale, mode, distribution, author = 1.0, "fan_avg", "uniform", "Glorot (Xavier) uniform"


class GlorotNormal(VarianceScaling):
    name = "glorot_normal"
    scale, mode, distribution, author = 1.0, "fan_avg", "normal", "Glorot (Xavier) normal"


class HeUniform(VarianceScaling):
    name = "he_uniform"
    scale, mode, distribution, author = 2.0, "fan_in", "uniform", "He uniform"


class HeNormal(VarianceScaling):
    name = "he_normal"
    scale, mode, distribution, author = 2.0, "fan_in", "normal", "He normal"


class LecunUniform(VarianceScaling):
    name = "lecun_uniform"
    scale, mode, distribution, author = 1.0, "fan_in", "uniform", "LeCun uniform"


class LecunNormal(VarianceScaling):
    name = "lecun_normal"
    scale, mode, distribution, author = 1.0, "fan_in", "normal", "LeCun normal"


class Constant(Initializer):
    """Every value the same; draws nothing from the generator."""

    value: ClassVar[float]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        cls.description = f"Every value {cls.value:g}."
        super().__init_subclass__(**kwargs)

    def draw(self, shape, fan_in, fan_out, rng):
        return np.full(shape, self.value, dtype=np.float64)


class Zeros(Constant):
    name = "zeros"
    value = 0.0


class Ones(Constant):
    name = "ones"
    value = 1.0


class RandomNormal(Initializer):
    name = "random_normal"
    description = f"Normal with mean 0 and standard deviation {_RANDOM_SCALE} (Keras' RandomNormal)."

    def draw(self, shape, fan_in, fan_out, rng):
        return rng.normal(0.0, _RANDOM_SCALE, size=shape)


class RandomUniform(Initializer):
    name = "random_uniform"
    description = f"Uniform on [-{_RANDOM_SCALE}, {_RANDOM_SCALE}] (Keras' RandomUniform)."

    def draw(self, shape, fan_in, fan_out, rng):
        return rng.uniform(-_RANDOM_SCALE, _RANDOM_SCALE, size=shape)


class Orthogonal(Initializer):
    """Keras' Orthogonal (gain 1): the Q of a normal matrix's QR decomposition, its columns' signs set by R's
    diagonal so that the draw is uniform over orthogonal matrices; a kernel with fewer rows than columns gets
    the transpose (orthonormal rows)."""

    name = "orthogonal"
    description = "A (semi-)orthogonal matrix: Q of the QR decomposition of a standard normal draw (Keras' Orthogonal)."

    def draw(self, shape, fan_in, fan_out, rng):
        rows, columns = math.prod(shape[:-1]), shape[-1]
        q, r = np.linalg.qr(rng.standard_normal((max(rows, columns), min(rows, columns))))
        q *= np.sign(np.diag(r))
        return (q.T if rows < columns else q).reshape(shape)


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras' fans of a kernel: ``(in, out)`` for a matrix; for a conv kernel ``(kh, kw, in, out)``
    both are multiplied by the receptive field ``kh * kw``."""
    if len(shape) < 2:
        size = int(shape[0]) if shape else 1
        return size, size
    receptive_field = math.prod(shape[:-2])
    return int(shape[-2]) * receptive_field, int(shape[-1]) * receptive_field


def initialize(
    name: str,
    shape: tuple[int, ...],
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator,
    dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """A new array of ``shape`` filled by the initializer called ``name``."""
    return np.asarray(create(name).draw(shape, fan_in, fan_out, rng), dtype=dtype)


def create(name: str) -> Initializer:
    """The initializer called ``name`` in a spec; a SpecError listing the valid names otherwise."""
    if name not in INITIALIZERS:
        raise SpecError(f"unknown initializer {name!r}; use one of: {', '.join(INITIALIZERS)}")
    return INITIALIZERS[name]()


def _truncated_normal(shape: tuple[int, ...], stddev: float, rng: np.random.Generator) -> np.ndarray:
    """Normal draws with those beyond two standard deviations redrawn (as Keras' TruncatedNormal)."""
    values = rng.standard_normal(size=shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(size=int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values * stddev
