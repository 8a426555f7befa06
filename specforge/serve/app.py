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
``{"error": "..."}`` with 400 (bad input), 404 (no such model or path), 405, 408 (the request did not arrive
in time), 413 (body, batch or image too large) or 431 (headers too large); an unexpected error while
answering is a 500 with a JSON body too, and one line in the log (``guard.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

import specforge
from specforge.base.errors import DataError
from specforge.data.image_decode import ImageTooLarge, decode_image
from specforge.predict.table import is_table_model
from specforge.serve.guard import RequestGuard
from specforge.serve.interface import ServedModel
from specforge.serve.limits import Limits
from specforge.serve.protocol import HEADER_LENGTH, ProtocolError, encode_response, parse_request

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request

    from specforge.predict.images import OnnxPredictor

VERSION = "1"
#: A one-channel image brighter than this on average is dark on light and inverted (as ``predict`` does).
INVERT_ABOVE = 127


def create_app(model: OnnxPredictor, name: str, limits: Limits | None = None) -> Starlette:
    """The application serving ``model`` as ``name``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    limits = limits or Limits()
    served = ServedModel(model)

    def checked(request: Request) -> None:
        if request.path_params["name"] != name:
            raise ProtocolError(404, f"no model {request.path_params['name']!r}; this server has {name!r}")
        if request.path_params.get("version", VERSION) != VERSION:
            raise ProtocolError(404, f"model {name!r} has version {VERSION} only")

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        return JSONResponse({"ready": True})

    async def server_metadata(request: Request) -> Response:
        return JSONResponse(
            {"name": "specforge", "version": specforge.__version__, "extensions": ["binary_tensor_data"]}
        )

    async def model_metadata(request: Request) -> Response:
        checked(request)
        return JSONResponse(
            {
                "name": name,
                "versions": [VERSION],
                "platform": "onnxruntime_onnx",
                "inputs": [spec.metadata() for spec in served.inputs],
                "outputs": [spec.metadata() for spec in served.outputs],
                "parameters": {"class_names": model.class_names, **_task(model)},
            }
        )

    async def model_ready(request: Request) -> Response:
        checked(request)
        return JSONResponse({"name": name, "ready": True})

    async def infer(request: Request) -> Response:
        checked(request)
        parsed = parse_request(
            await request.body(),
            request.headers.get(HEADER_LENGTH),
            inputs=served.inputs,
            output_names=served.output_names,
            max_batch=limits.max_batch,
        )
        wanted = parsed.outputs or served.output_names
        results = await run_in_threadpool(served.run, wanted, parsed.inputs)
        content, headers = encode_response(name, parsed.id, dict(zip(wanted, results)), parsed.binary_outputs)
        return Response(content, headers=headers)

    async def classify(request: Request) -> Response:
        checked(request)
        image = await _upload(request, await request.body())
        pixels, inverted = await run_in_threadpool(_decode, image, model)
        probabilities = (await run_in_threadpool(model.run, pixels[None]))[0]
        order = np.argsort(-probabilities, kind="stable")
        return JSONResponse(
            {
                "model_name": name,
                "inverted": inverted,
                "classes": [
                    {"class": int(c), "name": model.class_name(int(c)), "probability": float(probabilities[c])}
                    for c in order
                ],
            }
        )

    async def refused(request: Request, error: ProtocolError) -> Response:
        return JSONResponse({"error": error.message}, status_code=error.status)

    async def http_error(request: Request, error: HTTPException) -> Response:
        return JSONResponse({"error": error.detail}, status_code=error.status_code, headers=error.headers)

    model_paths = ("/v2/models/{name}", "/v2/models/{name}/versions/{version}")
    routes = [Route("/v2/health/live", live), Route("/v2/health/ready", ready), Route("/v2", server_metadata)]
    for prefix in model_paths:
        routes += [
            Route(prefix, model_metadata),
            Route(f"{prefix}/ready", model_ready),
            Route(f"{prefix}/infer", infer, methods=["POST"]),
            Route(f"{prefix}/classify", classify, methods=["POST"]),
        ]
    # Starlette types a handler as taking any exception, though it calls each with its own class only.
    handlers = {ProtocolError: refused, HTTPException: http_error}
    return Starlette(routes=routes, middleware=[Middleware(RequestGuard, limits=limits)], exception_handlers=handlers)  # type: ignore[arg-type]


def _task(model: OnnxPredictor) -> dict:
    """A table model's task (``classification`` or ``regression``); its class names are the target columns
    of a regression."""
    return {"task": model.metadata["task"]} if "task" in model.metadata else {}


async def _upload(request: Request, data: bytes) -> bytes:
    """The image bytes: the body itself, or a multipart form's ``file`` field."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        if not data:
            raise ProtocolError(
                400, "the request has no image; send PNG or JPEG bytes as the body, or a multipart form field 'file'"
            )
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
    from PIL import Image

    shape = model.input_shape
    if is_table_model(model.metadata):
        raise ProtocolError(
            400, "this model takes table rows (one [N, 1] tensor per column), not images; send them to /infer"
        )
    if model.takes_documents:
        raise ProtocolError(
            400, "this model takes text, not images; send the documents to /infer as a BYTES tensor of shape [N]"
        )
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise ProtocolError(400, f"this model takes [N, {', '.join(map(str, shape))}], not images; use /infer")
    try:
        pixels = decode_image(image, shape, "upload")
    except ImageTooLarge:
        raise ProtocolError(
            413,
            f"the image has more than {Image.MAX_IMAGE_PIXELS:,} pixels, more than this "
            f"server decodes; send it resized (the model takes {shape[1]}x{shape[0]})",
        ) from None
    except DataError:
        raise ProtocolError(400, "the upload is not an image this server can read; send PNG or JPEG") from None
    inverted = bool(shape[-1] == 1 and pixels.mean() > INVERT_ABOVE)
    return (255 - pixels if inverted else pixels), inverted


__all__ = ["create_app"]
