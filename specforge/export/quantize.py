"""``specforge export RUN --quantize int8``: an int8 model from onnxruntime's static quantization, and its gate.

Static quantization in the QDQ format (QuantizeLinear/DequantizeLinear around the int8 weights of Conv,
Gemm and MatMul, per output channel, and their int8 inputs), calibrated with MinMax on the first
``CALIBRATION_EXAMPLES`` training examples: onnxruntime then runs Conv, Gemm and MatMul in int8.  It keeps the
seed model's accuracy
(dynamic quantization would leave the convolutions, most of the work, in float32).

The gate runs the float and the int8 model on the whole test split and refuses the int8 model when
its accuracy is more than ``max_drop`` percentage points below the float model's (of a model of several
outputs, any output's accuracy); nothing is written then.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from specforge.base.errors import ExportError
from specforge.predict.session import make_session

if TYPE_CHECKING:
    import onnx

#: The only type ``--quantize`` takes.
INT8 = "int8"
CALIBRATION_EXAMPLES = 512
CALIBRATION_BATCH = 64
DEFAULT_MAX_ACCURACY_DROP = 0.5
#: Metadata key of a quantized model: JSON with the method and the gate's numbers.
METADATA_KEY = "quantization"
METHOD = (
    f"onnxruntime static quantization, QDQ: Conv, Gemm and MatMul with int8 weights per channel and int8 "
    f"inputs, MinMax calibration on {CALIBRATION_EXAMPLES} training examples"
)
#: The operators quantized (those with weights); the elementwise rest stays float between them.
QUANTIZED_LAYER_OPS = ("Conv", "Gemm", "MatMul")
#: Operators that only a quantized graph holds.
QUANTIZED_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "ConvInteger",
        "MatMulInteger",
    }
)


@dataclass
class OutputAccuracy:
    """One output's classes on the test split: its float and int8 accuracy and how often their classes agree."""

    float_accuracy: float
    int8_accuracy: float
    classes_agree: int

    @property
    def accuracy_change(self) -> float:
        """In percentage points; negative when the int8 model is worse."""
        return 100 * (self.int8_accuracy - self.float_accuracy)

    def summary(self, examples: int) -> str:
        return (
            f"accuracy {100 * self.float_accuracy:.2f}% float, {100 * self.int8_accuracy:.2f}% int8 "
            f"({self.accuracy_change:+.2f} points), classes agree on {self.classes_agree}/{examples}"
        )


@dataclass
class QuantizationResult:
    """The gate: float and int8 accuracy on ``examples`` test examples, and how often their classes agree; of a
    model of several outputs, each output's in ``outputs`` (the first output's at the top, as ``evaluate``'s
    per-class table), the gate applied to each."""

    type: str
    examples: int
    float_accuracy: float
    int8_accuracy: float
    classes_agree: int
    max_accuracy_drop: float
    float_size: int
    int8_size: int
    method: str = METHOD
    #: a model of several outputs: each output's numbers, by its name (empty for a model of one)
    outputs: dict[str, OutputAccuracy] = field(default_factory=dict)

    @property
    def accuracy_change(self) -> float:
        """In percentage points; negative when the int8 model is worse."""
        return 100 * (self.int8_accuracy - self.float_accuracy)

    @property
    def passed(self) -> bool:
        changes = [self.accuracy_change, *(each.accuracy_change for each in self.outputs.values())]
        return all(-change <= self.max_accuracy_drop for change in changes)

    def summary(self) -> str:
        first = OutputAccuracy(self.float_accuracy, self.int8_accuracy, self.classes_agree)
        each = (
            "; ".join(f"{name}: {accuracy.summary(self.examples)}" for name, accuracy in self.outputs.items())
            if self.outputs
            else first.summary(self.examples)
        )
        return (
            f"{self.examples} test examples: {each}; {self.float_size / 1024:.1f} KiB -> "
            f"{self.int8_size / 1024:.1f} KiB"
        )

    def failure(self) -> str:
        scope = " for an output" if self.outputs else ""
        return (
            f"int8 quantization loses too much: {self.summary()}; more than --max-accuracy-drop "
            f"{self.max_accuracy_drop:g} points{scope}, nothing was written (raise --max-accuracy-drop to accept it)"
        )

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "accuracy_change": self.accuracy_change,
            "passed": self.passed,
            "outputs": {
                name: {**asdict(each), "accuracy_change": each.accuracy_change} for name, each in self.outputs.items()
            },
        }


def quantize_gated(
    model: onnx.ModelProto,
    calibration: np.ndarray,
    test_inputs: np.ndarray,
    test_labels: np.ndarray | dict[str, np.ndarray],
    *,
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
    file: str | None = None,
) -> tuple[onnx.ModelProto, QuantizationResult]:
    """The int8 model of ``model`` (a float classifier whose first input takes ``calibration``-like values)
    and its gate result; raises ExportError (about ``file``), with the gate's numbers, when accuracy drops
    too much. ``test_labels`` are the labels of the model's first output, or of a model of several outputs each
    output's labels by its name, each output gated."""
    quantized = quantize_int8(model, calibration)
    float_bytes = model.SerializeToString()
    several = isinstance(test_labels, dict)
    labels = test_labels if isinstance(test_labels, dict) else {"": np.asarray(test_labels)}
    names = list(labels) if several else None
    float_classes = _classes(float_bytes, test_inputs, names)
    int8_classes = _classes(quantized.SerializeToString(), test_inputs, names)
    accuracies = {
        name: OutputAccuracy(
            float(np.mean(got_float == expected)),
            float(np.mean(got_int8 == expected)),
            int(np.sum(got_float == got_int8)),
        )
        for (name, expected), got_float, got_int8 in zip(labels.items(), float_classes, int8_classes, strict=True)
    }
    first = next(iter(accuracies.values()))
    examples = len(next(iter(labels.values())))
    record = {"type": INT8, "method": METHOD, "examples": examples, **asdict(first)}
    if several:
        record["outputs"] = {name: asdict(each) for name, each in accuracies.items()}
    _set_metadata(quantized, model, record)
    # The int8 size is the file's: taken after the metadata is set.
    result = QuantizationResult(
        INT8,
        examples,
        first.float_accuracy,
        first.int8_accuracy,
        first.classes_agree,
        max_accuracy_drop,
        float_size=len(float_bytes),
        int8_size=quantized.ByteSize(),
        outputs=accuracies if several else {},
    )
    if not result.passed:
        raise ExportError(result.failure(), file=file)
    return quantized, result


def quantize_int8(model: onnx.ModelProto, calibration: np.ndarray) -> onnx.ModelProto:
    """``model`` statically quantized to int8 (QDQ), calibrated on ``calibration`` (a batch of its inputs)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    input_name = model.graph.input[0].name

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches: Iterator[np.ndarray] = iter(
                np.array_split(calibration.astype(np.float32), max(1, len(calibration) // CALIBRATION_BATCH))
            )

        def get_next(self) -> dict | None:
            batch = next(self._batches, None)
            return None if batch is None else {input_name: batch}

    with tempfile.TemporaryDirectory() as scratch:
        source, target = Path(scratch) / "float.onnx", Path(scratch) / "int8.onnx"
        source.write_bytes(model.SerializeToString())
        logging.disable(logging.WARNING)  # its advice to pre-process: the exported graph is already shape-inferred
        try:
            quantize_static(
                str(source),
                str(target),
                Batches(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=list(QUANTIZED_LAYER_OPS),
                # Dense layers export [in, out] kernels (Gemm without transB): channels are axis 1
                extra_options={"QDQOpTypePerChannelSupportToAxis": {"Gemm": 1, "MatMul": 1}},
            )
        finally:
            logging.disable(logging.NOTSET)
        return onnx.load(str(target))


def quantization_of(model_metadata: dict[str, str], ops: set[str]) -> dict | None:
    """What ``inspect`` says: the metadata's record of an int8 export, ``{"type": "unknown"}`` for a graph
    quantized by other tools, None for a float model."""
    if METADATA_KEY in model_metadata:
        return json.loads(model_metadata[METADATA_KEY])
    return {"type": "unknown"} if ops & QUANTIZED_OPS else None


def _classes(model: bytes, inputs: np.ndarray, names: list[str] | None, batch_size: int = 256) -> list[np.ndarray]:
    """The classes the outputs ``names`` (None: the first output) give for ``inputs``: each one's argmax, or for
    one sigmoid unit whether it is above 0.5."""
    session = make_session(model)
    name = session.get_inputs()[0].name
    batches = [
        session.run(names, {name: inputs[start : start + batch_size]})[: None if names else 1]
        for start in range(0, len(inputs), batch_size)
    ]
    return [np.concatenate([_argmax(batch[index]) for batch in batches]) for index in range(len(names) if names else 1)]


def _argmax(scores: np.ndarray) -> np.ndarray:
    return scores.argmax(axis=1) if scores.shape[1] > 1 else (scores[:, 0] > 0.5).astype(np.int64)


def _set_metadata(quantized: onnx.ModelProto, original: onnx.ModelProto, record: dict) -> None:
    """The float model's producer, doc string and metadata, plus the quantization record."""
    from onnx import helper

    quantized.producer_name, quantized.producer_version = original.producer_name, original.producer_version
    quantized.graph.doc_string = original.graph.doc_string + " Quantized to int8."
    helper.set_model_props(
        quantized, {**{p.key: p.value for p in original.metadata_props}, METADATA_KEY: json.dumps(record)}
    )
