"""The ASGI application: the Open Inference Protocol's REST endpoints for one model, and an image upload.

=================================================  ==============================================================
``GET  /v2/health/live``, ``/v2/health/ready``    ``{"live": true}`` / ``{"ready": true}``
``GET  /v2``                                      server metadata: name, version, extensions
``GET  /v2/models/{name}``                        model metadata: platform, inputs and outputs with datatypes
``GET  /v2/models/{name}/ready``                  ``{"name": ..., "ready": true}``
``POST /v2/models/{name}/infer``                  tensors in, tensors out (JSON, or Triton's binary extension)
``POST /v2/models/{name}/classify``               an image (raw body or multipart ``file``) -> classes, best first
=================================================  ==============================================================

The same paths under ``/v2/models/{name}/versions/1`` answer too.  Every refused request gets a JSON body
``{"error": "..."}`` with 400 (bad input), 404 (no such model or path), 405 or 413 (body or batch too large).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

import specforge
from specforge.base.errors import DataError
from specforge.data.folders import decode_image
from specforge.serve.protocol import (
    DATATYPES,
    HEADER_LENGTH,
    ProtocolError,
    encode_response,
    parse_request,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request

    from specforge.predict.images import OnnxPredictor

VERSION = "1"
#: A one-channel image brighter than this on average is dark on light and inverted (as ``predict`` does).
INVERT_ABOVE = 127


@dataclass
class Limits:
    """What one request may hold."""

    max_body_bytes: int = 8 * 1024 * 1024
    max_batch: int = 256


def create_app(model: OnnxPredictor, name: str, limits: Limits | None = None) -> Starlette:
    """The application serving ``model`` as ``name``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    limits = limits or Limits()
    outputs = [output.name for output in model.session.get_outputs()]

    def checked(request: Request) -> None:
        if request.path_params["name"] != name:
            raise ProtocolError(404, f"no model {request.path_params['name']!r}; this server has {name!r}")
        if request.path_params.get("version", VERSION) != VERSION:
            raise ProtocolError(404, f"model {name!r} has version {VERSION} only")

    async def body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise ProtocolError(413, f"the request has {int(declared):,} bytes; this server takes at most "
                                     f"{limits.max_body_bytes:,}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise ProtocolError(413, f"the request has more than {limits.max_body_bytes:,} bytes, this "
                                         "server's limit")
            chunks.append(chunk)
        return b"".join(chunks)

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        return JSONResponse({"ready": True})

    async def server_metadata(request: Request) -> Response:
        return JSONResponse({"name": "specforge", "version": specforge.__version__, "extensions": ["binary_tensor_data"]})

    async def model_metadata(request: Request) -> Response:
        checked(request)
        return JSONResponse({
            "name": name, "versions": [VERSION], "platform": "onnxruntime_onnx",
            "inputs": [_tensor_metadata(tensor) for tensor in model.session.get_inputs()],
            "outputs": [_tensor_metadata(tensor) for tensor in model.session.get_outputs()],
            "parameters": {"class_names": model.class_names}})

    async def model_ready(request: Request) -> Response:
        checked(request)
        return JSONResponse({"name": name, "ready": True})

    async def infer(request: Request) -> Response:
        checked(request)
        parsed = parse_request(await body(request), request.headers.get(HEADER_LENGTH), input_name=model.input_name,
                               input_shape=model.input_shape, output_names=outputs, max_batch=limits.max_batch)
        wanted = parsed.outputs or outputs
        results = await run_in_threadpool(model.session.run, wanted, parsed.inputs)
        content, headers = encode_response(name, parsed.id, dict(zip(wanted, results)), parsed.binary_outputs)
        return Response(content, headers=headers)

    async def classify(request: Request) -> Response:
        checked(request)
        image = await _upload(request, await body(request))
        pixels, inverted = await run_in_threadpool(_decode, image, model)
        probabilities = (await run_in_threadpool(model.run, pixels[None]))[0]
        order = np.argsort(-probabilities, kind="stable")
        return JSONResponse({"model_name": name, "inverted": inverted, "classes": [
            {"class": int(c), "name": model.class_name(int(c)), "probability": float(probabilities[c])}
            for c in order]})

    async def refused(request: Request, error: ProtocolError) -> Response:
        return JSONResponse({"error": error.message}, status_code=error.status)

    async def http_error(request: Request, error: HTTPException) -> Response:
        return JSONResponse({"error": error.detail}, status_code=error.status_code, headers=error.headers)

    model_paths = ("/v2/models/{name}", "/v2/models/{name}/versions/{version}")
    routes = [Route("/v2/health/live", live), Route("/v2/health/ready", ready), Route("/v2", server_metadata)]
    for prefix in model_paths:
        routes += [Route(prefix, model_metadata), Route(f"{prefix}/ready", model_ready),
                   Route(f"{prefix}/infer", infer, methods=["POST"]),
                   Route(f"{prefix}/classify", classify, methods=["POST"])]
    return Starlette(routes=routes, exception_handlers={ProtocolError: refused, HTTPException: http_error})


def _tensor_metadata(tensor) -> dict:
    """onnxruntime's ``tensor(float)`` as the protocol's ``FP32``, and its symbolic dimensions as -1."""
    element = tensor.type.removeprefix("tensor(").removesuffix(")")
    datatype = DATATYPES.get({"float": "float32", "double": "float64"}.get(element, element), element)
    return {"name": tensor.name, "datatype": datatype,
            "shape": [d if isinstance(d, int) else -1 for d in tensor.shape]}


async def _upload(request: Request, data: bytes) -> bytes:
    """The image bytes: the body itself, or a multipart form's ``file`` field."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        if not data:
            raise ProtocolError(400, "the request has no image; send PNG or JPEG bytes as the body, or a "
                                     "multipart form field 'file'")
        return data
    from starlette.datastructures import UploadFile
    from starlette.requests import Request as Replayed

    async def receive() -> dict:
        return {"type": "http.request", "body": data, "more_body": False}

    try:
        form = await Replayed(request.scope, receive).form()
    except Exception as error:  # python-multipart raises several types for malformed forms
        raise ProtocolError(400, f"cannot read the multipart form ({error})") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ProtocolError(400, "the multipart form has no file field 'file'; send the image as 'file'")
    return await upload.read()


def _decode(image: bytes, model: OnnxPredictor) -> tuple[np.ndarray, bool]:
    shape = model.input_shape
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise ProtocolError(400, f"this model takes [N, {', '.join(map(str, shape))}], not images; use /infer")
    try:
        pixels = decode_image(image, shape, "upload")
    except DataError:
        raise ProtocolError(400, "the upload is not an image this server can read; send PNG or JPEG") from None
    inverted = bool(shape[-1] == 1 and pixels.mean() > INVERT_ABOVE)
    return (255 - pixels if inverted else pixels), inverted


__all__ = ["Limits", "create_app"]
