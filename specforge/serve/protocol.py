"""The Open Inference Protocol's tensors (KServe v2 / Triton REST): request inputs to arrays, arrays to outputs.

A request is JSON, or JSON followed by raw tensor bytes (the binary tensor extension Triton's clients use by
default): the ``Inference-Header-Content-Length`` header then gives the JSON's length, and each binary input
carries ``parameters.binary_data_size``; its bytes follow the JSON in the order of the inputs.  A BYTES
tensor's binary form is each element's length (4 bytes, little-endian) followed by its bytes.  Outputs come
back the way the request asks for them.

JSON has no NaN or infinity: in ``data`` they are the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``,
both ways (numpy, and so ``tritonclient``'s ``as_numpy``, reads them back as the floats).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from math import prod
from typing import Any

import numpy as np
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match

#: The protocol's datatype names, by numpy dtype name (text tensors are numpy object arrays of str).
DATATYPES = {
    "float32": "FP32",
    "float64": "FP64",
    "float16": "FP16",
    "uint8": "UINT8",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "bool": "BOOL",
    "object": "BYTES",
}
NUMPY_TYPES = {name: dtype for dtype, name in DATATYPES.items()}
HEADER_LENGTH = "inference-header-content-length"
NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
#: The most characters of a value an error message quotes.
QUOTED = 80

#: What a request's JSON must look like; the model's own names, shapes and datatypes are checked after it.
REQUEST_SCHEMA = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object", "properties": {"binary_data_output": {"type": "boolean"}}},
        "inputs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "shape", "datatype"],
                "properties": {
                    "name": {"type": "string"},
                    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                    "datatype": {"type": "string"},
                    "parameters": {
                        "type": "object",
                        "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
                    },
                    "data": {"type": "array"},
                },
            },
        },
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "parameters": {"type": "object", "properties": {"binary_data": {"type": "boolean"}}},
                },
            },
        },
    },
}


class ProtocolError(Exception):
    """A request the server refuses: ``status`` (400, 404, 408, 413, 431) and a message for the JSON error body.

    ``close``: the connection is closed after the answer (the request was not read to its end)."""

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of the model as the protocol describes it: name, datatype, shape (-1: any size)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def metadata(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    def accepts(self, datatype: str) -> bool:
        """FP64 is taken where the model wants FP32 (and cast), as clients often hold float64 arrays."""
        return datatype == self.datatype or (self.datatype, datatype) == ("FP32", "FP64")


@dataclass
class InferRequest:
    id: str | None
    #: each input's values, shaped as the request says, in the request's datatype (str objects for BYTES)
    inputs: dict[str, np.ndarray]
    outputs: list[str] | None
    binary_outputs: set[str]


def parse_request(
    body: bytes, header_length: str | None, *, inputs: Sequence[TensorSpec], output_names: Sequence[str], max_batch: int
) -> InferRequest:
    """The request's tensors, checked against the model's ``inputs`` (every one, once, with one batch size)."""
    json_part, binary = _split(body, header_length)
    request = _json(json_part)
    _follows_schema(request)
    _names_match([tensor["name"] for tensor in request["inputs"]], [spec.name for spec in inputs])
    specs = {spec.name: spec for spec in inputs}
    arrays, offset = {}, 0
    for tensor in request["inputs"]:
        spec = specs[tensor["name"]]
        _check_tensor(tensor, spec, max_batch)
        arrays[spec.name], offset = _values(tensor, binary, offset)
    if offset != len(binary):
        raise ProtocolError(
            400,
            f"the body has {len(binary) - offset} bytes after the JSON that no input's "
            "parameters.binary_data_size accounts for",
        )
    batches = {name: len(array) for name, array in arrays.items()}
    if len(set(batches.values())) > 1:
        raise ProtocolError(400, f"the inputs have different batch sizes ({batches}); give every input the same N")
    return InferRequest(
        request.get("id"), arrays, _requested(request, output_names), _binary_outputs(request, output_names)
    )


def encode_response(
    model_name: str, request_id: str | None, outputs: dict[str, np.ndarray], binary_outputs: set[str]
) -> tuple[bytes, dict[str, str]]:
    """The response body and its extra headers: strict JSON, then the binary outputs' bytes in order."""
    tensors, blobs = [], []
    for name, array in outputs.items():
        tensor: dict[str, object] = {"name": name, "datatype": DATATYPES[array.dtype.name], "shape": list(array.shape)}
        if name in binary_outputs:
            blob = _bytes_blob(array) if array.dtype == object else np.ascontiguousarray(array).tobytes()
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = _json_values(array)
        tensors.append(tensor)
    response = {"model_name": model_name, "outputs": tensors}
    if request_id is not None:
        response["id"] = request_id
    head = json.dumps(response, allow_nan=False).encode()
    if not blobs:
        return head, {"content-type": "application/json"}
    return head + b"".join(blobs), {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(head))}


def quoted(value: object) -> str:
    """``repr(value)``, cut to ``QUOTED`` characters: an error never echoes a whole request."""
    text = repr(value)
    return text if len(text) <= QUOTED else text[: QUOTED - 1] + "…"


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not re.fullmatch("[0-9]{1,12}", header_length) or int(header_length) > len(body):
        raise ProtocolError(
            400,
            f"Inference-Header-Content-Length {quoted(header_length)} is not the length of "
            f"the JSON at the start of the body ({len(body)} bytes); give its length in bytes",
        )
    return body[: int(header_length)], body[int(header_length) :]


def _json(text: bytes) -> Any:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise ProtocolError(400, f"the request body is not JSON ({error})") from None
    except RecursionError:
        raise ProtocolError(
            400,
            "the request's JSON nests too deeply to read; a request is an object of "
            "tensors, nested no deeper than their shapes",
        ) from None


@cache
def _validator():
    return Draft7Validator(REQUEST_SCHEMA)


def _follows_schema(request: object) -> None:
    error = best_match(_validator().iter_errors(request))
    if error is None:
        return
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
    if error.validator == "required":
        problem = error.message.replace(" is a required property", " is missing")
    elif error.validator == "type":
        problem = f"{quoted(error.instance)} is not {_a(error.validator_value)}"
    else:
        problem = error.message if len(error.message) <= 2 * QUOTED else f"{quoted(error.instance)} is out of range"
    raise ProtocolError(
        400,
        f'request{where}: {problem}; a request is {{"inputs": [{{"name", "shape", '
        f'"datatype", "data"}}, ...]}} (the Open Inference Protocol)',
    )


def _a(json_type: str) -> str:
    return {"array": "a list", "object": "an object", "integer": "an integer"}.get(json_type, f"a {json_type}")


def _names_match(names: list[str], expected: list[str]) -> None:
    if sorted(names) == sorted(expected):
        return
    wants = (
        f"the model's input is {expected[0]!r}"
        if len(expected) == 1
        else f"the model takes {len(expected)} inputs, one per name: {', '.join(map(repr, expected))}"
    )
    unknown = [name for name in names if name not in expected]
    twice = sorted({name for name in names if names.count(name) > 1})
    missing = [name for name in expected if name not in names]
    if unknown:
        found = f"not {', '.join(quoted(name) for name in unknown[:5])}"
    elif twice:
        found = f"the request gives {', '.join(map(repr, twice))} more than once"
    else:
        found = f"the request lacks {', '.join(map(repr, missing[:10]))}{' ...' if len(missing) > 10 else ''}"
    raise ProtocolError(400, f"{wants}; {found}")


def _check_tensor(tensor: dict, spec: TensorSpec, max_batch: int) -> None:
    shape = tensor["shape"]
    if (
        len(shape) != len(spec.shape)
        or not shape[0]
        or any(want != -1 and got != want for got, want in zip(shape, spec.shape))
    ):
        wanted = ", ".join("N" if d == -1 else str(d) for d in spec.shape)
        raise ProtocolError(
            400, f"input {spec.name!r} has shape {quoted(shape)}; the model takes [{wanted}] with N >= 1"
        )
    if shape[0] > max_batch:
        raise ProtocolError(413, f"a batch of {shape[0]} is more than this server's --max-batch {max_batch}")
    if not spec.accepts(tensor["datatype"]):
        takes = "FP32 (or FP64)" if spec.datatype == "FP32" else spec.datatype
        raise ProtocolError(
            400, f"input {spec.name!r} has datatype {quoted(tensor['datatype'])}; the model takes {takes}"
        )


def _values(tensor: dict, binary: bytes, offset: int) -> tuple[np.ndarray, int]:
    """The tensor's values shaped as it says, and where the next input's binary data starts."""
    name, shape, datatype = tensor["name"], tensor["shape"], tensor["datatype"]
    size = prod(shape)
    parameters = tensor.get("parameters", {})
    if "binary_data_size" in parameters:
        end = offset + parameters["binary_data_size"]
        if end > len(binary):
            raise ProtocolError(
                400,
                f"input {name!r} has binary_data_size {parameters['binary_data_size']}, more "
                f"than the {len(binary) - offset} bytes left after the JSON",
            )
        blob = binary[offset:end]
        values = _bytes_elements(blob, name) if datatype == "BYTES" else _binary_numbers(blob, datatype, size, name)
        offset = end
    elif "data" in tensor:
        values = _json_elements(tensor["data"], datatype, name)
    else:
        raise ProtocolError(400, f'input {name!r} has neither "data" nor parameters.binary_data_size')
    if values.size != size:
        raise ProtocolError(400, f"input {name!r} holds {values.size} values; its shape {shape} says {size}")
    return values.reshape(shape), offset


def _binary_numbers(blob: bytes, datatype: str, size: int, name: str) -> np.ndarray:
    dtype = np.dtype(NUMPY_TYPES[datatype])
    if len(blob) != dtype.itemsize * size:
        raise ProtocolError(
            400,
            f"input {name!r}: binary data of {len(blob)} bytes does not hold the {size} "
            f"{datatype} values the shape says",
        )
    return np.frombuffer(blob, dtype=dtype)


def _bytes_elements(blob: bytes, name: str) -> np.ndarray:
    """A BYTES tensor's binary form (4-byte little-endian length, then the bytes, per element) as text."""
    elements, offset = [], 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise ProtocolError(400, f"input {name!r}: the BYTES data ends inside an element's 4-byte length")
        (length,) = struct.unpack_from("<I", blob, offset)
        offset += 4 + length
        if offset > len(blob):
            raise ProtocolError(400, f"input {name!r}: a BYTES element of {length} bytes runs past the data")
        elements.append(_text(blob[offset - length : offset], name))
    array = np.empty(len(elements), dtype=object)
    array[:] = elements
    return array


def _text(element: bytes, name: str) -> str:
    try:
        return element.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(400, f"input {name!r}: a BYTES element is not UTF-8 text") from None


def _json_elements(data: list, datatype: str, name: str) -> np.ndarray:
    """JSON ``data``, flat or nested as the shape: numbers (or the strings of NaN and infinity), or text."""
    try:
        if datatype == "BYTES":
            array = np.asarray(data, dtype=object).reshape(-1)
            if not all(isinstance(element, str) for element in array):
                raise ValueError
            return array
        return np.asarray(data, dtype=NUMPY_TYPES[datatype]).reshape(-1)
    except (ValueError, TypeError, OverflowError, RecursionError):
        kind = "strings" if datatype == "BYTES" else f"{datatype} numbers"
        raise ProtocolError(400, f'input {name!r}: "data" must be {kind}, flat or nested as the shape') from None


def _json_values(array: np.ndarray) -> list:
    """The array's values, flat, with NaN and infinity as strings (JSON has neither)."""
    flat = array.reshape(-1)
    values = flat.tolist()
    if flat.dtype.kind == "f":
        for index in np.flatnonzero(~np.isfinite(flat)):
            values[index] = NON_FINITE[str(flat[index])]
    return values


def _bytes_blob(array: np.ndarray) -> bytes:
    parts = []
    for element in array.reshape(-1):
        data = element if isinstance(element, bytes) else str(element).encode()
        parts += [struct.pack("<I", len(data)), data]
    return b"".join(parts)


def _requested(request: dict, output_names: Sequence[str]) -> list[str] | None:
    if "outputs" not in request:
        return None
    names = [output["name"] for output in request["outputs"]]
    unknown = [name for name in names if name not in output_names]
    if unknown:
        raise ProtocolError(
            400,
            f"unknown output {', '.join(quoted(name) for name in unknown[:5])}; the model "
            f"has {', '.join(map(repr, output_names))}",
        )
    return names


def _binary_outputs(request: dict, output_names: Sequence[str]) -> set[str]:
    everything = request.get("parameters", {}).get("binary_data_output") is True
    chosen = {
        output["name"]
        for output in request.get("outputs", ())
        if output.get("parameters", {}).get("binary_data") is True
    }
    return set(output_names) if everything and not request.get("outputs") else chosen
