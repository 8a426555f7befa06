"""Predictions of an exported ONNX model: the ``top_k`` classes of every input, with labels when known.

Inputs are raw values, as the training data stored them (``specforge.data.inputs`` decodes files);
``SOURCE:SPLIT`` or ``SPEC:SPLIT`` (``mnist:test``, ``specs/mnist.yaml:test``) names a split of a data
source, with its labels.  The model's metadata (written by ``specforge export``) gives the class names and
says whether the preprocessing is in the graph; when it is not, it is applied before the session runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from specforge.data.inputs import Inputs
from specforge.base.errors import DataError
from specforge.predict.session import DEFAULT_BATCH_SIZE, OnBatch, OnnxModel

if TYPE_CHECKING:
    from specforge.data.dataset import Validation
    from specforge.spec import Spec


@dataclass
class Prediction:
    """One input's result: the best classes (class, name, probability), best first."""

    source: str
    top: list[tuple[int, str, float]]
    label: int | None = None
    label_name: str | None = None
    inverted: bool = False

    @property
    def predicted(self) -> int:
        return self.top[0][0]

    @property
    def correct(self) -> bool | None:
        return None if self.label is None else self.predicted == self.label

    def to_dict(self) -> dict:
        cls, name, probability = self.top[0]
        record = {"source": self.source, "class": cls, "name": name, "probability": probability}
        if len(self.top) > 1:
            record["top_k"] = [{"class": c, "name": n, "probability": p} for c, n, p in self.top]
        if self.label is not None:
            record.update(label=self.label, label_name=self.label_name, correct=self.correct)
        if self.inverted:
            record["inverted"] = True
        return record


@dataclass
class PredictionReport:
    model: str
    predictions: list[Prediction] = field(default_factory=list)

    @property
    def accuracy(self) -> float | None:
        marks = [p.correct for p in self.predictions if p.correct is not None]
        return float(np.mean(marks)) if marks else None

    def to_dict(self) -> dict:
        return {"model": self.model, "count": len(self.predictions), "accuracy": self.accuracy,
                "predictions": [p.to_dict() for p in self.predictions]}


def read_data(data: str, model: OnnxModel, *, limit: int | None = None) -> Inputs:
    """``SOURCE:SPLIT`` (e.g. ``mnist:test``) or ``SPEC:SPLIT`` (e.g. ``specs/mnist.yaml:test``), with labels."""
    from specforge.data import load_dataset
    from specforge.data.inputs import split_inputs

    where, _, split_name = data.rpartition(":")
    if not where or split_name not in ("train", "test", "validation"):
        raise DataError(f"--data {data!r} is not SOURCE:SPLIT or SPEC:SPLIT; use e.g. mnist:test or "
                        "specs/mnist.yaml:test (splits: train, test, validation)", file=f"--data {data}")
    data_spec, base_dir, validation, spec = _data_spec(where)
    try:
        dataset = load_dataset(data_spec, model.input_shape, validation=validation, base_dir=base_dir)
    except DataError as error:
        raise error if spec is None else spec.located(error) from None
    split = {"train": dataset.train, "test": dataset.test, "validation": dataset.validation}[split_name]
    if split is None:
        raise DataError(f"the data of {where!r} has no {split_name} split; use one of: "
                        f"{', '.join(dataset.splits())}", file=where if spec is not None else f"--data {data}")
    return split_inputs(split.part(split.name, None, limit), model, where, split_name)


def _data_spec(where: str) -> tuple[dict, Path, Validation, Spec | None]:
    """The data section named by ``where``, where it is relative to, how it holds out a validation split, and
    the spec it comes from: a spec file's, split as the spec's ``fit.validation`` says (the splits that
    training and ``evaluate`` use), or a bare source name's, which has no validation split."""
    if Path(where).suffix.lower() in (".yaml", ".yml", ".json"):
        from specforge.spec import load_spec

        spec = load_spec(where)
        return spec.config["data"], spec.base_dir, spec.config["fit"]["validation"], spec
    return {"source": where}, Path.cwd(), "none", None


def predict(model: OnnxModel, inputs: Inputs, *, top_k: int = 1, batch_size: int = DEFAULT_BATCH_SIZE,
            on_batch: OnBatch | None = None) -> PredictionReport:
    """Run ``model`` on ``inputs`` and keep the ``top_k`` classes of each."""
    _check_top_k(top_k, model.num_classes)
    outputs = model.run(inputs.examples, batch_size, on_batch)
    if outputs.ndim != 2:
        raise DataError(f"the model's output has shape {list(outputs.shape)}; predict needs a classifier's "
                        "[N, classes]", file=str(model.path))
    _check_top_k(top_k, outputs.shape[1])
    order = np.argsort(-outputs, axis=1, kind="stable")[:, :top_k]
    values = np.take_along_axis(outputs, order, axis=1)
    report = PredictionReport(str(model.path))
    for i, source in enumerate(inputs.sources):
        label = None if inputs.labels is None else int(inputs.labels[i])
        report.predictions.append(Prediction(
            source,
            [(int(c), model.class_name(int(c)), float(v)) for c, v in zip(order[i], values[i])],
            label, None if label is None else model.class_name(label),
            bool(inputs.inverted[i]) if inputs.inverted is not None else False))
    return report


def _check_top_k(top_k: int, classes: int | None) -> None:
    if top_k < 1 or (classes is not None and top_k > classes):
        raise DataError(f"--top-k {top_k} is not between 1 and the model's {classes} classes")


__all__ = ["OnnxModel", "Prediction", "PredictionReport", "read_data", "predict"]
