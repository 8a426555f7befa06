"""Predictions of an exported ONNX model: the ``top_k`` classes of every input, with labels when known.

Inputs are raw values, as the training data stored them (``specforge.data.inputs`` decodes files);
``SOURCE:SPLIT`` or ``SPEC:SPLIT`` (``mnist:test``, ``specs/mnist.yaml:test``) names a split of a data
source, with its labels.  The model's metadata (written by ``specforge export``) gives the class names and
says whether the preprocessing is in the graph; when it is not, it is applied before the session runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from specforge.base.errors import DataError
from specforge.base.raycluster import connect
from specforge.data import load_dataset
from specforge.data.inputs import Inputs, read_files, split_inputs
from specforge.predict.ray_data import RayPredictor
from specforge.predict.run_model import RunPredictor, is_run_dir
from specforge.predict.session import (
    DEFAULT_BATCH_SIZE,
    OnBatch,
    OnnxPredictor,
    class_probabilities,
    output_not_chosen,
)
from specforge.predict.table import is_table_model, rows_only
from specforge.predict.text import read_texts, split_texts
from specforge.spec import load_spec

#: What predicts: an exported model's onnxruntime session (or its Ray Data batches), or a run's numpy model.
Predictor = OnnxPredictor | RunPredictor

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
        return {
            "model": self.model,
            "count": len(self.predictions),
            "accuracy": self.accuracy,
            "predictions": [p.to_dict() for p in self.predictions],
        }


def read_data(data: str, model: Predictor, *, limit: int | None = None) -> Inputs:
    """``SOURCE:SPLIT`` (e.g. ``mnist:test``) or ``SPEC:SPLIT`` (e.g. ``specs/mnist.yaml:test``), with labels; a
    text model's documents as written, the split vectorized with the model's saved vocabulary."""
    where, _, split_name = data.rpartition(":")
    if not where or split_name not in ("train", "test", "validation"):
        raise DataError(
            f"--data {data!r} is not SOURCE:SPLIT or SPEC:SPLIT; use e.g. mnist:test or "
            "specs/mnist.yaml:test (splits: train, test, validation)",
            file=f"--data {data}",
        )
    data_spec, base_dir, validation, spec = _data_spec(where)
    saved = model.saved if model.takes_documents else None
    try:
        dataset = load_dataset(
            data_spec,
            model.input_shape if saved is None else saved.input_shape,
            validation=validation,
            base_dir=base_dir,
            fitted=saved,
        )
    except DataError as error:
        raise error if spec is None else spec.located(error) from None
    split = {"train": dataset.train, "test": dataset.test, "validation": dataset.validation}[split_name]
    if split is None:
        raise DataError(
            f"the data of {where!r} has no {split_name} split; use one of: {', '.join(dataset.splits())}",
            file=where if spec is not None else f"--data {data}",
        )
    split = split.part(split.name, None, limit)
    return split_texts(split, split_name) if model.takes_documents else split_inputs(split, model, where, split_name)


def _data_spec(where: str) -> tuple[dict, Path, Validation, Spec | None]:
    """The data section named by ``where``, where it is relative to, how it holds out a validation split, and
    the spec it comes from: a spec file's, split as the spec's ``fit.validation`` says (the splits that
    training and ``evaluate`` use), or a bare source name's, which has no validation split."""
    if Path(where).suffix.lower() in (".yaml", ".yml", ".json"):
        spec = load_spec(where)
        return spec.config["data"], spec.base_dir, spec.config["fit"]["validation"], spec
    return {"source": where}, Path.cwd(), "none", None


@contextlib.contextmanager
def open_predictor(
    model: str | Path,
    *,
    backend: str = "local",
    threads: int | None = None,
    address: str | None = None,
    actors: int | None = None,
) -> Iterator[Predictor]:
    """The predictor for ``model``: a run directory's numpy model, an exported model's onnxruntime session, or
    with ``backend`` ray its batches on Ray Data (at ``address``, RAY_ADDRESS or a local Ray) in ``actors``
    actors of ``threads`` CPUs each; Ray is left when the block ends."""
    if backend not in ("local", "ray"):
        raise DataError(f"unknown backend {backend!r}; use local or ray", file="--backend")
    if is_run_dir(model):
        if backend != "local":
            raise DataError("a run directory predicts here only; export it for --backend ray", file=str(model))
        yield RunPredictor(model)
    elif backend == "ray":
        with connect(address, "predict", "data"):
            yield RayPredictor(model, threads=threads or 1, actors=actors)
    else:
        yield OnnxPredictor(model, threads)


def _several_outputs(predictor: Predictor) -> bool:
    """Whether the model has several named outputs (an exported classifier's ``probabilities`` and ``logits``
    are one output's two forms)."""
    return len(predictor.output_names) > 1 and "probabilities" not in predictor.output_names


def choose_output(predictor: Predictor, name: str | None) -> None:
    """Have ``predictor`` give the classes of output ``name``: required for a model of several outputs, whose
    predictions show one output's classes at a time (``specforge serve`` gives every output by name)."""
    if name is not None:
        predictor.choose_output(name)
    elif _several_outputs(predictor):
        raise output_not_chosen(predictor.output_names, str(predictor.path))


def predict_onnx(
    model: str | Path,
    inputs: Sequence[str | Path] = (),
    *,
    data: str | None = None,
    limit: int | None = None,
    top_k: int = 1,
    threads: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    invert: bool = True,
    on_batch: OnBatch | None = None,
    backend: str = "local",
    address: str | None = None,
    actors: int | None = None,
    raw: bool = False,
    texts: Sequence[str] = (),
    column: str | None = None,
    output_name: str | None = None,
) -> PredictionReport:
    """The top-``top_k`` classes of ``model`` (an ONNX file or a run directory, see ``open_predictor``) for
    image/array files ``inputs`` or ``data`` (``SOURCE:SPLIT`` or ``SPEC:SPLIT``, with labels); a text model's
    for ``texts``, ``.txt`` files (one document a line) or a ``.csv`` file's ``column`` (``read_texts``); of a
    model of several outputs, output ``output_name``'s classes."""
    if bool(inputs or texts) == bool(data):
        raise DataError(
            "give inputs (files, or --text) or --data SOURCE:SPLIT, not both"
            if data
            else "nothing to predict; give input files, --text or --data SOURCE:SPLIT (e.g. mnist:test)"
        )
    with open_predictor(model, backend=backend, threads=threads, address=address, actors=actors) as predictor:
        check_image_model(predictor, raw=raw)
        choose_output(predictor, output_name)
        if (texts or column is not None) and not predictor.takes_documents:
            raise DataError(
                "--text and --column are for a text model; this model takes images or arrays", file=str(model)
            )
        if data:
            examples = read_data(data, predictor, limit=limit)
        elif predictor.takes_documents:
            examples = read_texts(inputs, texts, column=column).head(limit)
        else:
            examples = read_files(inputs, predictor, invert=invert).head(limit)
        return predict(predictor, examples, top_k=top_k, batch_size=batch_size, on_batch=on_batch, raw=raw)


def check_image_model(model: Predictor, *, raw: bool = False) -> None:
    """Refuse a table model (it takes rows), and a model specforge did not export unless ``raw`` (its inputs
    are then fed as they are, already scaled as the model expects)."""
    if is_table_model(model.metadata):
        raise rows_only(model.path)
    if not model.from_specforge and not raw:
        shape = ", ".join(map(str, model.input_shape))
        raise DataError(
            "the model has no specforge metadata (specforge export writes it), so its input "
            "scaling and class names are unknown and raw pixels would give wrong answers; give "
            f".npy/.npz arrays of shape [N, {shape}] already scaled as the model expects with "
            "--raw, or export the model with specforge export",
            file=str(model.path),
        )


def predict(
    model: Predictor,
    inputs: Inputs,
    *,
    top_k: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: OnBatch | None = None,
    raw: bool = False,
) -> PredictionReport:
    """Run ``model`` on ``inputs`` and keep the ``top_k`` classes of each (``check_image_model`` first)."""
    check_image_model(model, raw=raw)
    _check_top_k(top_k, model.num_classes)
    outputs = model.run(inputs.examples, batch_size, on_batch)
    if outputs.ndim != 2:
        raise DataError(
            f"the model's output has shape {list(outputs.shape)}; predict needs a classifier's [N, classes]",
            file=str(model.path),
        )
    outputs = class_probabilities(outputs)
    _check_top_k(top_k, outputs.shape[1])
    order = np.argsort(-outputs, axis=1, kind="stable")[:, :top_k]
    values = np.take_along_axis(outputs, order, axis=1)
    report = PredictionReport(str(model.path))
    for i, source in enumerate(inputs.sources):
        label = None if inputs.labels is None else int(inputs.labels[i])
        if label is not None and model.label_map is not None:
            label = model.label_map[label]
        report.predictions.append(
            Prediction(
                source,
                [(int(c), model.class_name(int(c)), float(v)) for c, v in zip(order[i], values[i])],
                label,
                None if label is None else model.class_name(label),
                bool(inputs.inverted[i]) if inputs.inverted is not None else False,
            )
        )
    return report


def _check_top_k(top_k: int, classes: int | None) -> None:
    if top_k < 1 or (classes is not None and top_k > classes):
        raise DataError(f"--top-k {top_k} is not between 1 and the model's {classes} classes")


__all__ = [
    "OnnxPredictor",
    "Prediction",
    "PredictionReport",
    "Predictor",
    "check_image_model",
    "choose_output",
    "open_predictor",
    "predict",
    "predict_onnx",
    "read_data",
]
