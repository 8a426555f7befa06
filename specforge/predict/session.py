"""onnxruntime sessions with explicit thread counts, shared by the parity gate and ``predict``, and an
exported model loaded with its interface and metadata."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from specforge.base.errors import DataError
from specforge.data.preprocessing import Preprocessing
from specforge.predict.text import model_inputs

DEFAULT_BATCH_SIZE = 256
#: numpy dtypes of onnxruntime's input types
ONNX_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(uint8)": "uint8",
    "tensor(string)": "object",
}

OnBatch = Callable[[int, int], None]


def default_threads() -> int:
    """The CPU cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def make_session(model: bytes | str | Path, threads: int | None = None):
    """An onnxruntime CPU session for ``model`` (serialized bytes or a path).

    One operator runs on ``threads`` cores (``intra_op_num_threads``; default: every core this
    process may use); operators run one after another (sequential mode, ``inter_op_num_threads=1``),
    the fastest arrangement for a chain of layers.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


def model_file(path: str | Path) -> Path:
    """``path`` when it is a file; a DataError saying what to give for a directory or a missing file."""
    path = Path(path)
    if path.is_dir():
        inside = path / "model.onnx"
        hint = f"give {inside}" if inside.is_file() else "give the .onnx file specforge export wrote"
        raise DataError(f"is a directory, not an ONNX file; {hint}", file=str(path))
    if not path.is_file():
        raise DataError("no such file; give the .onnx file specforge export wrote", file=str(path))
    return path


def unloadable(path: Path, error: Exception) -> DataError:
    """The refusal of a model file that onnx or onnxruntime cannot load (not ONNX, damaged, or with external
    data outside its folder), with the first line of their reason."""
    reason = str(error).strip()
    first = reason.splitlines()[0] if reason else type(error).__name__
    return DataError(f"cannot load as an ONNX model ({first}); give a file written by specforge export", file=str(path))


class OnnxPredictor:
    """An exported model loaded once: its session, interface and metadata."""

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path = model_file(path)
        try:
            self.session = make_session(self.path, threads)
        except Exception as error:  # onnxruntime raises its own types for unreadable or invalid files
            raise unloadable(self.path, error) from None
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        if not all(isinstance(d, int) for d in model_input.shape[1:]):
            raise DataError(
                f"the model's input {self.input_name} has shape {model_input.shape}; predict needs "
                "every dimension but the batch fixed",
                file=str(path),
            )
        self.input_shape: tuple[int, ...] = tuple(model_input.shape[1:])
        #: the numpy dtype the input takes (float32, or int64 ids; float32 for a type numpy has no name for)
        self.input_dtype = np.dtype(ONNX_TYPES.get(model_input.type, "float32"))
        outputs = {output.name: output for output in self.session.get_outputs()}
        #: every output's name (a model of several named outputs has one per model output)
        self.output_names = list(outputs)
        self.output_name = "probabilities" if "probabilities" in outputs else next(iter(outputs))
        #: classes per example, when the output's shape says so ([N, classes] with a fixed size)
        self.num_classes: int | None = output_classes(outputs[self.output_name].shape[1:])
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        #: whether specforge exported it (else its input scaling and class names are unknown)
        self.from_specforge = "specforge_version" in self.metadata
        self.class_names: list[str] | None = _json(self.metadata.get("class_names"))
        #: a model of several outputs: each output's class names, by output name
        self.output_class_names: dict[str, list[str]] = _json(self.metadata.get("output_class_names")) or {}
        self.output_label_maps: dict[str, list[int] | None] = _json(self.metadata.get("output_label_maps")) or {}
        #: the map from the data's labels to the chosen output's classes (None: they are the labels)
        self.label_map: list[int] | None = None
        self.image_shape: tuple[int, ...] | None = tuple(_json(self.metadata.get("image_shape")) or ()) or None
        #: the run's preprocessing, saved in the metadata (None for a model specforge did not export)
        self.saved = (
            Preprocessing.from_dict(json.loads(self.metadata["preprocessing"]))
            if "preprocessing" in self.metadata
            else None
        )
        self.preprocessing = self.saved if _json(self.metadata.get("preprocessing_in_graph")) is False else None
        #: whether the model predicts on documents (a text model), and the saved vectorizer that turns them into
        #: the model's input when the graph does not hold it (exported with --no-preprocessing)
        saved_vectorizer = None if self.saved is None else self.saved.vectorizer
        self.takes_documents = saved_vectorizer is not None
        self.vectorizer = saved_vectorizer if self.preprocessing is not None else None

    def class_name(self, index: int) -> str:
        names = self.class_names
        return names[index] if names is not None and index < len(names) else str(index)

    def choose_output(self, name: str) -> None:
        """Predict ``name``'s classes: one of the outputs of a model of several (``output_names``)."""
        output = next((each for each in self.session.get_outputs() if each.name == name), None)
        if output is None:
            raise unknown_output(name, self.output_names)
        self.output_name = name
        self.num_classes = output_classes(output.shape[1:])
        self.class_names = self.output_class_names.get(name, self.class_names)
        self.label_map = self.output_label_maps.get(name)

    def run(
        self, examples: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE, on_batch: OnBatch | None = None
    ) -> np.ndarray:
        """The model's output for ``examples`` (raw values, ``(N, *input_shape)``, or a text model's documents),
        ``batch_size`` at a time; ``on_batch(done, total)`` after each batch."""
        total = len(examples)
        out: np.ndarray | None = None
        for start in range(0, total, batch_size):
            batch = examples[start : start + batch_size]
            if self.takes_documents:
                batch = model_inputs(batch, self.vectorizer)
            feed = (
                self.preprocessing.images(batch)
                if self.preprocessing is not None
                else np.asarray(batch, dtype=self.input_dtype)
            )
            result = self.session.run([self.output_name], {self.input_name: feed})[0]
            if out is None:
                out = np.empty((total, *result.shape[1:]), dtype=result.dtype)
            out[start : start + len(result)] = result
            if on_batch is not None:
                on_batch(min(start + batch_size, total), total)
        return out if out is not None else np.zeros((0,), dtype=np.float32)


def output_classes(shape: Sequence) -> int | None:
    """The classes of an output whose examples have ``shape``: ``(classes,)`` with a fixed size, one sigmoid unit
    read as two; None for other shapes."""
    return max(2, shape[0]) if len(shape) == 1 and isinstance(shape[0], int) else None


def class_probabilities(outputs: np.ndarray) -> np.ndarray:
    """A classifier output's probabilities per class: one sigmoid unit is the probability of class 1."""
    return np.concatenate([1 - outputs, outputs], axis=1) if outputs.shape[1] == 1 else outputs


def output_not_chosen(names: Sequence[str], file: str) -> DataError:
    """The refusal of a model of several outputs without ``--output-name``: predictions show one output's classes
    at a time (``specforge serve`` gives every output by name)."""
    return DataError(
        f"the model has outputs {', '.join(map(repr, names))}; choose the one whose classes to show with "
        f"--output-name {names[0]}",
        file=file,
    )


def unknown_output(name: str, names: Sequence[str]) -> DataError:
    """The refusal of ``--output-name`` naming no output of the model, with those it has."""
    return DataError(f"the model has no output {name!r}; its outputs: {', '.join(names)}", file=f"--output-name {name}")


def _json(value: str | None):
    return None if value is None else json.loads(value)
