"""The model's outputs as training and evaluation see them: each output's loss, metrics, weight in the total
loss and target, and the values a batch adds to the logs, named as Keras names them.

A model of one output logs ``loss`` and its metrics by their names (``accuracy``); a model of several logs
the total ``loss`` (the weighted sum), then each output's loss and metrics with the output's name
(``digit_loss``, ``parity_accuracy``).  Validation adds ``val_`` in front of every name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from specforge.data.preprocessing import Preprocessing
from specforge.graph.dag import Graph
from specforge.options import losses, metrics
from specforge.options.losses import Loss
from specforge.options.metrics import Metric
from specforge.spec.model_io import OutputSpec, model_outputs
from specforge.spec.reader import format_path


def labels_and_targets(loss: Loss, y: np.ndarray | None, units: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer class labels (for metrics) and the loss's targets from a batch's preprocessed labels (a batch of
    the labelled splits that training and evaluation read: ``iterate_batches`` gives None only for others)."""
    assert y is not None, "training and evaluation read labelled splits"
    labels = y if y.ndim == 1 else y.argmax(axis=-1)
    expected = y.shape[:1] if loss.label_encoding == "sparse" else (len(y), units)
    return labels, (y if y.shape == expected else loss.encode_labels(labels, units))


def update_metrics(
    metrics: Sequence[Metric],
    outputs: np.ndarray,
    labels: np.ndarray,
    targets: np.ndarray,
    preprocessing: Preprocessing | None,
) -> None:
    """Classification metrics get the probabilities and class labels; regression metrics the outputs and the
    targets, both in the target's own units."""
    units = preprocessing.target_units if preprocessing is not None else (lambda values: values)
    for metric in metrics:
        if metric.takes_targets:
            metric.update(units(outputs), units(targets))
        else:
            metric.update(outputs, labels)


@dataclass
class Head:
    """One model output: what the spec says of it, its node in the graph, its loss and metrics and its width."""

    spec: OutputSpec
    node: int
    loss: Loss
    metrics: list[Metric]
    units: int

    @property
    def weight(self) -> float:
        return self.spec.loss_weight

    def labels_and_targets(self, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """This output's class labels and loss targets from a batch's preprocessed labels: the data's own, or
        each label mapped to this output's class (``data.targets``' map)."""
        if self.spec.target_map is not None:
            assert y is not None, "training and evaluation read labelled splits"
            y = np.asarray(self.spec.target_map, dtype=np.int64)[y if y.ndim == 1 else y.argmax(axis=-1)]
        return labels_and_targets(self.loss, y, self.units)


def create_heads(config: dict, graph: Graph) -> list[Head]:
    """One head per model output, in order (the spec is checked: every output has a loss)."""
    heads = []
    for output, node in zip(model_outputs(config), graph.output_nodes, strict=True):
        units = graph.nodes[node].output_shape[-1]
        own = config["model"]["outputs"][output.name] if output.path else {}
        where = format_path(output.path)
        assert output.loss is not None, "graph.checks refuses an output without a loss"
        loss = losses.create(output.loss, f"{where}.loss" if "loss" in own else "compile.loss")
        made = metrics.create(output.metrics, units, f"{where}.metrics" if "metrics" in own else "compile.metrics")
        heads.append(Head(output, node, loss, made, units))
    return heads


def log_names(heads: Sequence[Head]) -> list[str]:
    """The names of an epoch's training values, in order (see the module's docstring)."""
    if len(heads) == 1:
        return ["loss", *(metric.name for metric in heads[0].metrics)]
    return [
        "loss",
        *(f"{head.spec.prefix}loss" for head in heads),
        *(f"{head.spec.prefix}{metric.name}" for head in heads for metric in head.metrics),
    ]


def reported_names(config: dict, graph: Graph) -> list[str]:
    """The values training reports each epoch, known from the spec alone: ``log_names``, then ``val_`` of each
    unless ``fit.validation`` is none."""
    names = log_names(create_heads(config, graph))
    return names if config["fit"]["validation"] == "none" else names + [f"val_{name}" for name in names]


class Tally:
    """The running mean of each output's loss, their weighted total and the metrics over the batches of an
    epoch or a split."""

    def __init__(self, heads: Sequence[Head]):
        self.heads = heads
        for head in heads:
            for metric in head.metrics:
                metric.reset()
        self.total, self.each, self.count = 0.0, [0.0] * len(heads), 0

    def add(
        self,
        values: Sequence[float],
        outputs: Sequence[np.ndarray],
        pairs: Sequence[tuple[np.ndarray, np.ndarray]],
        preprocessing: Preprocessing | None,
    ) -> None:
        """One batch: each output's mean loss, outputs (probabilities) and ``(labels, targets)``."""
        size = len(pairs[0][0])
        self.total += weighted_total(self.heads, values) * size
        self.count += size
        for index, (head, value, output, (labels, targets)) in enumerate(zip(self.heads, values, outputs, pairs)):
            self.each[index] += value * size
            update_metrics(head.metrics, output, labels, targets, preprocessing)

    def logs(self) -> dict[str, float]:
        """The values so far, by their names in logs (``log_names``)."""
        count = self.count
        total = self.total / count if count else float("nan")
        if len(self.heads) == 1:
            return {"loss": total, **{metric.name: metric.result() for metric in self.heads[0].metrics}}
        prefixes = [head.spec.prefix for head in self.heads]
        return {
            "loss": total,
            **{f"{prefix}loss": each / count if count else float("nan") for prefix, each in zip(prefixes, self.each)},
            **{
                f"{prefix}{metric.name}": metric.result()
                for prefix, head in zip(prefixes, self.heads)
                for metric in head.metrics
            },
        }


def weighted_total(heads: Sequence[Head], values: Sequence[float]) -> float:
    """The loss training minimises: each output's loss times its weight, summed (one output: its loss)."""
    return sum(head.weight * value for head, value in zip(heads, values))


__all__ = [
    "Head",
    "Tally",
    "create_heads",
    "labels_and_targets",
    "log_names",
    "reported_names",
    "update_metrics",
    "weighted_total",
]
