"""What a deployer needs to know about an exported model, stored in its ``metadata_props``.

Every value is a string (ONNX's rule); lists and dicts are JSON.  The keys:

=======================  ===========================================================================
``spec_name``            the spec's ``name``
``spec_sha256``          hash of the resolved spec the run trained
``parameters``           the model's parameters, counted as ``validate``'s summary counts them (every weight,
                         moving statistics included); the file's initializers hold other numbers too
                         (preprocessing constants, shapes) and hold folded layers in fewer
``class_names``          JSON list, index = class
``input_name``           ``input``
``input_shape``          JSON list, e.g. ``["N", 28, 28, 1]``
``input_layout``         ``NHWC`` for images (``NC`` for flat features)
``input_range``          the values the input expects, e.g. ``0-255 raw pixels``
``image_shape``          JSON list: the shape of one stored example (e.g. ``[28, 28]``), for image decoders
``outputs``              JSON list of the output names (``probabilities``, and ``logits`` when exported)
``output_class_names``   a model of several outputs: JSON, output name -> its class names (index = class)
``output_label_maps``    a model of several outputs: JSON, output name -> the map from the data's labels to its
                         classes (``data.targets``), or null where they are the labels
``preprocessing``        JSON: the run's preprocessing (rescale, mean, std, ...)
``preprocessing_in_graph``  ``true``: feed raw values; ``false``: apply ``preprocessing`` first
``test_accuracy``        the run's test accuracy (absent when the run has none)
``test_metrics``         JSON: every test metric of the run
``specforge_version``    the version that exported the file
=======================  ===========================================================================

A text model taking raw documents has ``input_name`` ``text``, ``input_shape`` ``["N"]``, ``input_layout``
``N`` and ``input_range`` ``raw documents (UTF-8 strings)``, and no ``image_shape``.

A table model (raw rows in) has ``inputs`` (JSON list of ``{"name", "type"}``, one per feature
column, type ``float`` or ``string``; an image column's ``{"name", "type": "image", "shape"}``) and ``task`` (``classification`` or ``regression``)
instead of ``input_name``, ``input_shape``, ``input_layout``, ``input_range`` and ``image_shape``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

import specforge

if TYPE_CHECKING:
    import onnx

    from specforge.data.preprocessing import Preprocessing


def _run_metadata(
    spec_name: str,
    spec_sha256: str,
    parameters: int,
    preprocessing: Preprocessing,
    outputs: Sequence[str],
    in_graph: bool,
    metrics: dict | None,
    interface: dict[str, str],
) -> dict[str, str]:
    """The keys every exported model has, around ``interface`` (the keys that describe its inputs)."""
    metadata = {
        "spec_name": spec_name,
        "spec_sha256": spec_sha256,
        "parameters": str(int(parameters)),
        "class_names": json.dumps(list(preprocessing.class_names)),
        **interface,
        "outputs": json.dumps(list(outputs)),
        "preprocessing": json.dumps(preprocessing.to_dict()),
        "preprocessing_in_graph": json.dumps(in_graph),
        "specforge_version": specforge.__version__,
    }
    if metrics:
        metadata["test_metrics"] = json.dumps(metrics)
        if "accuracy" in metrics:
            metadata["test_accuracy"] = repr(float(metrics["accuracy"]))
    return metadata


def build_metadata(
    *,
    spec_name: str,
    spec_sha256: str,
    parameters: int,
    preprocessing: Preprocessing,
    in_graph: bool,
    input_shape: Sequence[int],
    outputs: Sequence[str],
    raw: np.ndarray,
    metrics: dict | None = None,
) -> dict[str, str]:
    """The metadata of an exported classifier; ``raw`` is a batch of stored examples (their dtype and
    range say what values the input takes)."""
    return _run_metadata(
        spec_name,
        spec_sha256,
        parameters,
        preprocessing,
        outputs,
        in_graph,
        metrics,
        {
            "input_name": "input",
            "input_shape": json.dumps(["N", *map(int, input_shape)]),
            "input_layout": input_layout(input_shape),
            "input_range": input_range(raw, preprocessing, in_graph),
            "image_shape": json.dumps([int(d) for d in raw.shape[1:]]),
        },
    )


def text_metadata(
    *,
    spec_name: str,
    spec_sha256: str,
    parameters: int,
    preprocessing: Preprocessing,
    input_name: str,
    outputs: Sequence[str],
    metrics: dict | None = None,
) -> dict[str, str]:
    """The metadata of an exported text model that takes raw documents (its vectorization in the graph)."""
    return _run_metadata(
        spec_name,
        spec_sha256,
        parameters,
        preprocessing,
        outputs,
        True,
        metrics,
        {
            "input_name": input_name,
            "input_shape": json.dumps(["N"]),
            "input_layout": "N",
            "input_range": "raw documents (UTF-8 strings)",
        },
    )


def table_metadata(
    *,
    spec_name: str,
    spec_sha256: str,
    parameters: int,
    preprocessing: Preprocessing,
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[str],
    metrics: dict | None = None,
) -> dict[str, str]:
    """The metadata of an exported table model: the task, its named inputs, the classes or target columns."""
    return _run_metadata(
        spec_name,
        spec_sha256,
        parameters,
        preprocessing,
        outputs,
        True,
        metrics,
        {
            "task": "regression" if preprocessing.regression else "classification",
            "inputs": json.dumps([_table_input(info) for info in inputs]),
        },
    )


def _table_input(info: onnx.ValueInfoProto) -> dict:
    """A table model's input in its metadata: its name and type, ``string`` or ``float`` for a column of one value
    per row, ``image`` (with the pixels' shape) for an image column's ``[N, height, width, channels]``."""
    from onnx import TensorProto

    dims = [dim.dim_value for dim in info.type.tensor_type.shape.dim[1:]]
    if len(dims) > 1:
        return {"name": info.name, "type": "image", "shape": dims}
    return {"name": info.name, "type": "string" if info.type.tensor_type.elem_type == TensorProto.STRING else "float"}


def input_range(raw: np.ndarray, preprocessing: Preprocessing, in_graph: bool) -> str:
    """The values the model's input expects, in words: the stored range (``0-255 raw pixels`` for
    uint8 images) or, without in-graph preprocessing, that range after the preprocessing."""
    pixels = raw.dtype == np.uint8
    low, high = (0.0, 255.0) if pixels else (float(np.min(raw)), float(np.max(raw)))
    stored = f"{_span(low, high)} raw {'pixels' if pixels else 'values'}"
    if in_graph:
        return stored
    scale, offset = preprocessing.scale_and_offset
    ends = np.stack([low * scale.astype(np.float64) + offset, high * scale.astype(np.float64) + offset])
    return f"{_span(float(ends.min()), float(ends.max()))} ({stored} after the preprocessing)"


def input_layout(input_shape: Sequence[int]) -> str:
    """``NHWC`` for images (as the spec), ``NC`` for flat feature vectors, ``N`` + one letter per axis otherwise."""
    return {3: "NHWC", 2: "NHW", 1: "NC"}.get(len(input_shape), "N" + "D" * len(input_shape))


def attach_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> None:
    from onnx import helper

    helper.set_model_props(model, metadata)


def _span(low: float, high: float) -> str:
    return f"{low:.4g}-{high:.4g}" if low >= 0 else f"{low:.4g} to {high:.4g}"
