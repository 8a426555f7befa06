"""Serving a model with uvicorn: which file a path names, the model's name, and a graceful stop.

uvicorn stops on SIGTERM or SIGINT: it stops accepting connections, lets the requests in flight finish
(up to ``GRACE_SECONDS``), closes the connections, and then ends the process by the signal it received, as
a service manager expects.  Its connections are uvicorn's HTTP/1.1 (h11) ones with a bound on the headers and
a deadline for them (``connection.py``).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from specforge.base.errors import DataError
from specforge.predict.session import OnnxPredictor
from specforge.serve.app import create_app
from specforge.serve.connection import bounded_protocol
from specforge.serve.limits import Limits

GRACE_SECONDS = 30
MODEL_FILE = "model.onnx"


def model_file(path: str | Path) -> Path:
    """The ONNX file ``path`` names: the file itself, or a run directory's exported ``model.onnx``."""
    path = Path(path)
    if path.is_dir():
        if not (path / MODEL_FILE).is_file():
            raise DataError(f"the run has no {MODEL_FILE}; export it first: specforge export {path}", file=str(path))
        return path / MODEL_FILE
    if not path.is_file():
        raise DataError(
            "no such file or run directory; give an .onnx file or a run exported with specforge export", file=str(path)
        )
    return path


def check_address(host: str, port: int) -> None:
    """A one-line error now, rather than uvicorn's log lines later, when ``host:port`` cannot be listened on."""
    try:
        with socket.create_server((host, port), reuse_port=False) as probe:
            probe.getsockname()
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise DataError(
            f"cannot listen here ({reason}); choose another --port or --host", file=f"{host}:{port}"
        ) from None


def serve(
    path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    name: str | None = None,
    limits: Limits | None = None,
    threads: int | None = None,
) -> None:
    """Serve the model at ``path`` (file or run) until SIGTERM/SIGINT."""
    try:
        import uvicorn
    except ImportError:
        raise DataError("specforge serve needs its server stack: pip install 'specforge[serve]'") from None
    import onnxruntime

    # onnxruntime would log a failing run itself, over several lines; the server logs it as one line
    onnxruntime.set_default_logger_severity(4)
    model = OnnxPredictor(model_file(path), threads)
    check_address(host, port)
    name = name or model.metadata.get("spec_name") or model.path.stem
    print(f"serving {name} ({model.path}) on http://{host}:{port}/v2/models/{name}", flush=True)
    limits = limits or Limits()
    config = uvicorn.Config(
        create_app(model, name, limits),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACE_SECONDS,
        http=bounded_protocol(limits),
        h11_max_incomplete_event_size=limits.max_header_bytes,
    )
    uvicorn.Server(config).run()
