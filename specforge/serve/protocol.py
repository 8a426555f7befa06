"""The Open Inference Protocol's tensors (KServe v2 / Triton REST): request inputs to arrays, arrays to outputs.

A request is JSON, or JSON followed by raw tensor bytes (the binary tensor extension Triton's clients use by
default): the ``Inference-Header-Content-Length`` header then gives the JSON's length, and each binary input
carries ``parameters.binary_data_size``.  Outputs come back the same way the request asks for them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from math import prod
from typing import Sequence

import numpy as np

#: The protocol's datatype names, by numpy dtype name.
DATATYPES = {"float32": "FP32", "float64": "FP64", "float16": "FP16", "uint8": "UINT8", "int8": "INT8",
             "int16": "INT16", "int32": "INT32", "int64": "INT64", "bool": "BOOL"}
NUMPY_TYPES = {name: dtype for dtype, name in DATATYPES.items()}
HEADER_LENGTH = "inference-header-content-length"


class ProtocolError(Exception):
    """A request the server refuses: ``status`` (400, 404, 413) and a message for the JSON error body."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: list[str] | None
    binary_outputs: set[str]


def parse_request(body: bytes, header_length: str | None, *, input_name: str, input_shape: Sequence[int],
                  output_names: Sequence[str], max_batch: int) -> InferRequest:
    """The request's one input as a float32 ``(N, *input_shape)`` array, checked against the model."""
    json_part, binary = _split(body, header_length)
    try:
        request = json.loads(json_part)
    except (ValueError, UnicodeDecodeError) as error:
        raise ProtocolError(400, f"the request body is not JSON ({error})") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list) or not request["inputs"]:
        raise ProtocolError(400, 'the request needs "inputs": a list of tensors {"name", "shape", "datatype", "data"}')
    if len(request["inputs"]) != 1 or not isinstance(request["inputs"][0], dict):
        raise ProtocolError(400, f"the model takes one input, {input_name!r}; the request has "
                                 f"{len(request['inputs'])}")
    tensor = request["inputs"][0]
    if tensor.get("name") != input_name:
        raise ProtocolError(400, f"the model's input is {input_name!r}, not {tensor.get('name')!r}")
    shape = tensor.get("shape")
    if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)
            or tuple(shape[1:]) != tuple(input_shape) or not shape[0]):
        raise ProtocolError(400, f"input {input_name!r} has shape {shape}; the model takes "
                                 f"[N, {', '.join(map(str, input_shape))}] with N >= 1")
    if shape[0] > max_batch:
        raise ProtocolError(413, f"a batch of {shape[0]} is more than this server's --max-batch {max_batch}")
    if tensor.get("datatype") != "FP32":
        raise ProtocolError(400, f"input {input_name!r} has datatype {tensor.get('datatype')!r}; the model takes FP32")
    array = _data(tensor, binary, prod(shape))
    return InferRequest(
        request.get("id") if isinstance(request.get("id"), str) else None,
        {input_name: array.reshape(shape)},
        _requested(request, output_names),
        _binary_outputs(request, output_names))


def encode_response(model_name: str, request_id: str | None, outputs: dict[str, np.ndarray],
                    binary_outputs: set[str]) -> tuple[bytes, dict[str, str]]:
    """The response body and its extra headers: JSON, then the binary outputs' bytes in order."""
    tensors, blobs = [], []
    for name, array in outputs.items():
        tensor = {"name": name, "datatype": DATATYPES[array.dtype.name], "shape": list(array.shape)}
        if name in binary_outputs:
            blob = np.ascontiguousarray(array).tobytes()
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = array.reshape(-1).tolist()
        tensors.append(tensor)
    response = {"model_name": model_name, "outputs": tensors}
    if request_id is not None:
        response["id"] = request_id
    head = json.dumps(response).encode()
    if not blobs:
        return head, {"content-type": "application/json"}
    return head + b"".join(blobs), {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(head))}


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not header_length.isdigit() or int(header_length) > len(body):
        raise ProtocolError(400, f"Inference-Header-Content-Length {header_length!r} is not the length of the "
                                 "JSON at the start of the body")
    return body[:int(header_length)], body[int(header_length):]


def _data(tensor: dict, binary: bytes, size: int) -> np.ndarray:
    parameters = tensor.get("parameters") if isinstance(tensor.get("parameters"), dict) else {}
    if "binary_data_size" in parameters:
        if parameters["binary_data_size"] != len(binary) or len(binary) != 4 * size:
            raise ProtocolError(400, f"binary data of {len(binary)} bytes does not hold the {size} FP32 values "
                                     "the shape says")
        return np.frombuffer(binary, dtype=np.float32)
    try:
        array = np.asarray(tensor.get("data"), dtype=np.float32)
    except (ValueError, TypeError):
        raise ProtocolError(400, '"data" must be numbers, flat or nested as the shape') from None
    if array.size != size:
        raise ProtocolError(400, f'"data" holds {array.size} values; the shape says {size}')
    return array


def _requested(request: dict, output_names: Sequence[str]) -> list[str] | None:
    outputs = request.get("outputs")
    if outputs is None:
        return None
    names = [output.get("name") for output in outputs if isinstance(output, dict)] if isinstance(outputs, list) else []
    unknown = [name for name in names if name not in output_names]
    if unknown or len(names) != len(outputs):
        raise ProtocolError(400, f"unknown outputs {unknown or outputs}; the model has {list(output_names)}")
    return names


def _binary_outputs(request: dict, output_names: Sequence[str]) -> set[str]:
    def wants(parameters: object) -> bool:
        return isinstance(parameters, dict) and parameters.get("binary_data") is True

    everything = isinstance(request.get("parameters"), dict) and request["parameters"].get("binary_data_output") is True
    chosen = {output["name"] for output in request.get("outputs") or () if wants(output.get("parameters"))}
    return set(output_names) if everything and not request.get("outputs") else chosen
