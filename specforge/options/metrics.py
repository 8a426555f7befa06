"""Metrics: accumulators over the batches of an epoch, named as Keras reports them.

Each metric counts integers (correct predictions, true positives, ...) over the
batches given to ``update`` since the last ``reset``, so an epoch's result does not
depend on how it was split into batches.  ``update`` takes the network's
probabilities, shape ``(N, units)``, and the integer class labels, shape ``(N,)``;
one output unit means a sigmoid over two classes (probability of class 1).

Regression metrics (``takes_targets``) take the predictions and the targets, both
``(N, outputs)`` in the target's own units, and sum float64 totals (absolute and squared
errors, the targets and their squares) over the epoch, so their results are the exact
values over all its examples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from specforge.base.defaults import with_defaults
from specforge.base.errors import SpecError
from specforge.base.registry import Kind, Registry, named_kind_schema

#: Every metric a spec may name, by name: each ``Metric`` subclass with a ``kind``, as it is defined.
METRICS: Registry[type[Metric]] = Registry("metric", lambda cls: cls.kind)


@dataclass(kw_only=True, eq=False, repr=False)
class Metric(Kind, registry=METRICS, key="kind"):
    """An accumulator: ``reset()``, ``update(probabilities, labels)`` per batch, ``result()``.

    A kind is a keyword-only dataclass whose fields are its options (every one given: ``create`` takes them
    from the resolved spec) besides ``name``, the name it reports under; it is registered by being defined
    with a ``kind``."""

    kind: ClassVar[str]
    #: The metric's options in the spec besides ``name``: property -> JSON Schema, with defaults.
    options: ClassVar[dict[str, dict]] = {}
    #: Valid ``compile.metrics`` items naming this metric, for the documentation and the generic tests.
    examples: ClassVar[list[str | dict]] = []
    #: True for regression metrics: ``update(predictions, targets)`` in the target's units.
    takes_targets: ClassVar[bool] = False

    name: str

    def __post_init__(self) -> None:
        self.reset()

    def __repr__(self) -> str:
        return f"<metric {self.name}: {self.result():.4f}>"

    @classmethod
    def check(cls, num_classes: int, **options: Any) -> tuple[str, str] | None:
        """``(option, message)`` when the options do not suit ``num_classes`` output units, else None."""
        return None

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, probabilities: np.ndarray, labels: np.ndarray) -> None:
        raise NotImplementedError

    def result(self) -> float:
        raise NotImplementedError


class _Fraction(Metric):
    """A count of hits over a count of examples."""

    def reset(self) -> None:
        self.hits = 0
        self.total = 0

    def result(self) -> float:
        return self.hits / self.total if self.total else 0.0


class Accuracy(_Fraction):
    """Most probable class == label; for one sigmoid unit, probability > 0.5 == (label == 1)."""

    kind = "accuracy"
    examples = ["accuracy"]

    def update(self, probabilities, labels):
        if probabilities.shape[-1] == 1:
            predicted = probabilities[:, 0] > 0.5
            self.hits += int(np.count_nonzero(predicted == (labels == 1)))
        else:
            self.hits += int(np.count_nonzero(probabilities.argmax(axis=-1) == labels))
        self.total += len(labels)


@dataclass(kw_only=True, eq=False, repr=False)
class TopKAccuracy(_Fraction):
    """The label is among the k most probable classes (ties with the k-th count as inside, as in_top_k)."""

    kind = "top_k_accuracy"
    options = {
        "k": {
            "type": "integer",
            "minimum": 1,
            "default": 5,
            "description": "A prediction is correct when the true class is among the k most probable.",
        },
    }
    examples = [{"name": "top_k_accuracy", "k": 3}]

    k: int

    @classmethod
    def check(cls, num_classes: int, **options: Any) -> tuple[str, str] | None:
        k = options["k"]
        if num_classes < 2:
            return "name", "top_k_accuracy needs one output unit per class; received a single unit"
        if k >= num_classes:
            return "k", (f"k={k} with {num_classes} classes counts every prediction as correct; use k < {num_classes}")
        return None

    def update(self, probabilities, labels):
        label_probability = probabilities[np.arange(len(labels)), labels]
        above = np.count_nonzero(probabilities > label_probability[:, None], axis=-1)
        self.hits += int(np.count_nonzero(above < self.k))
        self.total += len(labels)


@dataclass(kw_only=True, eq=False, repr=False)
class _Thresholded(Metric):
    """Keras' Precision and Recall: each output unit is a yes/no prediction, probability > thresholds,
    compared with the one-hot label; ``class_id`` restricts the counts to one unit."""

    options = {
        "thresholds": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.5,
            "description": "An output unit whose probability is above this value is a positive prediction.",
        },
        "class_id": {
            "type": ["integer", "null"],
            "minimum": 0,
            "default": None,
            "description": "Count only this class's output unit. null: every unit (micro-average over all classes).",
        },
    }

    thresholds: float
    class_id: int | None

    @classmethod
    def check(cls, num_classes: int, **options: Any) -> tuple[str, str] | None:
        class_id = options["class_id"]
        if class_id is not None and class_id >= num_classes:
            return "class_id", (
                f"class_id={class_id} with {num_classes} output unit(s); use a unit index in 0..{num_classes - 1}"
            )
        return None

    def reset(self) -> None:
        self.true_positives = 0
        self.predicted_positives = 0
        self.actual_positives = 0

    def update(self, probabilities, labels):
        units = probabilities.shape[-1]
        if units == 1:
            predicted = probabilities > self.thresholds
            actual = (labels == 1)[:, None]
        elif self.class_id is not None:
            predicted = probabilities[:, self.class_id] > self.thresholds
            actual = labels == self.class_id
        else:
            predicted = probabilities > self.thresholds
            actual = labels[:, None] == np.arange(units)
        self.true_positives += int(np.count_nonzero(predicted & actual))
        self.predicted_positives += int(np.count_nonzero(predicted))
        self.actual_positives += int(np.count_nonzero(actual))


class Precision(_Thresholded):
    """TP / (TP + FP); 0 when nothing was predicted positive."""

    kind = "precision"
    examples = ["precision", {"name": "precision", "thresholds": 0.3, "class_id": 1}]

    def result(self) -> float:
        return self.true_positives / self.predicted_positives if self.predicted_positives else 0.0


class Recall(_Thresholded):
    """TP / (TP + FN); 0 when there were no positives."""

    kind = "recall"
    examples = [{"name": "recall", "class_id": 0}]

    def result(self) -> float:
        return self.true_positives / self.actual_positives if self.actual_positives else 0.0


class _Regression(Metric):
    """Float64 totals per output over the epoch: count, absolute and squared errors, targets and their squares."""

    takes_targets = True

    def reset(self) -> None:
        self.count = 0
        self.absolute = self.squared = self.sum = self.sum_of_squares = np.zeros(0)

    def update(self, predictions, targets):
        predictions = np.asarray(predictions, dtype=np.float64).reshape(len(predictions), -1)
        targets = np.asarray(targets, dtype=np.float64).reshape(predictions.shape)
        errors = predictions - targets
        totals = (
            np.abs(errors).sum(axis=0),
            np.square(errors).sum(axis=0),
            targets.sum(axis=0),
            np.square(targets).sum(axis=0),
        )
        if not self.count:
            self.absolute, self.squared, self.sum, self.sum_of_squares = (np.zeros_like(t) for t in totals)
        self.absolute = self.absolute + totals[0]
        self.squared = self.squared + totals[1]
        self.sum = self.sum + totals[2]
        self.sum_of_squares = self.sum_of_squares + totals[3]
        self.count += len(targets)


class MeanAbsoluteErrorMetric(_Regression):
    """The mean absolute error over every example and output."""

    kind = "mae"
    examples = ["mae"]

    def result(self) -> float:
        return float(self.absolute.sum() / (self.count * self.absolute.size)) if self.count else 0.0


class RootMeanSquaredError(_Regression):
    """The square root of the mean squared error over every example and output."""

    kind = "rmse"
    examples = ["rmse"]

    def result(self) -> float:
        return float(np.sqrt(self.squared.sum() / (self.count * self.squared.size))) if self.count else 0.0


class R2(_Regression):
    """1 - SS_res / SS_tot per output, averaged over the outputs (scikit-learn's r2_score); SS_tot from the
    totals of the targets and their squares. 0 for an output whose targets are all equal."""

    kind = "r2"
    examples = ["r2"]

    def result(self) -> float:
        if not self.count:
            return 0.0
        total = self.sum_of_squares - np.square(self.sum) / self.count
        scores = np.where(total > 0, 1.0 - self.squared / np.where(total > 0, total, 1.0), 0.0)
        return float(scores.mean())


#: Options of each metric besides its name.
OPTIONS: dict[str, dict[str, dict]] = {name: cls.options for name, cls in METRICS.items()}

METRIC_ITEM_SCHEMA = {
    "description": "A metric: its name for the defaults, or a mapping with the name and its options. "
    "accuracy: fraction of examples whose most probable class is the label (one sigmoid unit: "
    "probability > 0.5 compared with the 0/1 label). top_k_accuracy: the label is among the k "
    "most probable classes. precision and recall, as Keras' Precision and Recall: every output "
    "unit is a yes/no prediction (probability > thresholds) compared with the one-hot label, "
    "counted over all units unless class_id picks one; precision = TP / (TP + FP), "
    "recall = TP / (TP + FN), 0 when the denominator is 0. Regression, in the target's units: mae, the "
    "mean absolute error; rmse, the root of the mean squared error; r2, the coefficient of "
    "determination 1 - SS_res / SS_tot (averaged over the outputs of a multi-output model).",
    "type": ["string", "object"],
    "allOf": named_kind_schema("metric", OPTIONS),
}

METRICS_SCHEMA = {
    "description": "Metrics reported after each epoch besides the loss (Keras' compile metrics); "
    "validation values get the prefix val_.",
    "type": "array",
    "items": METRIC_ITEM_SCHEMA,
    "default": ["accuracy"],
    "examples": [["accuracy", {"name": "top_k_accuracy", "k": 3}]],
}


def resolve(spec_list: list[str | dict]) -> list[dict[str, Any]]:
    """The spec's ``compile.metrics`` (valid against ``METRICS_SCHEMA``) as mappings with every option,
    defaults filled in: done once, when the spec is resolved."""
    return with_defaults(
        [{"name": item} if isinstance(item, str) else dict(item) for item in spec_list], METRICS_SCHEMA
    )


def create(resolved: Sequence[Mapping[str, Any]], num_classes: int, where: str = "compile.metrics") -> list[Metric]:
    """The metrics of a resolved ``compile.metrics`` (every option given, see ``resolve``; written at ``where``)
    for a last layer of ``num_classes`` output units.

    Names are Keras': the metric's name, with ``_1``, ``_2``, ... for repeats.
    """
    metrics: list[Metric] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(resolved):
        options = dict(item)
        name = options.pop("name")
        problem = METRICS[name].check(num_classes, **options)
        if problem:
            key, message = problem
            raise SpecError(message, path=f"{where}[{index}].{key}")
        repeat = seen.get(name, 0)
        seen[name] = repeat + 1
        metrics.append(METRICS[name](name=f"{name}_{repeat}" if repeat else name, **options))
    return metrics
