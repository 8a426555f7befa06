"""The served model's interface in the protocol's terms: its inputs and outputs, and onnxruntime's feed for a
request's tensors.

An image or array model takes its tensors as they are (FP64 cast to the FP32 it wants).  A table model
(``specforge export`` of a table spec) takes one ``[N, 1]`` tensor per feature column, FP32 (or FP64) for a
numeric column and BYTES for a categorical, binary or text one, and its rows are fed exactly as
``specforge predict MODEL rows.csv`` feeds the rows of a file: the same missing values, the same conversion;
an image column's input takes the raw 0-255 pixels ``[N, height, width, channels]`` as FP32 (or FP64).
A text model takes one BYTES tensor ``text`` of shape ``[N]``, one raw document per element (UTF-8), which
its graph vectorizes as ``specforge predict MODEL --text`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from specforge.data.table.read import cells_table
from specforge.predict.table import image_inputs, is_table_model, table_inputs
from specforge.serve.protocol import DATATYPES, NUMPY_TYPES, TensorSpec

if TYPE_CHECKING:
    from specforge.predict.session import OnnxPredictor

#: onnxruntime's element types (``tensor(float)``) by numpy dtype name, where the two differ.
ONNX_ELEMENTS = {"float": "float32", "double": "float64", "string": "object"}


class ServedModel:
    """An exported model as /infer sees it."""

    def __init__(self, model: OnnxPredictor) -> None:
        self.session = model.session
        self.inputs = [_spec(tensor) for tensor in self.session.get_inputs()]
        self.outputs = [_spec(tensor) for tensor in self.session.get_outputs()]
        #: ``(column, is_text)`` per input of a table model; None for an image or array model
        self.columns = table_inputs(model.metadata) if is_table_model(model.metadata) else None
        #: a table model's image columns, whose pixels are fed as they come
        self.images = image_inputs(model.metadata) if is_table_model(model.metadata) else {}

    @property
    def output_names(self) -> list[str]:
        return [spec.name for spec in self.outputs]

    def run(self, outputs: list[str], tensors: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The model's ``outputs`` for a request's tensors (a table's rows converted here too: off the event loop)."""
        return self.session.run(outputs, self.feed(tensors))

    def feed(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """onnxruntime's inputs for a request's tensors (already checked against ``inputs``)."""
        if self.columns is None:
            return {
                spec.name: tensors[spec.name].astype(NUMPY_TYPES[spec.datatype], copy=False) for spec in self.inputs
            }
        from specforge.export.table import rows_feed

        cells = {name: tensors[name].reshape(-1).tolist() for name, _ in self.columns}
        pixels = {name: tensors[name].astype(np.float32, copy=False) for name in self.images}
        return rows_feed(cells_table("the request", cells), self.columns) | pixels


def _spec(tensor: Any) -> TensorSpec:  # onnxruntime's NodeArg, which has no type hints
    """onnxruntime's ``tensor(float)`` as the protocol's ``FP32`` (``tensor(string)``: ``BYTES``), its symbolic
    dimensions as -1."""
    element = tensor.type.removeprefix("tensor(").removesuffix(")")
    dtype = ONNX_ELEMENTS.get(element, element)
    return TensorSpec(
        tensor.name, DATATYPES.get(dtype, dtype.upper()), tuple(d if isinstance(d, int) else -1 for d in tensor.shape)
    )
