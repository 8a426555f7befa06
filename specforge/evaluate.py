"""Loss and metrics of a model on a split: after each epoch (validation), at the end of a run (test), and
for ``specforge evaluate`` on a finished run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from specforge import losses, metrics as metric_kinds
from specforge.data import Preprocessing, Split, iterate_batches, load_data
from specforge.errors import RunError
from specforge.losses import Loss
from specforge.metrics import Metric
from specforge.model import Model
from specforge.runs import Run, display_path


def labels_and_targets(loss: Loss, y: np.ndarray, units: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer class labels (for metrics) and the loss's targets from a batch's preprocessed labels."""
    labels = y if y.ndim == 1 else y.argmax(axis=-1)
    expected = y.shape[:1] if loss.label_encoding == "sparse" else (len(y), units)
    return labels, (y if y.shape == expected else loss.encode_labels(labels, units))


def evaluate_split(model: Model, split: Split, loss: Loss, metrics: Sequence[Metric], batch_size: int,
                   preprocessing: Preprocessing | None = None) -> dict[str, float]:
    """The mean loss and the metrics of ``model`` on ``split`` (inference mode)."""
    fused = model.fuses(loss)
    until = len(model.graph.nodes) - 1 if fused else None
    units = model.graph.output_shape[-1]
    for metric in metrics:
        metric.reset()
    total, count = 0.0, 0
    for x, y in iterate_batches(split, batch_size, shuffle=False, preprocessing=preprocessing):
        outputs = model.forward(x, until=until)
        labels, targets = labels_and_targets(loss, y, units)
        total += loss.value(outputs, targets, from_logits=fused) * len(x)
        count += len(x)
        probabilities = loss.to_probabilities(outputs, fused)
        for metric in metrics:
            metric.update(probabilities, labels)
    return {"loss": total / count if count else float("nan"), **{m.name: m.result() for m in metrics}}


def evaluate_run(run: Run, split: str = "test", *, batch_size: int | None = None,
                 limit: int | None = None) -> dict[str, Any]:
    """Loss and metrics of a finished run on ``split`` (test, train or validation), with the run's preprocessing."""
    config = run.config
    dataset = load_data(config, Path(run.manifest.get("base_dir", ".")), {})
    chosen = dataset.splits().get(split)
    if chosen is None:
        raise RunError(f"the run's data has no {split} split; use one of: {', '.join(dataset.splits())}",
                       file=display_path(run.path))
    if limit is not None:
        chosen = chosen.part(chosen.name, None, limit)
    model = run.model()
    results = evaluate_split(model, chosen, losses.get(config["compile"]["loss"]),
                             metric_kinds.create(config["compile"]["metrics"], model.graph.output_shape[-1]),
                             batch_size or config["fit"]["batch_size"], Preprocessing.from_dict(run.preprocessing))
    return {"split": split, "examples": len(chosen), **results}


__all__ = ["evaluate_split", "evaluate_run", "labels_and_targets"]
