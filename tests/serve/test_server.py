"""``specforge serve``: a real server process on 127.0.0.1, called by Triton's own HTTP client (tritonclient)
and by plain HTTP requests; bad requests (malformed, hostile, too large, too slow) get 4xx JSON errors and the
server keeps answering; an error inside inference is a JSON 500 and one log line; SIGTERM lets a request in
flight finish."""

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
from needs import require
from PIL import Image

from specforge.data import load_dataset
from specforge.predict.session import make_session
from specforge.serve.process import start_server, stop_server

NAME = "mnist-cnn"
MAX_BATCH = 8
MAX_BYTES = 250_000
READ_TIMEOUT = 3


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
    process, url = start_server(
        seed_run,
        "--max-batch",
        str(MAX_BATCH),
        "--max-request-mb",
        str(MAX_BYTES / 2**20),
        "--read-timeout",
        str(READ_TIMEOUT),
    )
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
    tensor = {
        "name": "input",
        "shape": list(pixels.shape),
        "datatype": "FP32",
        "data": pixels.astype(np.float32).reshape(-1).tolist(),
        **changes,
    }
    return json.dumps({"inputs": [tensor]}).encode()


def png(pixels: np.ndarray) -> bytes:
    return encoded(Image.fromarray(pixels.reshape(28, 28).astype(np.uint8)))


def encoded(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def with_request(pixels: np.ndarray, **changes) -> bytes:
    """An infer request for ``pixels`` with top-level keys changed."""
    return json.dumps({**json.loads(infer_body(pixels)), **changes}).encode()


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
    result = client.infer(
        NAME, [tensor], outputs=[http.InferRequestedOutput("probabilities", binary_data=binary)], request_id="four"
    )
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
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="two.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + png(255 - pixels[1])
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, body = request(
        "POST",
        f"{server}/v2/models/{NAME}/classify",
        form,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert status == 200 and body["inverted"] is True and body["classes"][0]["class"] == 2


def test_bad_requests_get_json_errors_and_the_server_keeps_serving(server, digits):
    pixels, _ = digits
    infer = f"{server}/v2/models/{NAME}/infer"
    classify = f"{server}/v2/models/{NAME}/classify"
    json_type = {"Content-Type": "application/json"}
    bad = {
        "bad JSON": ("POST", infer, b'{"inputs": [', 400, "not JSON"),
        "no inputs": ("POST", infer, b'{"outputs": []}', 400, "request: 'inputs' is missing"),
        "wrong shape": ("POST", infer, infer_body(pixels[:, :27, :, :]), 400, "has shape [4, 27, 28, 1]"),
        "wrong datatype": ("POST", infer, infer_body(pixels, datatype="INT64"), 400, "datatype 'INT64'"),
        "wrong input name": ("POST", infer, infer_body(pixels, name="x"), 400, "not 'x'"),
        "too few values": ("POST", infer, infer_body(pixels, data=[0.0] * 10), 400, "holds 10 values"),
        "not numbers": ("POST", infer, infer_body(pixels[:1], data=["a"] * 784), 400, "must be FP32 numbers"),
        "unknown output": ("POST", infer, with_request(pixels, outputs=[{"name": "z"}]), 400, "unknown output 'z'"),
        "JSON nested 100,000 deep": ("POST", infer, b"[" * 100_000 + b"]" * 100_000, 400, "nests too deeply"),
        "data nested 900 deep": (
            "POST",
            infer,
            b'{"inputs": [{"name": "input", "shape": [1, 28, 28, 1], "datatype": '
            b'"FP32", "data": ' + b"[" * 900 + b"]" * 900 + b"}]}",
            400,
            "nested as the shape",
        ),
        "outputs not a list": ("POST", infer, with_request(pixels, outputs=5), 400, "request.outputs: 5 is not a list"),
        "an output not an object": (
            "POST",
            infer,
            with_request(pixels, outputs=[5]),
            400,
            "request.outputs[0]: 5 is not an object",
        ),
        "inputs not a list": ("POST", infer, b'{"inputs": {"name": "input"}}', 400, "request.inputs: {'name'"),
        "a boolean in the shape": (
            "POST",
            infer,
            infer_body(pixels, shape=[True, 28, 28, 1]),
            400,
            "request.inputs[0].shape[0]: True is not an integer",
        ),
        "a negative binary size": (
            "POST",
            infer,
            infer_body(pixels, parameters={"binary_data_size": -1}),
            400,
            "binary_data_size: -1 is less than the minimum of 0",
        ),
        "an id that is not text": ("POST", infer, with_request(pixels, id=[1]), 400, "request.id: [1] is not a string"),
        "no data": (
            "POST",
            infer,
            json.dumps({"inputs": [{"name": "input", "shape": [1, 28, 28, 1], "datatype": "FP32"}]}).encode(),
            400,
            'neither "data"',
        ),
        "the same input twice": (
            "POST",
            infer,
            with_request(pixels, inputs=[json.loads(infer_body(pixels))["inputs"][0]] * 2),
            400,
            "gives 'input' more than once",
        ),
        "a header length of \u00b2": (
            "POST",
            infer,
            infer_body(pixels),
            400,
            "Inference-Header-Content-Length '\u00b2'",
            {"Inference-Header-Content-Length": "\u00b2"},
        ),
        "a header length past the body": (
            "POST",
            infer,
            infer_body(pixels),
            400,
            "is not the length of the JSON",
            {"Inference-Header-Content-Length": str(10**9)},
        ),
        "binary data the sizes do not cover": (
            "POST",
            infer,
            infer_body(pixels) + b"\0" * 8,
            400,
            "8 bytes after the JSON",
            {"Inference-Header-Content-Length": str(len(infer_body(pixels)))},
        ),
        "a 20000x20000 PNG": (
            "POST",
            classify,
            encoded(Image.new("1", (20_000, 20_000))),
            413,
            "more than this server decodes",
        ),
        "a 12000x12000 PNG": (
            "POST",
            classify,
            encoded(Image.new("1", (12_000, 12_000))),
            413,
            "more than this server decodes",
        ),
        "batch too large": (
            "POST",
            infer,
            infer_body(np.zeros((MAX_BATCH + 1, 28, 28, 1)), data=[0] * 784 * 9),
            413,
            f"--max-batch {MAX_BATCH}",
        ),
        "body too large": ("POST", infer, b" " * (MAX_BYTES + 1), 413, "at most 250,000"),
        "unknown model": ("POST", f"{server}/v2/models/other/infer", infer_body(pixels), 404, "no model 'other'"),
        "unknown version": ("GET", f"{server}/v2/models/{NAME}/versions/2", None, 404, "version 1 only"),
        "not an image": ("POST", classify, b"GIF89a not really", 400, "not an image"),
        "empty upload": ("POST", classify, b"", 400, "no image"),
        "wrong method": ("GET", infer, None, 405, "Method Not Allowed"),
        "unknown path": ("GET", f"{server}/v3", None, 404, "Not Found"),
    }
    for what, (method, url, body, status, message, *headers) in bad.items():
        got, answer = request(method, url, body, {**(json_type if body else {}), **(headers[0] if headers else {})})
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
            connection.sendall(
                f"POST /v2/models/{NAME}/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                f"application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body[:100]
            )
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
    assert result.stderr == (
        f"{tmp_path}: error: the run has no model.onnx; export it first: specforge export {tmp_path}\n"
    )


def test_serve_refuses_a_port_in_use(seed_run):
    from typer.testing import CliRunner

    from specforge.cli.commands import app

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", str(seed_run), "--port", str(port)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"127.0.0.1:{port}: error: cannot listen here (Address already in use); choose another --port or --host\n"
    )


def strict_json(payload: bytes) -> object:
    """JSON as a strict parser reads it: bare NaN or Infinity is an error."""

    def refuse(constant: str) -> None:
        raise ValueError(f"bare {constant} is not JSON")

    return json.loads(payload, parse_constant=refuse)


def test_nan_and_infinity_are_strings_in_json_outputs():
    from specforge.serve.protocol import encode_response

    values = np.array([[np.nan, np.inf], [-np.inf, 0.25]], dtype=np.float32)
    body, headers = encode_response("m", None, {"out": values}, set())
    assert headers == {"content-type": "application/json"}
    (tensor,) = strict_json(body)["outputs"]
    assert tensor["data"] == ["NaN", "Infinity", "-Infinity", 0.25]
    np.testing.assert_array_equal(np.array(tensor["data"], dtype=np.float32).reshape(tensor["shape"]), values)


def test_a_model_that_gives_nan_answers_strict_json(server, client, digits):
    import tritonclient.http as http

    pixels = digits[0][:1].astype(np.float32)
    pixels[0, 0, 0, 0] = np.nan
    status, payload = raw_exchange(
        server, "POST", f"/v2/models/{NAME}/infer", infer_body(pixels).replace(b"NaN", b'"NaN"')
    )
    assert status == 200
    data = strict_json(payload)["outputs"][0]["data"]
    assert data == ["NaN"] * 10
    tensor = http.InferInput("input", list(pixels.shape), "FP32")
    tensor.set_data_from_numpy(pixels, binary_data=True)
    result = client.infer(NAME, [tensor], outputs=[http.InferRequestedOutput("probabilities", binary_data=False)])
    assert np.isnan(result.as_numpy("probabilities")).all()


def raw_exchange(url: str, method: str, path: str, body: bytes = b"", headers: str = "") -> tuple[int, bytes]:
    """Status and body of one request sent over a fresh socket, read until the server closes it or the response
    is complete."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n{headers}"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        return parse_response(read_all(connection))


def read_all(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def parse_response(response: bytes) -> tuple[int, bytes]:
    head, _, payload = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload


def test_an_error_inside_inference_is_a_json_500_and_one_log_line(tmp_path):
    """A model that fails at run time (a Reshape that four values cannot fill) for a well-formed request."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Reshape", ["input", "shape"], ["probabilities"])],
        "broken",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [3, None])],
        [helper.make_tensor("shape", TensorProto.INT64, [2], [3, -1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "broken.onnx")
    process, url = start_server(tmp_path / "broken.onnx")
    try:
        body = json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]})
        status, answer = request("POST", f"{url}/v2/models/broken/infer", body.encode())
        assert status == 500 and list(answer) == ["error"]
        assert answer["error"].startswith("unexpected error while answering: ") and "Reshape" in answer["error"]
        assert request("GET", f"{url}/v2/health/ready") == (200, {"ready": True})
        process.terminate()
        log = process.communicate(timeout=30)[0]
    finally:
        stop_server(process)
    lines = [line for line in log.splitlines() if "Reshape" in line]
    assert len(lines) == 1 and "POST /v2/models/broken/infer: Fail: " in lines[0] and " (at " in lines[0], log
    assert " (at " not in answer["error"]
    assert "Traceback" not in log


def test_a_body_that_never_finishes_gets_408_and_the_connection_closes(server):
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(
            f"POST /v2/models/{NAME}/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n"
            '{"inputs": '.encode()
        )
        status, payload = parse_response(read_all(connection))
    assert status == 408
    assert json.loads(payload) == {
        "error": f"the request's body did not arrive within {READ_TIMEOUT} s (11 bytes came); send it whole, promptly"
    }


def test_headers_that_never_finish_get_408_and_the_connection_closes(server):
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(f"POST /v2/models/{NAME}/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
        status, payload = parse_response(read_all(connection))
    assert status == 408 and "headers did not arrive within 3 s" in json.loads(payload)["error"]


def test_a_connection_that_sends_nothing_is_closed(server):
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        assert read_all(connection) == b""


@pytest.mark.parametrize("size", [20_000, 100_000])
def test_headers_over_the_bound_get_431(server, size):
    status, payload = raw_exchange(server, "GET", "/v2/health/ready", headers=f"X-Padding: {'a' * size}\r\n")
    assert status == 431 and "at most 16,384" in json.loads(payload)["error"]


def test_a_body_over_the_limit_is_read_so_the_client_sees_413_and_keeps_its_connection(server, digits):
    import http.client

    port = int(server.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", f"/v2/models/{NAME}/infer", body=b" " * (4 * MAX_BYTES))
        response = connection.getresponse()
        assert response.status == 413 and response.getheader("connection") is None
        assert json.loads(response.read())["error"] == (
            f"the request has {4 * MAX_BYTES:,} bytes; this server takes at most {MAX_BYTES:,} (--max-request-mb)"
        )
        first = connection.sock
        connection.request("POST", f"/v2/models/{NAME}/infer", body=infer_body(digits[0][:1]))
        response = connection.getresponse()
        assert response.status == 200 and connection.sock is first
        assert np.argmax(json.loads(response.read())["outputs"][0]["data"]) == 7
    finally:
        connection.close()


def test_a_body_past_the_drain_bound_gets_413_and_the_connection_closes(server):
    """Chunked, so the server cannot know the size in advance: it reads 8 times the limit, then answers."""
    from specforge.serve.guard import DRAIN_FACTOR

    port = int(server.rsplit(":", 1)[1])
    size = DRAIN_FACTOR * MAX_BYTES + 1
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(
            f"POST /v2/models/{NAME}/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked"
            f"\r\n\r\n{size:x}\r\n".encode()
            + b" " * size
        )
        status, payload = parse_response(read_all(connection))
    assert status == 413 and "more than 250,000 bytes" in json.loads(payload)["error"]


@pytest.mark.parametrize("expect", ["", "Expect: 100-continue\r\n"], ids=["past the drain bound", "100-continue"])
def test_a_declared_size_refused_at_once_is_answered_without_reading_the_body(server, expect):
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(
            f"POST /v2/models/{NAME}/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
            f"{10**9 if not expect else MAX_BYTES + 1}\r\n{expect}\r\n".encode()
        )
        status, payload = parse_response(read_all(connection))
    assert status == 413 and "this server takes at most 250,000" in json.loads(payload)["error"]


@pytest.mark.parametrize(
    "head",
    ["HELLO\r\n\r\n", (f"POST /v2/models/{NAME}/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \u00b2\r\n\r\n")],
    ids=["not a request line", "a Content-Length of \u00b2"],
)
def test_what_http_cannot_parse_gets_a_json_400(server, head):
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head.encode("latin-1"))
        status, payload = parse_response(read_all(connection))
    assert status == 400 and "not valid HTTP/1.1" in json.loads(payload)["error"]
