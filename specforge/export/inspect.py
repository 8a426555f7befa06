"""What an ONNX file holds: interface, versions, producer, metadata, size and operators."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from specforge.export.quantize import quantization_of
from specforge.predict.session import model_file, unloadable

if TYPE_CHECKING:
    import onnx

#: What ``parameters`` counts, in words.
PARAMETERS_COUNTED = {
    "model": "the model's weights, as validate counts them",
    "initializers": "the values of the initializers, shapes left out",
}


def describe(path: str | Path) -> dict:
    """``specforge inspect``: a JSON-friendly description of the ONNX model at ``path``."""
    import onnx
    from google.protobuf.message import DecodeError

    path = model_file(path)
    try:
        model = onnx.load(str(path))
    except (DecodeError, OSError, ValueError, onnx.checker.ValidationError) as error:
        raise unloadable(path, error) from None

    graph = model.graph
    initializers = {tensor.name for tensor in graph.initializer}
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    return {
        "file": str(path),
        "size": path.stat().st_size,
        "ir_version": model.ir_version,
        "opsets": {entry.domain or "ai.onnx": entry.version for entry in model.opset_import},
        "producer": {"name": model.producer_name, "version": model.producer_version},
        "doc": graph.doc_string,
        "inputs": [_value(value) for value in graph.input if value.name not in initializers],
        "outputs": [_value(value) for value in graph.output],
        "metadata": metadata,
        "quantized": quantization_of(metadata, {node.op_type for node in graph.node}),
        "nodes": len(graph.node),
        "ops": dict(sorted(Counter(node.op_type for node in graph.node).items(), key=lambda kv: (-kv[1], kv[0]))),
        **_parameters(metadata, graph.initializer),
    }


def _parameters(metadata: dict[str, str], initializers: Sequence[onnx.TensorProto]) -> dict:
    """The model's parameter count and what it counts: as ``validate``'s summary counts them (every weight, moving
    statistics included), which specforge records at export, since the file's initializers also hold preprocessing
    constants and hold folded layers (a batch normalization as one scale and shift) in fewer numbers; for a model
    from elsewhere, the values of its initializers, less the integer shapes and axes that ops take as inputs."""
    import onnx

    if "parameters" in metadata:
        return {"parameters": int(metadata["parameters"]), "parameters_counted": "model"}
    return {
        "parameters": sum(
            math.prod(tensor.dims) for tensor in initializers if tensor.data_type != onnx.TensorProto.INT64
        ),
        "parameters_counted": "initializers",
    }


def format_description(info: dict) -> str:
    """The description as aligned text lines."""

    def interface(values: list[dict]) -> list[str]:
        return [
            f"  {v['name']}: {v['type']} [{', '.join(map(str, v['shape']))}]" + (f"  {v['doc']}" if v["doc"] else "")
            for v in values
        ]

    opsets = ", ".join(f"{domain} {version}" for domain, version in info["opsets"].items())
    lines = [
        f"file: {info['file']} ({_human(info['size'])})",
        f"producer: {info['producer']['name']} {info['producer']['version']}".rstrip(),
        f"IR version: {info['ir_version']}; opset: {opsets}",
        *([f"doc: {info['doc']}"] if info["doc"] else []),
        "inputs:",
        *interface(info["inputs"]),
        "outputs:",
        *interface(info["outputs"]),
        (
            f"nodes: {info['nodes']} ({', '.join(f'{op} {count}' for op, count in info['ops'].items())}); "
            f"parameters: {info['parameters']:,} ({PARAMETERS_COUNTED[info['parameters_counted']]})"
        ),
        f"quantized: {_quantized(info['quantized'])}",
    ]
    if info["metadata"]:
        width = max(map(len, info["metadata"]))
        lines += ["metadata:", *(f"  {key:<{width}}  {value}" for key, value in info["metadata"].items())]
    return "\n".join(lines)


def _quantized(record: dict | None) -> str:
    if record is None:
        return "no (float32)"
    if "int8_accuracy" not in record:
        return f"{record['type']} (by another tool)"
    each = record.get("outputs") or {"": record}  # a model of several outputs: each one's, by its name
    accuracies = "; ".join(
        f"{f'{name} ' if name else ''}{100 * values['float_accuracy']:.2f}% float, "
        f"{100 * values['int8_accuracy']:.2f}% int8"
        for name, values in each.items()
    )
    return f"{record['type']} (test accuracy {accuracies}, on {record['examples']} examples)"


def _value(value: onnx.ValueInfoProto) -> dict:
    import onnx

    tensor = value.type.tensor_type
    shape = [dim.dim_param or dim.dim_value for dim in tensor.shape.dim]
    return {
        "name": value.name,
        "type": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name,
        "shape": shape,
        "doc": value.doc_string,
    }


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    return f"{size / 1024:.1f} KiB" if size < 1024**2 else f"{size / 1024**2:.1f} MiB"
