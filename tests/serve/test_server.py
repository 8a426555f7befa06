"""``specforge serve``: a real server process on 127.0.0.1, called by Triton's own HTTP client (tritonclient)
and by plain HTTP requests; bad requests get 4xx JSON errors and the server keeps answering; SIGTERM lets
a request in flight finish."""

from __future__ import annotations

import io
import json
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from needs import require
from specforge.data import load_dataset
from specforge.predict.session import make_session
from specforge.serve.process import start_server, stop_server

NAME = "mnist-cnn"
MAX_BATCH = 8
MAX_BYTES = 100_000
def request(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    """Status and JSON body of one request (4xx and 5xx included)."""
    call = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(call, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        assert error.headers["content-type"] == "application/json"
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    test = load_dataset({"source": "mnist"}, (28, 28, 1), validation="none", base_dir=Path(".")).test
    return np.asarray(test.images[:4]).reshape(4, 28, 28, 1), np.asarray(test.labels[:4])


@pytest.fixture(scope="module")
def server(seed_run):
    require(_importable("uvicorn") and _importable("starlette"), "the serve extra (pip install 'specforge[serve]')")
    process, url = start_server(seed_run, "--max-batch", str(MAX_BATCH), "--max-request-mb", str(MAX_BYTES / 2 ** 20))
    yield url
    stop_server(process)


@pytest.fixture(scope="module")
def client(server):
    require(_importable("tritonclient.http"), "tritonclient (pip install 'tritonclient[http]')")
    import tritonclient.http as http

    client = http.InferenceServerClient(server.removeprefix("http://"), connection_timeout=30, network_timeout=30)
    yield client
    client.close()


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def infer_body(pixels: np.ndarray, **changes) -> bytes:
    tensor = {"name": "input", "shape": list(pixels.shape), "datatype": "FP32",
              "data": pixels.astype(np.float32).reshape(-1).tolist(), **changes}
    return json.dumps({"inputs": [tensor]}).encode()


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.reshape(28, 28).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_triton_client_reads_7_2_1_0(client, digits, seed_run, binary):
    import tritonclient.http as http

    pixels, labels = digits
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(NAME)
    metadata = client.get_model_metadata(NAME)
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 28, 28, 1]}]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]
    assert client.get_server_metadata()["name"] == "specforge"
    tensor = http.InferInput("input", list(pixels.shape), "FP32")
    tensor.set_data_from_numpy(pixels.astype(np.float32), binary_data=binary)
    result = client.infer(NAME, [tensor], outputs=[http.InferRequestedOutput("probabilities", binary_data=binary)],
                          request_id="four")
    probabilities = result.as_numpy("probabilities")
    assert list(probabilities.argmax(axis=1)) == [7, 2, 1, 0] == list(labels)
    assert result.get_response()["id"] == "four"
    expected = make_session(seed_run / "model.onnx").run(None, {"input": pixels.astype(np.float32)})[0]
    np.testing.assert_allclose(probabilities, expected, rtol=1e-6, atol=1e-7)


def test_image_upload_returns_every_class_with_its_probability(server, digits):
    pixels, _ = digits
    status, body = request("POST", f"{server}/v2/models/{NAME}/classify", png(pixels[0]))
    assert status == 200 and body["model_name"] == NAME and body["inverted"] is False
    classes = body["classes"]
    assert [c["class"] for c in classes][:1] == [7] and sorted(c["class"] for c in classes) == list(range(10))
    assert [c["probability"] for c in classes] == sorted((c["probability"] for c in classes), reverse=True)
    assert sum(c["probability"] for c in classes) == pytest.approx(1, abs=1e-5)

    boundary = "specforge-test"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"two.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png(255 - pixels[1]) + f"\r\n--{boundary}--\r\n".encode()
    status, body = request("POST", f"{server}/v2/models/{NAME}/classify", form,
                           {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200 and body["inverted"] is True and body["classes"][0]["class"] == 2


def test_bad_requests_get_json_errors_and_the_server_keeps_serving(server, digits):
    pixels, _ = digits
    infer = f"{server}/v2/models/{NAME}/infer"
    json_type = {"Content-Type": "application/json"}
    bad = {
        "bad JSON": ("POST", infer, b'{"inputs": [', 400, "not JSON"),
        "no inputs": ("POST", infer, b'{"outputs": []}', 400, '"inputs"'),
        "wrong shape": ("POST", infer, infer_body(pixels[:, :27, :, :]), 400, "has shape [4, 27, 28, 1]"),
        "wrong datatype": ("POST", infer, infer_body(pixels, datatype="INT64"), 400, "datatype 'INT64'"),
        "wrong input name": ("POST", infer, infer_body(pixels, name="x"), 400, "not 'x'"),
        "too few values": ("POST", infer, infer_body(pixels, data=[0.0] * 10), 400, "holds 10 values"),
        "not numbers": ("POST", infer, infer_body(pixels[:1], data=["a"] * 784), 400, "must be numbers"),
        "unknown output": ("POST", infer, json.dumps({**json.loads(infer_body(pixels)), "outputs": [{"name": "z"}]})
                           .encode(), 400, "unknown outputs ['z']"),
        "batch too large": ("POST", infer, infer_body(np.zeros((MAX_BATCH + 1, 28, 28, 1)), data=[0] * 784 * 9),
                            413, f"--max-batch {MAX_BATCH}"),
        "body too large": ("POST", infer, b" " * (MAX_BYTES + 1), 413, "at most 100,000"),
        "unknown model": ("POST", f"{server}/v2/models/other/infer", infer_body(pixels), 404, "no model 'other'"),
        "unknown version": ("GET", f"{server}/v2/models/{NAME}/versions/2", None, 404, "version 1 only"),
        "not an image": ("POST", f"{server}/v2/models/{NAME}/classify", b"GIF89a not really", 400, "not an image"),
        "empty upload": ("POST", f"{server}/v2/models/{NAME}/classify", b"", 400, "no image"),
        "wrong method": ("GET", infer, None, 405, "Method Not Allowed"),
        "unknown path": ("GET", f"{server}/v3", None, 404, "Not Found"),
    }
    for what, (method, url, body, status, message) in bad.items():
        got, answer = request(method, url, body, json_type if body else None)
        assert (got, list(answer)) == (status, ["error"]), what
        assert message in answer["error"], (what, answer)
        good, result = request("POST", infer, infer_body(pixels[:1]), json_type)
        assert good == 200 and np.argmax(result["outputs"][0]["data"]) == 7, what


def test_sigterm_lets_the_request_in_flight_finish(seed_run, digits):
    require(_importable("uvicorn") and _importable("starlette"), "the serve extra (pip install 'specforge[serve]')")
    pixels, _ = digits
    process, url = start_server(seed_run)
    try:
        port = int(url.rsplit(":", 1)[1])
        body = infer_body(pixels[:1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            connection.sendall(f"POST /v2/models/{NAME}/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                               f"application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[:100])
            time.sleep(1)
            process.send_signal(signal.SIGTERM)
            time.sleep(1)
            assert process.poll() is None, "the server stopped with a request in flight"
            connection.sendall(body[100:])
            response = b""
            while chunk := connection.recv(65536):
                response += chunk
        head, _, payload = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert np.argmax(json.loads(payload)["outputs"][0]["data"]) == 7
        assert process.wait(30) in (0, -signal.SIGTERM)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        stop_server(process)


def test_serve_refuses_a_run_without_an_exported_model(tmp_path):
    from typer.testing import CliRunner

    from specforge.cli.commands import app

    result = CliRunner().invoke(app, ["serve", str(tmp_path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == f"{tmp_path}: error: the run has no model.onnx; export it first: specforge export {tmp_path}\n"


def test_serve_refuses_a_port_in_use(seed_run):
    from typer.testing import CliRunner

    from specforge.cli.commands import app

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", str(seed_run), "--port", str(port)])
    assert result.exit_code == 2
    assert result.stderr == (f"127.0.0.1:{port}: error: cannot listen here (Address already in use); choose another "
                             "--port or --host\n")
