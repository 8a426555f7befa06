"""Predictions of an exported ONNX model: one onnxruntime session, inputs decoded to its shape, batches.

Inputs are raw values, as the training data stored them:

- PNG/JPEG files, converted as image folders are (to the model's channels, resized to its
  height and width).  A one-channel model expects MNIST's white digits on black: an image
  whose mean brightness is above 127 (dark on light) is inverted, unless ``invert=False``.
- ``.npy``/``.npz`` arrays: a batch ``(N, H, W[, C])`` or one example ``(H, W[, C])``.
- ``SOURCE:SPLIT`` or ``SPEC:SPLIT`` (``mnist:test``, ``specs/mnist.yaml:test``): a split of a
  data source, with its labels.

The model's metadata (written by ``specforge export``) gives the class names and says whether
the preprocessing is in the graph; when it is not, it is applied here before the session runs.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from specforge.errors import DataError
from specforge.fileio import write_text

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ARRAY_SUFFIXES = (".npy", ".npz")
#: A one-channel image brighter than this on average is dark-on-light and gets inverted.
INVERT_ABOVE = 127
#: .npz keys tried, in order, when an archive holds several arrays.
NPZ_KEYS = ("x_test", "images", "x", "inputs")
DEFAULT_BATCH_SIZE = 256

OnBatch = Callable[[int, int], None]


class OnnxModel:
    """An exported model loaded once: its session, interface and metadata."""

    def __init__(self, path: str | Path, threads: int | None = None):
        from specforge.export.runtime import make_session

        self.path = Path(path)
        if not self.path.is_file():
            raise DataError("no such file; give the .onnx file specforge export wrote", file=str(path))
        try:
            self.session = make_session(self.path, threads)
        except Exception as error:  # onnxruntime raises its own types for unreadable or invalid files
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DataError(f"cannot load as an ONNX model ({first}); give a file written by specforge export",
                            file=str(path)) from None
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        if not all(isinstance(d, int) for d in model_input.shape[1:]):
            raise DataError(f"the model's input {self.input_name} has shape {model_input.shape}; predict needs "
                            "every dimension but the batch fixed", file=str(path))
        self.input_shape: tuple[int, ...] = tuple(model_input.shape[1:])
        outputs = {output.name: output for output in self.session.get_outputs()}
        self.output_name = "probabilities" if "probabilities" in outputs else next(iter(outputs))
        #: classes per example, when the output's shape says so ([N, classes] with a fixed size)
        dims = outputs[self.output_name].shape
        self.num_classes: int | None = dims[1] if len(dims) == 2 and isinstance(dims[1], int) else None
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        self.class_names: list[str] | None = _json(self.metadata.get("class_names"))
        self.image_shape: tuple[int, ...] | None = tuple(_json(self.metadata.get("image_shape")) or ()) or None
        self.preprocessing = None
        if _json(self.metadata.get("preprocessing_in_graph")) is False:
            from specforge.data.preprocessing import Preprocessing

            self.preprocessing = Preprocessing.from_dict(json.loads(self.metadata["preprocessing"]))

    def class_name(self, index: int) -> str:
        names = self.class_names
        return names[index] if names is not None and index < len(names) else str(index)

    def run(self, examples: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE,
            on_batch: OnBatch | None = None) -> np.ndarray:
        """The model's output for ``examples`` (raw values, ``(N, *input_shape)``), ``batch_size`` at a time;
        ``on_batch(done, total)`` after each batch."""
        total = len(examples)
        out: np.ndarray | None = None
        for start in range(0, total, batch_size):
            batch = examples[start:start + batch_size]
            feed = (self.preprocessing.images(batch) if self.preprocessing is not None
                    else np.asarray(batch, dtype=np.float32))
            result = self.session.run([self.output_name], {self.input_name: feed})[0]
            if out is None:
                out = np.empty((total, *result.shape[1:]), dtype=result.dtype)
            out[start:start + len(result)] = result
            if on_batch is not None:
                on_batch(min(start + batch_size, total), total)
        return out if out is not None else np.zeros((0,), dtype=np.float32)


@dataclass
class Inputs:
    """Examples in the model's input shape (stored dtype), where each came from, and labels when known."""

    examples: np.ndarray
    sources: list[str]
    labels: np.ndarray | None = None
    inverted: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.examples)

    def head(self, limit: int | None) -> Inputs:
        if limit is None:
            return self
        cut = slice(0, limit)
        return Inputs(self.examples[cut], self.sources[cut],
                      None if self.labels is None else self.labels[cut],
                      None if self.inverted is None else self.inverted[cut])


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


# -- inputs ---------------------------------------------------------------------------------------
def read_files(paths: Sequence[str | Path], model: OnnxModel, *, invert: bool = True) -> Inputs:
    """Images and arrays from files, in the order given, fitted to ``model``'s input."""
    parts: list[Inputs] = []
    images: list[Path] = []
    for path in map(Path, paths):
        suffix = path.suffix.lower()
        if suffix not in IMAGE_SUFFIXES + ARRAY_SUFFIXES:
            raise DataError(f"cannot predict on a {suffix or 'suffix-less'} file; give PNG/JPEG images or "
                            ".npy/.npz arrays", file=str(path))
        if not path.is_file():
            raise DataError("no such file", file=str(path))
        if suffix in IMAGE_SUFFIXES:
            images.append(path)
            continue
        if images:
            parts.append(read_images(images, model, invert=invert))
            images = []
        parts.append(read_array(path, model))
    if images:
        parts.append(read_images(images, model, invert=invert))
    if not parts:
        raise DataError("nothing to predict; give image or array files, or --data SOURCE:SPLIT")
    return _concatenate(parts)


def read_images(paths: Sequence[Path], model: OnnxModel, *, invert: bool = True) -> Inputs:
    """PNG/JPEG files decoded as image folders decode them; one-channel dark-on-light images inverted."""
    from specforge.data.folders import decode_image
    from specforge.data.files import read_bytes

    shape = _image_shape(model)
    pixels = np.stack([decode_image(read_bytes(path), shape, str(path)) for path in paths])
    inverted = np.zeros(len(paths), dtype=bool)
    if invert and (len(shape) == 2 or shape[-1] == 1):
        inverted = pixels.reshape(len(pixels), -1).mean(axis=1) > INVERT_ABOVE
        pixels[inverted] = 255 - pixels[inverted]
    return Inputs(pixels.reshape((len(pixels), *model.input_shape)), [path.name for path in paths],
                  inverted=inverted)


def read_array(path: Path, model: OnnxModel) -> Inputs:
    """An .npy array or an .npz archive's images: a batch or a single example."""
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as archive:
                array = archive[_npz_key(archive.files, path)]
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"cannot read the array ({error}); save it with numpy.save or numpy.savez",
                        file=str(path)) from None
    if array.dtype.kind not in "iufb":
        raise DataError(f"the array has dtype {array.dtype}; give numbers (uint8 pixels or floats)", file=str(path))
    examples, single = _fit(array, model, str(path))
    sources = [path.name] if single else [f"{path.name}[{i}]" for i in range(len(examples))]
    return Inputs(examples, sources)


def read_data(data: str, model: OnnxModel, *, limit: int | None = None) -> Inputs:
    """``SOURCE:SPLIT`` (e.g. ``mnist:test``) or ``SPEC:SPLIT`` (e.g. ``specs/mnist.yaml:test``), with labels."""
    from specforge.data import load_dataset

    where, _, split_name = data.rpartition(":")
    if not where or split_name not in ("train", "test", "validation"):
        raise DataError(f"--data {data!r} is not SOURCE:SPLIT or SPEC:SPLIT; use e.g. mnist:test or "
                        "specs/mnist.yaml:test (splits: train, test, validation)")
    data_spec, base_dir = _data_spec(where)
    validation = "validation" if split_name == "validation" else "none"
    dataset = load_dataset(data_spec, model.input_shape, validation=validation, base_dir=base_dir)
    split = {"train": dataset.train, "test": dataset.test, "validation": dataset.validation}[split_name]
    if split is None:
        raise DataError(f"the data of {where!r} has no {split_name} split; use one of "
                        f"{', '.join(name for name in dataset.splits() if name != 'validation')}")
    split = split.part(split.name, None, limit)
    if prod(split.images.shape[1:]) != prod(model.input_shape):
        raise DataError(f"{where} {split_name} examples have shape {list(split.images.shape[1:])}, the model "
                        f"takes {list(model.input_shape)}; give data the model was trained on")
    examples = np.asarray(split.images).reshape((len(split), *model.input_shape))
    return Inputs(examples, [f"{split_name}[{i}]" for i in range(len(split))], np.asarray(split.labels))


def _data_spec(where: str) -> tuple[dict, Path]:
    """The data section named by ``where``: a spec file's, or a bare source name's."""
    if Path(where).suffix.lower() in (".yaml", ".yml", ".json"):
        from specforge.spec import load_spec

        spec = load_spec(where)
        return spec.config["data"], spec.base_dir
    return {"source": where}, Path.cwd()


def _image_shape(model: OnnxModel) -> tuple[int, ...]:
    """The shape images decode to: the input's when it is an image, else the stored images' (metadata)."""
    shape = model.input_shape
    if len(shape) in (2, 3) and (len(shape) == 2 or shape[-1] in (1, 3, 4)):
        return shape
    if model.image_shape is not None and prod(model.image_shape) == prod(shape):
        return model.image_shape
    raise DataError(f"images cannot be converted to the model's input [N, {', '.join(map(str, shape))}]; "
                    "give .npy arrays of that shape", file=str(model.path))


def _fit(array: np.ndarray, model: OnnxModel, file: str) -> tuple[np.ndarray, bool]:
    """``(examples, single)``: ``array`` as ``(N, *input_shape)``; a one-line error with both shapes otherwise."""
    shape = model.input_shape
    examples = {shape, shape[:-1] if shape[-1] == 1 and len(shape) > 1 else shape}
    if model.image_shape is not None and prod(model.image_shape) == prod(shape):
        examples.add(model.image_shape)
    if array.shape in examples:
        return array.reshape((1, *shape)), True
    if array.ndim >= 1 and array.shape[1:] in examples:
        return array.reshape((len(array), *shape)), False
    accepted = " or ".join(f"(N, {', '.join(map(str, s))})" for s in sorted(examples, key=len, reverse=True))
    raise DataError(f"an array of shape {tuple(array.shape)} does not fit the model's input "
                    f"[N, {', '.join(map(str, shape))}]; give {accepted}, or one example without N", file=file)


def _npz_key(keys: Sequence[str], path: Path) -> str:
    if len(keys) == 1:
        return keys[0]
    for key in NPZ_KEYS:
        if key in keys:
            return key
    raise DataError(f"the archive holds {sorted(keys)}; name the images one of {', '.join(NPZ_KEYS)} or save "
                    "only them", file=str(path))


def _concatenate(parts: list[Inputs]) -> Inputs:
    if len(parts) == 1:
        return parts[0]
    inverted = [p.inverted if p.inverted is not None else np.zeros(len(p), dtype=bool) for p in parts]
    dtype = np.result_type(*(p.examples.dtype for p in parts))
    return Inputs(np.concatenate([p.examples.astype(dtype, copy=False) for p in parts]),
                  [s for p in parts for s in p.sources], None, np.concatenate(inverted))


def _json(value: str | None):
    return None if value is None else json.loads(value)


# -- predicting -----------------------------------------------------------------------------------
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


# -- output ---------------------------------------------------------------------------------------
def format_line(prediction: Prediction, width: int = 0) -> str:
    """``source  class (name)  probability`` (every top-k class), with the true label when known."""
    def shown(cls: int, name: str) -> str:
        return str(cls) if name == str(cls) else f"{cls} ({name})"

    best = "   ".join(f"{shown(c, n)} {p:.4f}" for c, n, p in prediction.top)
    line = f"{prediction.source:<{width}}  {best}"
    if prediction.inverted:
        line += "  [inverted]"
    if prediction.label is not None:
        line += f"  true {shown(prediction.label, prediction.label_name)}{'' if prediction.correct else ' (wrong)'}"
    return line


def accuracy_line(report: PredictionReport) -> str | None:
    accuracy = report.accuracy
    if accuracy is None:
        return None
    right = sum(bool(p.correct) for p in report.predictions)
    return f"accuracy: {accuracy:.4f} ({right}/{len(report.predictions)})"


def write_report(report: PredictionReport, path: str | Path) -> Path:
    """The predictions as CSV (one row per input, top-k as extra columns) or JSON, written atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return write_text(path, json.dumps(report.to_dict(), indent=2) + "\n")
    if suffix != ".csv":
        raise DataError(f"cannot write predictions as {suffix or 'a suffix-less file'}; name a .csv or .json file",
                        file=str(path))
    k = len(report.predictions[0].top) if report.predictions else 1
    labelled = any(p.label is not None for p in report.predictions)
    header = ["source", "class", "name", "probability"]
    header += [f"{column}_{rank}" for rank in range(2, k + 1) for column in ("class", "name", "probability")]
    header += ["label", "correct"] if labelled else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for p in report.predictions:
        row = [p.source, *(value for entry in p.top for value in entry)]
        writer.writerow(row + ([p.label, p.correct] if labelled else []))
    return write_text(path, buffer.getvalue())


def json_line(prediction: Prediction) -> str:
    return json.dumps(prediction.to_dict())


__all__ = ["OnnxModel", "Inputs", "Prediction", "PredictionReport", "read_files", "read_data", "predict",
           "format_line", "accuracy_line", "write_report", "json_line"]
