"""Loss and metrics of a model on a split: after each epoch (validation), at the end of a run (test), and
for ``specforge evaluate`` on a finished run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from specforge.base.errors import RunError
from specforge.data import Dataset, Preprocessing, Split, iterate_batches, load_data
from specforge.data.feed import Feed, make_feed
from specforge.graph.model import Model
from specforge.runs.directory import Run, display_path
from specforge.training.heads import Head, Tally, create_heads, labels_and_targets, update_metrics

#: Called with each batch's class probabilities and integer labels.
Observer = Callable[[np.ndarray, np.ndarray], None]
#: Called with (examples done, examples in all) after each batch.
OnBatch = Callable[[int, int], None]


def evaluate_split(
    model: Model,
    split: Split,
    heads: Sequence[Head],
    batch_size: int,
    preprocessing: Preprocessing | None = None,
    observe: Observer | None = None,
    on_batch: OnBatch | None = None,
    feed: Feed | None = None,
) -> dict[str, float]:
    """The mean loss and the metrics of ``model`` on ``split`` (inference mode), each output's named as in
    training's logs (``specforge.training.heads``); ``feed`` splits a batch into the model's inputs (the whole
    batch by default); ``observe`` sees every batch's first output, ``on_batch(done, total)`` is called after
    each (a progress bar)."""
    skipped = model.skipped([head.loss for head in heads])
    feed = feed or Feed()
    tally = Tally(heads)
    for x, y in iterate_batches(split, batch_size, shuffle=False, preprocessing=preprocessing):
        outputs = model.outputs(feed.split(x), skipped=skipped)
        pairs = [head.labels_and_targets(y) for head in heads]
        fused = [head.node in skipped for head in heads]
        values = [
            head.loss.value(output, targets, from_logits=logits)
            for head, output, (_, targets), logits in zip(heads, outputs, pairs, fused)
        ]
        probabilities = [
            head.loss.to_probabilities(output, logits) for head, output, logits in zip(heads, outputs, fused)
        ]
        tally.add(values, probabilities, pairs, preprocessing or split.preprocessing)
        if observe is not None:
            observe(probabilities[0], pairs[0][0])
        if on_batch is not None:
            on_batch(tally.count, len(split))
    return tally.logs()


def run_split(run: Run, split: str, limit: int | None = None) -> tuple[Dataset, Split]:
    """The run's data set and its split ``split`` (the first ``limit`` examples when given)."""
    dataset = load_data(
        run.config,
        Path(run.manifest.get("base_dir", ".")),
        {},
        run.graph.input_dtype,
        Preprocessing.from_dict(run.preprocessing),
    )
    chosen = dataset.splits().get(split)
    if chosen is None:
        raise RunError(
            f"the run's data has no {split} split; use one of: {', '.join(dataset.splits())}",
            file=display_path(run.path),
        )
    return dataset, chosen if limit is None else chosen.part(chosen.name, None, limit)


def predict_run(run: Run, images: np.ndarray, *, batch_size: int = 256, preprocess: bool = True) -> np.ndarray:
    """Outputs (class probabilities) of a run's model for ``images`` as stored (the run's preprocessing applied
    batch by batch), or for model inputs when ``preprocess`` is False."""
    model = run.model
    steps = Preprocessing.from_dict(run.preprocessing)
    images = np.asarray(images)
    if not preprocess:
        return model.predict(images.astype(steps.input_dtype, copy=False), batch_size)
    parts = [
        model.predict(steps.images(images[start : start + batch_size]), batch_size)
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(parts) if parts else model.predict(np.zeros((0, *steps.input_shape), steps.input_dtype))


@dataclass
class Mistakes:
    """The examples of a split a run's model gets wrong, in split order: raw images, indices, labels,
    predicted classes and the probability given to each prediction."""

    images: np.ndarray
    indices: np.ndarray
    labels: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    class_names: list[str]
    examples: int


def find_mistakes(run: Run, split: str = "test", *, limit: int | None = None, batch_size: int = 256) -> Mistakes:
    """Every example of ``split`` whose predicted class differs from its label."""
    dataset, chosen = run_split(run, split, limit)
    if chosen.labels is None:
        raise RunError(f"the {split} split has no labels to compare with", file=display_path(run.path))
    images = np.asarray(chosen.images)
    probabilities = predict_run(run, images, batch_size=batch_size)
    predicted = (
        (probabilities[:, 0] > 0.5).astype(np.int64) if probabilities.shape[-1] == 1 else probabilities.argmax(axis=-1)
    )
    labels = np.asarray(chosen.labels, dtype=np.int64)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities.max(axis=-1) if probabilities.shape[-1] > 1 else np.abs(probabilities[:, 0] - 0.5) + 0.5
    return Mistakes(
        images[wrong], wrong, labels[wrong], predicted[wrong], confidence[wrong], list(dataset.class_names), len(images)
    )


class Confusion:
    """Counts of (true class, predicted class) over the batches of a split; one sigmoid unit is two classes."""

    def __init__(self, classes: int):
        self.matrix = np.zeros((max(classes, 2), max(classes, 2)), dtype=np.int64)

    def __call__(self, probabilities: np.ndarray, labels: np.ndarray) -> None:
        predicted = probabilities[:, 0] > 0.5 if probabilities.shape[-1] == 1 else probabilities.argmax(axis=-1)
        np.add.at(self.matrix, (np.asarray(labels, dtype=np.int64), predicted.astype(np.int64)), 1)


def per_class(matrix: np.ndarray, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of each class from a confusion matrix (rows: true, columns: predicted);
    0 where a class is never predicted or never present, as scikit-learn's zero_division=0."""
    right = np.diag(matrix).astype(float)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(right, predicted, out=np.zeros_like(right), where=predicted > 0)
    recall = np.divide(right, actual, out=np.zeros_like(right), where=actual > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(right), where=total > 0)
    return [
        {
            "class": index,
            "name": class_names[index] if index < len(class_names) else str(index),
            "precision": float(precision[index]),
            "recall": float(recall[index]),
            "f1": float(f1[index]),
            "support": int(actual[index]),
        }
        for index in range(len(matrix))
    ]


def evaluate_run(
    run: Run,
    split: str = "test",
    *,
    batch_size: int | None = None,
    limit: int | None = None,
    details: bool = False,
    on_batch: OnBatch | None = None,
) -> dict[str, Any]:
    """Loss and metrics of a finished run on ``split`` (test, train or validation), with the run's preprocessing;
    with ``details``, also ``class_names``, ``per_class`` (precision, recall, F1, support) and
    ``confusion_matrix`` (rows: true class, columns: predicted); ``on_batch(done, total)`` after each batch."""
    config = run.config
    dataset, chosen = run_split(run, split, limit)
    model = run.model
    confusion = Confusion(model.graph.output_shape[-1]) if details else None
    preprocessing = Preprocessing.from_dict(run.preprocessing)
    results = evaluate_split(
        model,
        chosen,
        create_heads(config, model.graph),
        batch_size or config["fit"]["batch_size"],
        preprocessing,
        observe=confusion,
        on_batch=on_batch,
        feed=make_feed(config["data"], preprocessing.pipeline),
    )
    report: dict[str, Any] = {"split": split, "examples": len(chosen), **results}
    if confusion is not None:
        names = list(dataset.class_names)
        report.update(
            class_names=names, per_class=per_class(confusion.matrix, names), confusion_matrix=confusion.matrix.tolist()
        )
    return report


__all__ = [
    "Confusion",
    "Mistakes",
    "evaluate_run",
    "evaluate_split",
    "find_mistakes",
    "labels_and_targets",
    "per_class",
    "predict_run",
    "run_split",
    "update_metrics",
]
