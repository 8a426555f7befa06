"""``specforge serve`` on a text model: a real server on 127.0.0.1 takes raw documents as a BYTES tensor of shape
[N] (JSON and binary, from tritonclient) and answers what the run's numpy model, with its saved vocabulary,
answers for them; a request that is not text gets a 4xx JSON error."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from text_corpus import trained_run

from serve.test_server import request as call
from specforge import api
from specforge.predict.run_model import RunPredictor
from specforge.serve.process import start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ["Stir the SUGAR, then bake!", "the referee's whistle... GOAL", "Ünïcode\tand the oven", "x"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    run = trained_run(
        tmp_path_factory.mktemp("text"), vectorize={"output_sequence_length": 16, "ngrams": 2, "max_tokens": 32}
    )
    api.export(run)
    process, url = start_server(run.path)
    yield url, run.path
    stop_server(process)


def test_metadata_describes_one_bytes_tensor_of_documents(served):
    url, _ = served
    status, metadata = call("GET", f"{url}/v2/models/bag")
    assert status == 200
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_triton_client_gets_what_the_runs_numpy_model_gives(served, binary):
    import tritonclient.http as http

    url, run = served
    client = http.InferenceServerClient(url.removeprefix("http://"), connection_timeout=30, network_timeout=30)
    try:
        tensor = http.InferInput("text", [len(DOCUMENTS)], "BYTES")
        tensor.set_data_from_numpy(np.array(DOCUMENTS, dtype=object), binary_data=binary)
        result = client.infer("bag", [tensor], outputs=[http.InferRequestedOutput("probabilities", binary_data=binary)])
        probabilities = result.as_numpy("probabilities")
    finally:
        client.close()
    expected = RunPredictor(run).run(np.array(DOCUMENTS, dtype=object))
    assert probabilities.shape == (len(DOCUMENTS), 2)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-4, atol=1e-5)


def test_requests_that_are_not_documents_get_json_errors(served):
    url, _ = served
    infer = f"{url}/v2/models/bag/infer"

    def sent(tensor: dict) -> tuple[int, dict]:
        return call("POST", infer, json.dumps({"inputs": [tensor]}).encode(), {"Content-Type": "application/json"})

    status, answer = sent({"name": "text", "shape": [1], "datatype": "FP32", "data": [1.0]})
    assert status == 400 and "input 'text' has datatype 'FP32'; the model takes BYTES" in answer["error"]
    status, answer = sent({"name": "text", "shape": [1], "datatype": "BYTES", "data": [3]})
    assert status == 400 and '"data" must be strings' in answer["error"]
    status, answer = sent({"name": "text", "shape": [1, 1], "datatype": "BYTES", "data": ["a"]})
    assert status == 400 and "has shape [1, 1]; the model takes [N]" in answer["error"]
    header = json.dumps(
        {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 6}}]}
    ).encode()
    status, answer = call(
        "POST",
        infer,
        header + struct.pack("<I", 2) + b"\xff\xfe",
        {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))},
    )
    assert status == 400 and "is not UTF-8 text" in answer["error"]
    status, answer = call("POST", f"{url}/v2/models/bag/classify", b"\x89PNG")
    assert status == 400 and "takes text" in answer["error"]


def test_the_readmes_served_request_runs_as_written(served):
    """The exported text model section's curl request, sent as written, answers what the numpy model answers."""
    url, run = served
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("\n### An exported text model\n") : text.index("\n## Pictures\n")]
    (block,) = re.findall(r"```sh\n(specforge serve .*?)```", section, re.DOTALL)
    served_run, path, payload = re.fullmatch(
        r"specforge serve (\S+) &\ncurl -s http://127\.0\.0\.1:8000(\S+) -H 'Content-Type: application/json' \\\n"
        r"  -d '(.*?)'\n",
        block,
        re.DOTALL,
    ).groups()
    assert served_run == "runs/bag/latest"
    status, answer = call("POST", url + path, payload.encode(), {"Content-Type": "application/json"})
    assert status == 200
    (output,) = answer["outputs"]
    documents = np.array(json.loads(payload)["inputs"][0]["data"], dtype=object)
    expected = RunPredictor(run).run(documents)
    assert output["shape"] == [2, 2]
    np.testing.assert_allclose(np.array(output["data"]).reshape(2, 2), expected, rtol=1e-4, atol=1e-5)
