"""Losses: the value and its gradient with respect to the network's outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from specforge.base.defaults import with_defaults
from specforge.base.errors import DataError, SpecError
from specforge.base.registry import Kind, Registry, named_kind_schema

#: Keras' clipping of probabilities before a logarithm (``backend.epsilon()``).
EPSILON = 1e-7


#: Every loss a spec may name, by name: each ``Loss`` subclass with a ``name``, as it is defined.
LOSSES: Registry[type[Loss]] = Registry("loss", lambda loss: loss.name)


_LABEL_SMOOTHING = {
    "type": "number",
    "minimum": 0,
    "maximum": 1,
    "default": 0.0,
    "description": "Keras' label smoothing, in [0, 1]: the targets move towards the uniform "
    "distribution, y * (1 - s) + s / classes (s / 2 for binary_crossentropy).",
}


@dataclass(kw_only=True, eq=False, repr=False)
class Loss(Kind, registry=LOSSES, key="name"):
    """A loss over a batch: the mean of a per-example loss, and its gradient with respect to the outputs.

    What a loss expects of the network, for validation and for the training loop:

    - ``fused_activation``: the last layer's activation the loss can take the logits of (``softmax`` or
      ``sigmoid``), or None. When the last activation is this one, the training loop skips it in the
      forward pass and calls the loss with ``from_logits=True``: the stable fused formula.
    - ``label_encoding``: what ``y_true`` holds. ``"one_hot"``: rows with the outputs' shape;
      ``"sparse"``: integer class indices, the outputs' shape without the last axis; ``"any"``: targets
      with the outputs' shape. ``encode_labels`` turns integer class labels into that form.
    - ``fits(activation, units)``: None when the last layer suits the loss, else the message saying
      what to change.
    """

    name: ClassVar[str]
    #: The loss's options in the spec besides ``name``: property -> JSON Schema, with defaults; each is a
    #: field of the kind's dataclass.
    options: ClassVar[dict[str, dict]] = {}
    #: Valid ``compile.loss`` values naming this loss, for the documentation and the generic tests.
    examples: ClassVar[list[str | dict]] = []
    fused_activation: ClassVar[str | None] = None
    label_encoding: ClassVar[str] = "any"
    #: last-layer activations whose outputs the loss accepts; None: any.
    output_activations: ClassVar[tuple[str, ...] | None] = None
    #: what ``output_activations`` produce, for the message of ``fits``.
    expects: ClassVar[str] = ""
    #: each example's weight in the training value and gradient (Keras' sample and class weights: the batch's
    #: loss is ``sum(w_i * loss_i) / N``), set per batch by the training loop; None: every example weighs 1
    weights: np.ndarray | None = field(default=None, init=False, repr=False)

    def __repr__(self) -> str:
        return f"<loss {self.name}>"

    def fits(self, activation: str, units: int | None = None) -> str | None:
        """None when outputs of ``units`` units with ``activation`` suit this loss, else what to change."""
        if self.output_activations is not None and activation not in self.output_activations:
            return (
                f"{self.name} expects {self.expects}: use activation: {self.output_activations[0]} on the "
                f"last layer (received: {activation})"
            )
        if activation == "softmax" and units == 1:
            return (
                "softmax over 1 unit always outputs 1: use one unit per class, or activation: sigmoid with "
                "binary_crossentropy for two classes"
            )
        return None

    def encode_labels(self, labels: np.ndarray, units: int, dtype: np.dtype | type = np.float32) -> np.ndarray:
        """``y_true`` for integer class ``labels`` (shape ``(N,)``) and a last layer of ``units`` units."""
        if units == 1:
            labels = _check_labels(labels, 2, "a single output unit")
            return labels.astype(dtype).reshape(-1, 1)
        return one_hot(labels, units, dtype)

    def value(self, outputs: np.ndarray, y_true: np.ndarray, from_logits: bool = False) -> float:
        """The mean loss over the batch (unweighted)."""
        return self._compute(outputs, self.smooth(self._targets(outputs, y_true)), self._logits(from_logits), False)[0]

    def value_and_grad(
        self, outputs: np.ndarray, y_true: np.ndarray, from_logits: bool = False
    ) -> tuple[float, np.ndarray]:
        """The mean loss over the batch and its gradient with respect to ``outputs`` (same shape and dtype),
        each example weighted by ``weights`` when they are set."""
        y, logits = self.smooth(self._targets(outputs, y_true)), self._logits(from_logits)
        value, grad = self._compute(outputs, y, logits, True)
        assert grad is not None, "_compute returns the gradient when asked for it"
        if self.weights is None:
            return value, grad
        # every loss here is a mean over examples of a loss of each example's own outputs, so weighting an
        # example scales its rows of the gradient; the value needs each example's loss
        grad *= self.weights.astype(grad.dtype).reshape(-1, *([1] * (grad.ndim - 1)))
        each = [self._compute(outputs[i : i + 1], y[i : i + 1], logits, False)[0] for i in range(len(outputs))]
        return float(np.dot(self.weights, each)) / len(outputs), grad

    def smooth(self, y: np.ndarray) -> np.ndarray:
        """The targets the loss compares with: ``y`` itself unless the loss smooths its labels."""
        return y

    def to_probabilities(self, outputs: np.ndarray, from_logits: bool) -> np.ndarray:
        """What the metrics take: ``outputs`` with the fused activation applied when they are logits."""
        if not self._logits(from_logits):
            return outputs
        return softmax(outputs) if self.fused_activation == "softmax" else sigmoid(outputs)

    def _logits(self, from_logits: bool) -> bool:
        if from_logits and self.fused_activation is None:
            raise ValueError(f"{self.name} has no fused activation: call it with from_logits=False")
        return from_logits

    def _targets(self, outputs: np.ndarray, y_true: np.ndarray) -> np.ndarray:
        if y_true.shape != outputs.shape:
            raise DataError(
                f"{self.name}: labels of shape {y_true.shape} do not match outputs of shape "
                f"{outputs.shape}; labels need the outputs' shape ({self.label_encoding} encoding)"
            )
        return np.asarray(y_true, dtype=outputs.dtype)

    def _compute(
        self, outputs: np.ndarray, y: np.ndarray, from_logits: bool, need_grad: bool
    ) -> tuple[float, np.ndarray | None]:
        raise NotImplementedError


@dataclass(kw_only=True, eq=False, repr=False)
class CategoricalCrossentropy(Loss):
    """``-sum(y * log(p))`` per example, ``p`` the softmax of the logits (or the given probabilities)."""

    name = "categorical_crossentropy"
    options = {"label_smoothing": _LABEL_SMOOTHING}
    examples = ["categorical_crossentropy", {"name": "categorical_crossentropy", "label_smoothing": 0.1}]
    fused_activation = "softmax"
    label_encoding = "one_hot"
    output_activations = ("softmax",)
    expects = "probabilities over the classes"

    label_smoothing: float = 0.0

    def smooth(self, y):
        """Keras' label smoothing: ``y * (1 - s) + s / classes``."""
        if not self.label_smoothing:
            return y
        return y * (1 - self.label_smoothing) + self.label_smoothing / y.shape[-1]

    def encode_labels(self, labels: np.ndarray, units: int, dtype: np.dtype | type = np.float32) -> np.ndarray:
        return one_hot(labels, units, dtype)

    def _compute(self, outputs, y, from_logits, need_grad):
        rows = outputs.size // outputs.shape[-1]
        if from_logits:
            return _crossentropy_of_logits(outputs, y, rows, need_grad)
        return _crossentropy_of_probabilities(outputs, y, rows, need_grad)


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy with integer class labels."""

    name = "sparse_categorical_crossentropy"
    examples = ["sparse_categorical_crossentropy", {"name": "sparse_categorical_crossentropy", "label_smoothing": 0.1}]
    label_encoding = "sparse"

    def encode_labels(self, labels: np.ndarray, units: int, dtype: np.dtype | type = np.float32) -> np.ndarray:
        return _check_labels(labels, units, f"{units} output units").astype(np.intp)

    def _compute(self, outputs, y, from_logits, need_grad):
        rows = outputs.size // outputs.shape[-1]
        if from_logits:
            return _crossentropy_of_logits(outputs, y, rows, need_grad)
        return _crossentropy_of_clipped_probabilities(outputs, y, rows, need_grad)

    def _targets(self, outputs, y_true):
        if y_true.shape != outputs.shape[:-1]:
            raise DataError(
                f"{self.name}: labels of shape {y_true.shape} do not match outputs of shape "
                f"{outputs.shape}; it takes one integer class per example, shape {outputs.shape[:-1]}"
            )
        return one_hot(y_true, outputs.shape[-1], outputs.dtype)


@dataclass(kw_only=True, eq=False, repr=False)
class BinaryCrossentropy(Loss):
    """``-(y log p + (1 - y) log(1 - p))`` per output unit, averaged; ``p`` the sigmoid of the logits."""

    name = "binary_crossentropy"
    options = {"label_smoothing": _LABEL_SMOOTHING}
    examples = ["binary_crossentropy", {"name": "binary_crossentropy", "label_smoothing": 0.2}]
    fused_activation = "sigmoid"
    output_activations = ("sigmoid", "softmax")
    expects = "probabilities between 0 and 1"

    label_smoothing: float = 0.0

    def smooth(self, y):
        """Keras' label smoothing: ``y * (1 - s) + s / 2``."""
        if not self.label_smoothing:
            return y
        return y * (1 - self.label_smoothing) + 0.5 * self.label_smoothing

    def _compute(self, outputs, y, from_logits, need_grad):
        if from_logits:
            # max(z, 0) - z y + log(1 + exp(-|z|)): no overflow for any z.
            exp_neg_abs = np.exp(-np.abs(outputs))
            losses = np.maximum(outputs, 0) - outputs * y + np.log1p(exp_neg_abs)
            grad = None
            if need_grad:
                grad = _sigmoid_from(outputs, exp_neg_abs)
                grad -= y
                grad /= outputs.size
            return float(losses.mean()), grad
        clipped = np.clip(outputs, EPSILON, 1 - EPSILON)
        losses = -(y * np.log(clipped) + (1 - y) * np.log1p(-clipped))
        grad = None
        if need_grad:
            grad = ((1 - y) / (1 - clipped) - y / clipped) / outputs.size
            grad *= _inside_clip(outputs)
        return float(losses.mean()), grad


class MeanSquaredError(Loss):
    name = "mean_squared_error"
    examples = ["mean_squared_error"]

    def _compute(self, outputs, y, from_logits, need_grad):
        diff = outputs - y
        value = float(np.vdot(diff, diff)) / diff.size
        if need_grad:
            diff *= 2 / diff.size
            return value, diff
        return value, None


class MeanAbsoluteError(Loss):
    name = "mean_absolute_error"
    examples = ["mean_absolute_error"]

    def _compute(self, outputs, y, from_logits, need_grad):
        diff = outputs - y
        value = float(np.abs(diff).mean())
        if need_grad:
            grad = np.sign(diff, out=diff)
            grad /= diff.size
            return value, grad
        return value, None


@dataclass(kw_only=True, eq=False, repr=False)
class Huber(Loss):
    """Per output unit, with ``e = outputs - y``: ``e^2 / 2`` where ``|e| <= delta``, ``delta * (|e| - delta / 2)``
    beyond (Keras' Huber, delta 1 by default); averaged."""

    name = "huber"
    options = {
        "delta": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 1.0,
            "description": "Where the loss turns from squared to absolute error.",
        },
    }
    examples = ["huber", {"name": "huber", "delta": 2.5}]

    delta: float

    def _compute(self, outputs, y, from_logits, need_grad):
        diff = outputs - y
        small = np.abs(diff) <= self.delta
        losses = np.where(small, 0.5 * diff * diff, self.delta * np.abs(diff) - 0.5 * self.delta**2)
        value = float(losses.mean())
        if need_grad:
            grad = np.where(small, diff, self.delta * np.sign(diff))
            grad /= diff.size
            return value, grad
        return value, None


class KLDivergence(CategoricalCrossentropy):
    """``sum(y * log(y / p))`` per example with ``y`` clipped to [EPSILON, 1] (Keras' kl_divergence); ``p`` the
    softmax of the logits, or the given probabilities clipped to [EPSILON, 1] (not renormalised)."""

    name = "kl_divergence"
    options: ClassVar[dict[str, dict]] = {}
    examples = ["kl_divergence"]
    expects = "probability distributions over the classes"

    def _compute(self, outputs, y, from_logits, need_grad):
        y = np.clip(y, EPSILON, 1)
        rows = outputs.size // outputs.shape[-1]
        negative_entropy = float(np.vdot(y, np.log(y))) / rows
        if from_logits:
            value, grad = _crossentropy_of_logits(outputs, y, rows, need_grad)
            return negative_entropy + value, grad
        clipped = np.clip(outputs, EPSILON, 1)
        value = negative_entropy - float(np.vdot(y, np.log(clipped))) / rows
        if not need_grad:
            return value, None
        grad = -y / clipped
        grad *= (outputs >= EPSILON) & (outputs <= 1)
        grad /= rows
        return value, grad


LOSS_NAMES = LOSSES.names()


LOSS_SCHEMA = {
    "description": "Loss minimised during training (Keras names): its name, or a mapping with the name and its "
    "options, e.g. {name: huber, delta: 2}. categorical_crossentropy: one-hot labels, "
    "softmax output; sparse_categorical_crossentropy: integer labels, softmax output; "
    "binary_crossentropy: 0/1 labels per output unit, sigmoid output; mean_squared_error and "
    "mean_absolute_error: targets with the output's shape (integer labels are one-hot encoded); "
    "huber: squared error up to delta (1 by default), absolute error beyond; kl_divergence: "
    "one-hot or soft labels, softmax output. "
    "Cross-entropy is computed on the logits of the last layer's softmax or sigmoid, so it "
    "stays finite for any input scale.",
    "type": ["string", "object"],
    "allOf": named_kind_schema("loss", {name: loss.options for name, loss in LOSSES.items()}),
    "examples": ["categorical_crossentropy", {"name": "huber", "delta": 2.5}],
}


CLASS_WEIGHT_SCHEMA = {
    "description": "Keras' class_weight: each training example's loss weighted by its class's weight. A mapping "
    "from class (its index, or its name in data.class_names) to weight (classes left out weigh 1), "
    "or `balanced`: examples / (classes * examples of the class) over the training split "
    "(scikit-learn's). null: every example weighs 1.",
    "oneOf": [
        {"type": "null"},
        {"const": "balanced"},
        {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}, "minProperties": 1},
    ],
    "default": None,
    "examples": ["balanced", {"0": 1.0, "1": 5.0}],
}


def create(spec_value: str | dict, where: str = "compile.loss") -> Loss:
    """The loss a spec's ``compile.loss`` (or an output's, written at ``where``) describes (a name, or a mapping
    with the name and its options), its options' defaults filled in here: the spec keeps the loss as the user
    wrote it."""
    name = spec_value if isinstance(spec_value, str) else spec_value.get("name")
    if not isinstance(name, str) or name not in LOSSES:
        raise SpecError(f"unknown loss {name!r}; expected one of: {', '.join(LOSS_NAMES)}", path=where)
    options = with_defaults({"name": name} if isinstance(spec_value, str) else dict(spec_value), LOSS_SCHEMA)
    del options["name"]
    return LOSSES[name](**options)


# -- stable building blocks ---------------------------------------------------------------------


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, stable for logits of any size."""
    return _log_softmax_and_softmax(logits)[1]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """The logistic function without overflow for logits of any size."""
    return _sigmoid_from(logits, np.exp(-np.abs(logits)))


def one_hot(labels: np.ndarray, depth: int, dtype: np.dtype | type = np.float32) -> np.ndarray:
    """Integer ``labels`` of any shape -> one-hot rows, shape ``labels.shape + (depth,)``."""
    labels = _check_labels(labels, depth, f"{depth} output units")
    encoded = np.zeros((labels.size, depth), dtype=dtype)
    encoded[np.arange(labels.size), labels.ravel()] = 1
    return encoded.reshape(*labels.shape, depth)


def _check_labels(labels: np.ndarray, classes: int, what: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.array_equal(labels, np.round(labels)):
            raise DataError(f"labels must be integer classes, got values like {labels.ravel()[0]!r}")
        labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        bad = labels.max() if labels.max() >= classes else labels.min()
        raise DataError(f"label {int(bad)} is out of range for {what}: labels must be in 0..{classes - 1}")
    return labels


def _log_softmax_and_softmax(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log_softmax, softmax)`` over the last axis with the log-sum-exp shift."""
    log_p = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(log_p)
    total = p.sum(axis=-1, keepdims=True)
    log_p -= np.log(total)
    p /= total
    return log_p, p


def _sigmoid_from(logits: np.ndarray, exp_neg_abs: np.ndarray) -> np.ndarray:
    """sigmoid(z) from exp(-|z|): 1 / (1 + e) for z >= 0, e / (1 + e) below."""
    numerator = np.where(logits >= 0, np.ones_like(exp_neg_abs), exp_neg_abs)
    numerator /= 1 + exp_neg_abs
    return numerator


def _crossentropy_of_logits(logits, y, rows, need_grad):
    log_p, p = _log_softmax_and_softmax(logits)
    value = -float(np.vdot(y, log_p)) / rows
    if not need_grad:
        return value, None
    # d/dz of -sum(y log softmax(z)) is softmax(z) * sum(y) - y; sum(y) is 1 for one-hot rows.
    p *= y.sum(axis=-1, keepdims=True)
    p -= y
    p /= rows
    return value, p


def _crossentropy_of_probabilities(outputs, y, rows, need_grad):
    # As Keras: renormalise the rows to sum to 1, then clip away from 0 and 1 before the logarithm.
    total = outputs.sum(axis=-1, keepdims=True)
    q = outputs / total
    clipped = np.clip(q, EPSILON, 1 - EPSILON)
    value = -float(np.vdot(y, np.log(clipped))) / rows
    if not need_grad:
        return value, None
    grad_q = -y / clipped
    grad_q *= _inside_clip(q)
    grad_q /= rows
    # Through the renormalisation q = o / sum(o): dL/do = (dL/dq - sum(dL/dq * q)) / sum(o).
    grad_q -= (grad_q * q).sum(axis=-1, keepdims=True)
    grad_q /= total
    return value, grad_q


def _crossentropy_of_clipped_probabilities(outputs, y, rows, need_grad):
    # As Keras' sparse version: clip away from 0 and 1 first, then renormalise (its log-softmax of the log).
    clipped = np.clip(outputs, EPSILON, 1 - EPSILON)
    total = clipped.sum(axis=-1, keepdims=True)
    value = -float(np.vdot(y, np.log(clipped / total))) / rows
    if not need_grad:
        return value, None
    # d/dc of -sum(y log(c / sum(c))) is sum(y) / sum(c) - y / c; nothing flows through a clipped value.
    grad = y.sum(axis=-1, keepdims=True) / total - y / clipped
    grad *= _inside_clip(outputs)
    grad /= rows
    return value, grad


def _inside_clip(values: np.ndarray) -> np.ndarray:
    """1 where clipping to [EPSILON, 1 - EPSILON] left the value alone (the gradient flows), else 0."""
    return ((values >= EPSILON) & (values <= 1 - EPSILON)).astype(values.dtype)
