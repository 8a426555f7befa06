"""Activation functions: the forward, the backward and the ONNX nodes of each, side by side.

Semantics follow Keras 3: softmax over the last axis, ``elu`` with alpha 1,
``leaky_relu`` with negative slope 0.2, exact (erf) ``gelu``, ``swish`` = x * sigmoid(x),
``selu`` with Keras' alpha and scale, ``hard_sigmoid`` = relu6(x + 3) / 6 (Keras 3.0 and later;
Keras 2 used clip(0.2 x + 0.5, 0, 1)), ``mish`` = x * tanh(softplus(x)).

``backward(z, y, dy)`` receives the input ``z`` and output ``y`` of the forward
(each function uses whichever is cheaper) and returns ``dL/dz``.  Everything
keeps the dtype of its input, so float64 gradient checks see float64 math.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from specforge.base.errors import SpecError
from specforge.base.layout import NHWC
from specforge.base.registry import Kind, Registry

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# Chebyshev coefficients of erfc (Numerical Recipes, 3rd ed., section 6.2.2): about 1e-16 absolute accuracy.
_ERFC_COEFFICIENTS = (
    -1.3026537197817094,
    6.4196979235649026e-1,
    1.9476473204185836e-2,
    -9.561514786808631e-3,
    -9.46595344482036e-4,
    3.66839497852761e-4,
    4.2523324806907e-5,
    -2.0278578112534e-5,
    -1.624290004647e-6,
    1.303655835580e-6,
    1.5626441722e-8,
    -8.5238095915e-8,
    6.529054439e-9,
    5.059343495e-9,
    -9.91364156e-10,
    -2.27365122e-10,
    9.6467911e-11,
    2.394038e-12,
    -6.886027e-12,
    8.94487e-13,
    3.13092e-13,
    -1.12708e-13,
    3.81e-16,
    7.106e-15,
    -1.523e-15,
    -9.4e-17,
    1.21e-16,
    -2.8e-17,
)


# XLA's float32 erf: x * P(x^2) / Q(x^2) on [-3.8325, 3.8325] (beyond it erf rounds to +-1 in float32).
_ERF32_CLAMP = np.float32(3.832506856900711)
_ERF32_NUMERATOR = tuple(
    np.float32(c)
    for c in (
        0.00022905065861350646,
        0.0034082910107109506,
        0.050955695062380861,
        0.18520832239976145,
        1.128379143519084,
    )
)
_ERF32_DENOMINATOR = tuple(
    np.float32(c)
    for c in (
        -1.1791602954361697e-7,
        0.000023547966471313185,
        0.0010179625278914885,
        0.014070470171167667,
        0.11098505178285362,
        0.49746925110067538,
        1.0,
    )
)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, in ``x``'s dtype: float32 as a rational function evaluated in float32
    (within 3.2e-7 of the exact value), anything else through float64 Chebyshev series (about 1e-16)."""
    x = np.asarray(x)
    if x.dtype == np.float32:
        return _erf32(x)
    z = np.abs(x, dtype=np.float64)
    t = 2.0 / (2.0 + z)
    ty = 4.0 * t - 2.0
    d = np.zeros_like(z)
    dd = np.zeros_like(z)
    for c in _ERFC_COEFFICIENTS[:0:-1]:
        d, dd = ty * d - dd + c, d
    erfc = t * np.exp(-z * z + 0.5 * (_ERFC_COEFFICIENTS[0] + ty * d) - dd)
    return (np.sign(x) * (1.0 - erfc)).astype(x.dtype, copy=False)


def _erf32(x: np.ndarray) -> np.ndarray:
    clamped = np.clip(x, -_ERF32_CLAMP, _ERF32_CLAMP)
    squares = clamped * clamped
    numerator = np.full_like(squares, _ERF32_NUMERATOR[0])
    for c in _ERF32_NUMERATOR[1:]:
        numerator *= squares
        numerator += c
    denominator = np.full_like(squares, _ERF32_DENOMINATOR[0])
    for c in _ERF32_DENOMINATOR[1:]:
        denominator *= squares
        denominator += c
    numerator *= clamped
    numerator /= denominator
    return np.clip(numerator, -1, 1, out=numerator)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Stable logistic: exp only ever sees non-positive numbers, so nothing overflows."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


def _scalar(builder, value: float, hint: str) -> str:
    return builder.initializer(np.asarray(value, dtype=np.float32), hint)


#: Every activation a spec may name, by name: each ``ActivationFunction`` subclass with a ``name``, as it is
#: defined.
ACTIVATIONS: Registry[type[ActivationFunction]] = Registry("activation", lambda kind: kind.name)


class ActivationFunction(Kind, registry=ACTIVATIONS, key="name"):
    """One activation: ``forward(z)``, ``backward(z, y, dy)`` and ``to_onnx(builder, input_name, hint)``.
    A spec names it without options; ``create`` makes it with its constructor's (Keras') parameters."""

    name: ClassVar[str]
    #: Whether ``backward`` needs only the output: ``backward(y, y, dy)`` is the gradient, so the function
    #: can overwrite its input with its output (a layer applying it to its own output in place).
    #: Read-only: most kinds set it on the class, ReLU computes it from its threshold (a property).
    if TYPE_CHECKING:

        @property
        def output_suffices(self) -> bool: ...
    else:
        output_suffices = False

    def forward(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, z: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward_into(self, z: np.ndarray, out: np.ndarray) -> None:
        """``out[...] = forward(z)``; a function that can write straight into ``out`` overrides it."""
        out[...] = self.forward(z)

    def backward_into(self, z: np.ndarray, y: np.ndarray, dy: np.ndarray, out: np.ndarray) -> None:
        """``out[...] = backward(z, y, dy)``; a function that can write straight into ``out`` overrides it."""
        out[...] = self.backward(z, y, dy)

    def to_onnx(self, builder, input_name: str, hint: str) -> str:
        raise NotImplementedError


class Linear(ActivationFunction):
    name = "linear"
    output_suffices = True

    def forward(self, z):
        return z

    def backward(self, z, y, dy):
        return dy

    def to_onnx(self, builder, input_name, hint):
        return input_name


class _WritesInto(ActivationFunction):
    """A function written as ``forward_into`` and ``backward_into``: ``forward`` and ``backward`` make the array."""

    def forward(self, z):
        y = np.empty_like(z)
        self.forward_into(z, y)
        return y

    def backward(self, z, y, dy):
        dz = np.empty(dy.shape, np.result_type(z, dy))
        self.backward_into(z, y, dy, dz)
        return dz


class Relu(_WritesInto):
    """Keras' ReLU with its options: ``x`` above ``threshold`` (capped at ``max_value``),
    ``negative_slope * (x - threshold)`` below; the defaults give max(x, 0)."""

    name = "relu"

    def __init__(self, max_value: float | None = None, negative_slope: float = 0.0, threshold: float = 0.0):
        self.max_value = max_value
        self.negative_slope = negative_slope
        self.threshold = threshold

    @property
    def rectifies_at_zero(self) -> bool:
        """Whether it is max(x, 0) below its cap: no threshold and no negative slope."""
        return self.threshold == 0 and self.negative_slope == 0

    @property
    def is_plain(self) -> bool:
        """Whether this is max(x, 0), with no cap, slope or threshold."""
        return self.rectifies_at_zero and self.max_value is None

    @property
    def output_suffices(self) -> bool:
        """With threshold 0 the output is above 0 (and below max_value) exactly where the input is."""
        return self.threshold == 0

    def forward_into(self, z, out):
        if self.rectifies_at_zero:
            np.maximum(z, 0, out=out)
        else:
            np.copyto(out, np.where(z > self.threshold, z, self.negative_slope * (z - self.threshold)))
        if self.max_value is not None:
            np.minimum(out, self.max_value, out=out)

    def backward_into(self, z, y, dy, out):
        above = z > self.threshold
        if self.negative_slope:
            np.copyto(out, np.where(above, dy, self.negative_slope * dy))
        else:
            np.multiply(dy, above, out=out)
        if self.max_value is not None:
            # Only values above the threshold reach the cap (below it the output is at most 0).
            out *= (z < self.max_value) | ~above

    def to_onnx(self, builder, input_name, hint):
        """The node making the output is hinted ``hint`` (the Min when capped), as every conversion's. A capped
        plain ReLU (ReLU6) is one Clip, which onnxruntime fuses into the convolution before it."""
        if self.max_value is not None and self.rectifies_at_zero:
            return builder.node(
                "Clip",
                [input_name, _scalar(builder, 0.0, f"{hint}_min"), _scalar(builder, self.max_value, f"{hint}_max")],
                hint,
            )
        rectified = hint if self.max_value is None else f"{hint}_uncapped"
        if self.threshold == 0:
            if self.negative_slope:
                y = builder.node("LeakyRelu", [input_name], rectified, alpha=float(self.negative_slope))
            else:
                y = builder.node("Relu", [input_name], rectified)
        else:
            t = _scalar(builder, self.threshold, f"{hint}_threshold")
            below = builder.node(
                "Mul",
                [
                    builder.node("Sub", [input_name, t], f"{hint}_shifted"),
                    _scalar(builder, self.negative_slope, f"{hint}_slope"),
                ],
                f"{hint}_below",
            )
            above = builder.node("Greater", [input_name, t], f"{hint}_above")
            y = builder.node("Where", [above, input_name, below], rectified)
        if self.max_value is not None:
            y = builder.node("Min", [y, _scalar(builder, self.max_value, f"{hint}_max")], hint)
        return y


class Sigmoid(ActivationFunction):
    name = "sigmoid"
    output_suffices = True

    def forward(self, z):
        return _sigmoid(z)

    def backward(self, z, y, dy):
        return dy * y * (1 - y)

    def to_onnx(self, builder, input_name, hint):
        return builder.node("Sigmoid", [input_name], hint)


class Tanh(ActivationFunction):
    name = "tanh"
    output_suffices = True

    def forward(self, z):
        return np.tanh(z)

    def backward(self, z, y, dy):
        return dy * (1 - y * y)

    def to_onnx(self, builder, input_name, hint):
        return builder.node("Tanh", [input_name], hint)


class Softmax(ActivationFunction):
    """Softmax over the last axis of the logical (NHWC) shape: the channels of an image."""

    name = "softmax"
    output_suffices = True

    def forward(self, z):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        e /= e.sum(axis=-1, keepdims=True)
        return e

    def backward(self, z, y, dy):
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))

    def to_onnx(self, builder, input_name, hint):
        return builder.node("Softmax", [builder.to_layout(input_name, NHWC)], hint, axis=-1)


class Elu(ActivationFunction):
    """ELU with alpha 1: ``x`` above 0, ``exp(x) - 1`` below."""

    name = "elu"
    output_suffices = True

    def forward(self, z):
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))

    def backward(self, z, y, dy):
        return dy * np.where(z > 0, 1, y + 1)

    def to_onnx(self, builder, input_name, hint):
        return builder.node("Elu", [input_name], hint, alpha=1.0)


class LeakyRelu(Relu):
    name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.2):
        super().__init__(negative_slope=negative_slope)


class Gelu(ActivationFunction):
    """Exact GELU: ``x * Phi(x)`` with Phi the standard normal CDF, ``0.5 * (1 + erf(x / sqrt 2))``."""

    name = "gelu"

    def forward(self, z):
        return 0.5 * z * (1 + erf(z / _SQRT2))

    def backward(self, z, y, dy):
        cdf = 0.5 * (1 + erf(z / _SQRT2))
        return dy * (cdf + z * _INV_SQRT_2PI * np.exp(-0.5 * z * z))

    def to_onnx(self, builder, input_name, hint):
        scaled = builder.node("Div", [input_name, _scalar(builder, _SQRT2, f"{hint}_sqrt2")], f"{hint}_scaled")
        erf_1 = builder.node(
            "Add",
            [builder.node("Erf", [scaled], f"{hint}_erf"), _scalar(builder, 1.0, f"{hint}_one")],
            f"{hint}_erf_plus_1",
        )
        half_x = builder.node("Mul", [input_name, _scalar(builder, 0.5, f"{hint}_half")], f"{hint}_half_x")
        return builder.node("Mul", [half_x, erf_1], hint)


class Swish(_WritesInto):
    """``x * sigmoid(x)`` (also called SiLU), computed as ``x / (1 + exp(-x))``: where ``exp(-x)`` overflows to
    infinity the quotient is the right limit, 0 (a third of the passes of the stable sigmoid's form)."""

    name = "swish"

    def forward_into(self, z, out):
        np.divide(z, self._one_plus_exp_minus(z), out=out)

    def backward_into(self, z, y, dy, out):
        """``dy * (s + y (1 - s))`` with ``s = sigmoid(z)``."""
        s = self._one_plus_exp_minus(z)
        np.reciprocal(s, out=s)
        np.multiply(y, s, out=out)
        np.subtract(y, out, out=out)
        out += s
        out *= dy

    @staticmethod
    def _one_plus_exp_minus(z: np.ndarray) -> np.ndarray:
        """``1 + exp(-z)``, a new array; infinite where ``exp`` overflows."""
        with np.errstate(over="ignore"):
            value = np.exp(np.negative(z))
        value += 1
        return value

    def to_onnx(self, builder, input_name, hint):
        return builder.node("Mul", [input_name, builder.node("Sigmoid", [input_name], f"{hint}_sigmoid")], hint)


class Selu(ActivationFunction):
    """``scale * x`` above 0, ``scale * alpha * (exp(x) - 1)`` below, with Keras' constants (the fixed point
    of self-normalising networks, Klambauer et al. 2017)."""

    name = "selu"
    output_suffices = True
    alpha = 1.67326324235437728481
    scale = 1.05070098735548049342

    def forward(self, z):
        return self.scale * np.where(z > 0, z, self.alpha * np.expm1(np.minimum(z, 0)))

    def backward(self, z, y, dy):
        return dy * np.where(y > 0, self.scale, y + self.scale * self.alpha)

    def to_onnx(self, builder, input_name, hint):
        return builder.node("Selu", [input_name], hint, alpha=self.alpha, gamma=self.scale)


class Softplus(ActivationFunction):
    """``log(1 + exp(x))``, computed as ``logaddexp(0, x)`` so that no exp overflows; its gradient
    ``sigmoid(x)`` is ``1 - exp(-y)``."""

    name = "softplus"
    output_suffices = True

    def forward(self, z):
        return np.logaddexp(np.zeros((), z.dtype), z)

    def backward(self, z, y, dy):
        return -dy * np.expm1(-y)

    def to_onnx(self, builder, input_name, hint):
        return builder.node("Softplus", [input_name], hint)


class Softsign(ActivationFunction):
    """``x / (1 + |x|)``; its gradient ``1 / (1 + |x|)^2`` is ``(1 - |y|)^2``."""

    name = "softsign"
    output_suffices = True

    def forward(self, z):
        return z / (1 + np.abs(z))

    def backward(self, z, y, dy):
        return dy * np.square(1 - np.abs(y))

    def to_onnx(self, builder, input_name, hint):
        return builder.node("Softsign", [input_name], hint)


class HardSigmoid(ActivationFunction):
    """Keras 3's ``relu6(x + 3) / 6``: 0 up to -3, 1 from 3, ``x / 6 + 0.5`` between (slope 1/6 exactly
    where the output is strictly between 0 and 1)."""

    name = "hard_sigmoid"
    output_suffices = True

    def forward(self, z):
        return np.clip(z / 6 + 0.5, 0, 1)

    def backward(self, z, y, dy):
        return dy * ((y > 0) & (y < 1)) / 6

    def to_onnx(self, builder, input_name, hint):
        return builder.node("HardSigmoid", [input_name], hint, alpha=1 / 6, beta=0.5)


class Mish(ActivationFunction):
    """``x * tanh(softplus(x))`` (Misra 2019); its gradient needs the input."""

    name = "mish"

    def forward(self, z):
        return z * np.tanh(Softplus().forward(z))

    def backward(self, z, y, dy):
        t = np.tanh(Softplus().forward(z))
        return dy * (t + z * (1 - t * t) * _sigmoid(z))

    def to_onnx(self, builder, input_name, hint):
        softplus = builder.node("Softplus", [input_name], f"{hint}_softplus")
        return builder.node("Mul", [input_name, builder.node("Tanh", [softplus], f"{hint}_tanh")], hint)


def create(name: str) -> ActivationFunction:
    """The activation called ``name`` in a spec; a SpecError listing the valid names otherwise."""
    if name not in ACTIVATIONS:
        raise SpecError(f"unknown activation {name!r}; use one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()
