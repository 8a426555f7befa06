"""``specforge serve`` on a table model (both reference table specs, trained briefly on a slice): one tensor per
column, FP32/FP64 numbers and BYTES categories, called with tritonclient (JSON and binary tensors) and
answering what ``specforge predict MODEL rows.csv`` answers for the same rows; the README's served request
run as written; a table request that does not fit the model gets a 4xx JSON error."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from serve.test_server import request as call
from specforge import api
from specforge.predict.table import predict_rows
from specforge.serve.process import start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]
#: rows taken from the spec's file; the second has its first feature missing, the third every category missing
ROWS = 4


def features(name: str) -> list[tuple[str, bool]]:
    """``(column, is_text)`` of each feature of the reference spec ``name``, from the spec itself."""
    spec = yaml.safe_load((ROOT / "specs" / f"{name}.yaml").read_text())
    return [(f["column"], f.get("type", "numeric") != "numeric") for f in spec["data"]["features"]]


def serve_trained(name: str, root: Path):
    run = api.fit(
        ROOT / "specs" / f"{name}.yaml", overrides=["fit.epochs=2"], out=root / "run", quiet=True, limit_train=200
    )
    api.export(run)
    with open(ROOT / "specs" / "data" / f"{name}.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [next(reader) for _ in range(ROWS)]
    first = features(name)[0][0]
    rows[1][first] = ""
    for column, is_text in features(name):
        rows[2][column] = "" if is_text else rows[2][column]
    with open(root / "rows.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    process, url = start_server(run.path)
    return process, url, run.path / "model.onnx", root / "rows.csv", rows


@pytest.fixture(scope="module")
def breast_cancer(tmp_path_factory):
    process, *served = serve_trained("breast_cancer", tmp_path_factory.mktemp("breast_cancer"))
    yield served
    stop_server(process)


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    process, *served = serve_trained("diabetes", tmp_path_factory.mktemp("diabetes"))
    yield served
    stop_server(process)


def name_of(spec: str) -> str:
    return spec.replace("_", "-")


@pytest.mark.parametrize("spec", ["breast_cancer", "diabetes"])
def test_metadata_lists_one_input_per_column_with_protocol_datatypes(request, spec):
    url, *_ = request.getfixturevalue(spec)
    status, metadata = call("GET", f"{url}/v2/models/{name_of(spec)}")
    assert status == 200
    assert metadata["inputs"] == [
        {"name": column, "datatype": "BYTES" if is_text else "FP32", "shape": [-1, 1]}
        for column, is_text in features(spec)
    ]
    output = "predictions" if spec == "diabetes" else "probabilities"
    assert metadata["outputs"] == [{"name": output, "datatype": "FP32", "shape": [-1, 1 if spec == "diabetes" else 2]}]
    assert metadata["parameters"]["task"] == ("regression" if spec == "diabetes" else "classification")


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("numbers", ["FP32", "FP64"])
@pytest.mark.parametrize("spec", ["breast_cancer", "diabetes"])
def test_triton_client_gets_what_predict_gives_for_the_same_rows(request, spec, numbers, binary):
    import tritonclient.http as http

    url, model, rows_file, rows = request.getfixturevalue(spec)
    client = http.InferenceServerClient(url.removeprefix("http://"), connection_timeout=30, network_timeout=30)
    try:
        tensors = []
        for column, is_text in features(spec):
            values = (
                np.array([[row[column]] for row in rows], dtype=object)
                if is_text
                else np.array(
                    [[float(row[column]) if row[column] else np.nan] for row in rows],
                    dtype=np.float32 if numbers == "FP32" else np.float64,
                )
            )
            tensor = http.InferInput(column, [ROWS, 1], "BYTES" if is_text else numbers)
            tensor.set_data_from_numpy(values, binary_data=binary)
            tensors.append(tensor)
        output = "predictions" if spec == "diabetes" else "probabilities"
        result = client.infer(name_of(spec), tensors, outputs=[http.InferRequestedOutput(output, binary_data=binary)])
        served = result.as_numpy(output)
    finally:
        client.close()
    expected = predict_rows(model, rows_file).outputs
    assert served.shape == expected.shape == (ROWS, expected.shape[1]) and np.isfinite(served).all()
    np.testing.assert_allclose(served, expected, rtol=1e-6, atol=1e-6)


def test_bad_table_requests_get_json_errors(diabetes):
    url, *_ = diabetes
    infer = f"{url}/v2/models/diabetes/infer"
    columns = features("diabetes")

    def tensors(rows: int = 1, **changes: dict) -> list[dict]:
        return [
            {
                "name": column,
                "shape": [rows, 1],
                "datatype": "BYTES" if is_text else "FP32",
                "data": ["1"] * rows if is_text else [1.0] * rows,
                **changes.get(column, {}),
            }
            for column, is_text in columns
        ]

    def body(inputs: list[dict]) -> bytes:
        return json.dumps({"inputs": inputs}).encode()

    bad = {
        "only the first column": (body(tensors()[:1]), "the model takes 10 inputs, one per name: 'age', 'sex'"),
        "a column missing": (body(tensors()[:-1]), "the request lacks 's6'"),
        "an unknown column": (body([*tensors()[:-1], {**tensors()[-1], "name": "s7"}]), "not 's7'"),
        "text for a number": (
            body(tensors(age={"datatype": "BYTES", "data": ["59"]})),
            "input 'age' has datatype 'BYTES'; the model takes FP32 (or FP64)",
        ),
        "a number for a category": (
            body(tensors(sex={"datatype": "FP32", "data": [2.0]})),
            "input 'sex' has datatype 'FP32'; the model takes BYTES",
        ),
        "a category that is not text": (body(tensors(sex={"data": [2]})), "'sex': \"data\" must be strings"),
        "a column as a flat shape": (body(tensors(bmi={"shape": [1]})), "'bmi' has shape [1]; the model takes [N, 1]"),
        "two batch sizes": (body(tensors(age={"shape": [2, 1], "data": [1.0, 2.0]})), "different batch sizes"),
    }
    for what, (payload, message) in bad.items():
        status, answer = call("POST", infer, payload, {"Content-Type": "application/json"})
        assert (status, list(answer)) == (400, ["error"]), what
        assert message in answer["error"], (what, answer)
    status, answer = call("POST", f"{url}/v2/models/diabetes/classify", b"\x89PNG")
    assert status == 400 and "takes table rows" in answer["error"]
    status, answer = call("POST", infer, body(tensors(2, bmi={"data": ["Infinity", "-Infinity"], "shape": [2, 1]})))
    assert status == 200 and sorted(answer["outputs"][0]["data"]) == ["-Infinity", "Infinity"]


def test_the_readmes_served_request_runs_as_written(diabetes):
    """The Tables section's curl request, sent as written to the served diabetes model, answers what its comment
    shows (with this brief run's number) and what predict answers for the same row."""
    url, model, _, _ = diabetes
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Tables\n") : text.index("\n## Text\n")]
    (block,) = re.findall(r"```sh\n(specforge serve .*?)```", section, re.DOTALL)
    served, path, payload, shown = re.fullmatch(
        r"specforge serve (\S+) &\ncurl -s http://127\.0\.0\.1:8000(\S+) -H 'Content-Type: application/json' "
        r"-d '(.*?)'\n# (.*)\n",
        block,
        re.DOTALL,
    ).groups()
    assert served == "runs/diabetes/latest"
    status, answer = call("POST", url + path, payload.encode(), {"Content-Type": "application/json"})
    shown = json.loads(shown)
    assert status == 200 and answer.keys() == shown.keys()
    assert [{**output, "data": None} for output in answer["outputs"]] == [
        {**output, "data": None} for output in shown["outputs"]
    ]
    row = {tensor["name"]: tensor["data"][0] for tensor in json.loads(payload)["inputs"]}
    rows = model.parent.parent / "readme_row.csv"
    rows.write_text(",".join(row) + "\n" + ",".join(map(str, row.values())) + "\n")
    assert answer["outputs"][0]["data"] == pytest.approx(predict_rows(model, rows).outputs[0].tolist(), rel=1e-6)
