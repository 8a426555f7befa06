"""A table's text columns in its export: each a raw-string input ``[N, 1]`` vectorized inside the graph by the text
export's nodes, in every output_mode (token ids as the model's one input or as a model input of their own beside
the other columns' input; multi_hot, count and tf_idf beside the other columns' encodings), under the parity gate
on raw rows; ``predict`` on the exported file from CSV, JSON lines and Parquet rows; ``serve`` taking the column
as a BYTES tensor."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import yaml
from serve.test_server import request as call

from specforge import api
from specforge.data import Preprocessing
from specforge.data.feed import make_feed
from specforge.data.table.read import MISSING, read_table
from specforge.export.table import pipeline_inputs
from specforge.predict.table import numpy_outputs, predict_rows, rows_feed
from specforge.runs.directory import open_run
from specforge.serve.process import start_server, stop_server

WORDS = ["win", "cash", "Prize", "now!", "lunch", "see", "you", "at", "noon", "free", "call", "café", "soon"]
CITIES = ["paris", "rome", "oslo"]
HEADER = ["label", "message", "words", "city", "note"]


def rows(count: int, seed: int) -> list[list[str]]:
    """Messages of the pool's words (capitals, punctuation, a non-ASCII letter, tabs and double spaces between
    them), a word count, a city and a second text column; spam when a message has more of the first five words."""
    rng = np.random.default_rng(seed)
    out = []
    for index in range(count):
        chosen = [WORDS[i] for i in rng.integers(0, len(WORDS), int(rng.integers(1, 9)))]
        spam = sum(word in WORDS[:5] for word in chosen) * 2 > len(chosen)
        message = ("\t" if index % 5 == 0 else "  " if index % 3 == 0 else " ").join(chosen)
        out.append(["spam" if spam else "ham", message, str(len(chosen)), CITIES[index % 3], f"note {index % 4} ok"])
    return out


#: Test rows a reader takes as missing (empty documents), out-of-vocabulary words, punctuation alone.
ODD = [
    ["ham", "", "0", "rome", ""],
    ["ham", "NA", "1", "oslo", "?"],
    ["spam", "unicorn ZEBRA!!", "2", "lima", "null"],
    ["ham", "...", "1", "paris", "note 9"],
]


def write_csv(path: Path, table: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(table)
    return path


DENSE_OUT = {"type": "Dense", "units": 2, "activation": "softmax"}
IDS = {"column": "message", "type": "text", "vectorize": {"output_sequence_length": 6}}
EMBEDDED = [
    {"type": "Embedding", "name": "embedded", "input_dim": 40, "output_dim": 4, "inputs": "text"},
    {"type": "GlobalAveragePooling1D", "name": "pooled"},
]


def write_spec(root: Path, features: list[dict], model: dict, inputs: dict | None = None) -> Path:
    write_csv(root / "train.csv", rows(80, 0))
    write_csv(root / "test.csv", ODD + rows(20, 1))
    data = {"source": "table", "train": "train.csv", "test": "test.csv", "features": features}
    spec = {
        "version": 1,
        "name": "text-table",
        "data": {**data, "target": {"column": "label"}, **({"inputs": inputs} if inputs else {})},
        "model": model,
        "compile": {"optimizer": "adam", "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
        "fit": {"epochs": 2, "batch_size": 16, "seed": 0},
    }
    path = root / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def bag_spec(root: Path, mode: str) -> Path:
    """The message in ``mode`` (word pairs too for tf_idf) beside a number, a category and a second text column
    (count), all in the model's one input."""
    vectorize = {"output_mode": mode, **({"ngrams": 2} if mode == "tf_idf" else {})}
    features = [
        {"column": "message", "type": "text", "vectorize": vectorize},
        {"column": "words"},
        {"column": "city", "type": "categorical"},
        {"column": "note", "type": "text", "vectorize": {"output_mode": "count"}},
    ]
    model = {"layers": [{"type": "Dense", "units": 8, "activation": "relu"}, DENSE_OUT]}
    return write_spec(root, features, model)


def ids_spec(root: Path) -> Path:
    """The message's token ids as the model's one input."""
    layers = [{key: value for key, value in layer.items() if key != "inputs"} for layer in EMBEDDED]
    return write_spec(root, [IDS], {"layers": [*layers, DENSE_OUT]})


def two_inputs_spec(root: Path) -> Path:
    """The message's token ids as a model input of their own, the other columns another."""
    model = {
        "inputs": {"text": {"shape": [6]}, "table": {"shape": [5]}},
        "layers": [
            *EMBEDDED,
            {"type": "Dense", "name": "table_branch", "units": 4, "activation": "relu", "inputs": "table"},
            {"type": "Concatenate", "inputs": ["pooled", "table_branch"]},
            DENSE_OUT,
        ],
    }
    features = [IDS, {"column": "words"}, {"column": "city", "type": "categorical"}]
    return write_spec(root, features, model, {"text": ["message"], "table": ["words", "city"]})


def trained(root: Path, spec: Path):
    run = api.fit(spec, out=root / "run", quiet=True)
    return run, api.export(run)


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def agrees_with_numpy(run_path: Path, model: Path) -> None:
    """onnxruntime on the test file's raw rows (missing and unseen text included) gives the numpy pipeline's
    outputs, and a missing-value text given to the graph itself reads as the empty document."""
    run = open_run(run_path)
    pipeline = Preprocessing.from_dict(run.preprocessing).pipeline
    table = read_table(run_path.parent / "test.csv", "test")
    expected = numpy_outputs(run.graph, run.weights(), pipeline, table, make_feed(run.config["data"], pipeline))
    got = session(model).run(None, rows_feed(table, pipeline_inputs(pipeline)))[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    feed = rows_feed(table.take(np.array([0] * len(MISSING))), pipeline_inputs(pipeline))
    feed["message"] = np.array([[marker] for marker in sorted(MISSING)], dtype=object)
    outputs = session(model).run(None, feed)[0]
    np.testing.assert_allclose(outputs, np.repeat(expected[:1], len(MISSING), axis=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["multi_hot", "count", "tf_idf"])
def test_a_bag_of_words_column_is_a_string_input_encoded_beside_the_other_columns(tmp_path, mode):
    run, result = trained(tmp_path, bag_spec(tmp_path, mode))
    assert result.parity.passed and result.parity.classes_agree == result.parity.examples
    inputs = {item.name: (item.type, item.shape) for item in session(result.path).get_inputs()}
    assert inputs == {
        "message": ("tensor(string)", ["N", 1]),
        "words": ("tensor(float)", ["N", 1]),
        "city": ("tensor(string)", ["N", 1]),
        "note": ("tensor(string)", ["N", 1]),
    }
    agrees_with_numpy(run.path, result.path)


def test_a_column_of_token_ids_as_the_only_input_takes_raw_strings(tmp_path):
    run, result = trained(tmp_path, ids_spec(tmp_path))
    assert result.parity.passed
    (text,) = session(result.path).get_inputs()
    assert (text.name, text.type, text.shape) == ("message", "tensor(string)", ["N", 1])
    agrees_with_numpy(run.path, result.path)


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("two_inputs")
    run, result = trained(root, two_inputs_spec(root))
    return root, run, result


def test_token_ids_feed_their_own_input_as_int64_beside_float_values(two_inputs):
    root, run, _ = two_inputs
    dataset = api.load_data(api.load_spec(root / "spec.yaml"))
    pipeline = dataset.preprocessing.pipeline
    assert dataset.train.images.dtype == np.float64 and dataset.preprocessing.input_dtype == "float64"
    ids, values = make_feed(run.config["data"], pipeline).split(dataset.train.images[:4])
    assert ids.dtype == np.int64 and ids.shape == (4, 6) and values.dtype == np.float32 and values.shape == (4, 5)
    table = dataset.train.table.take(np.arange(4))
    np.testing.assert_array_equal(ids, pipeline.features[0].encode(table))
    np.testing.assert_array_equal(
        values, np.concatenate([feature.encode(table) for feature in pipeline.features[1:]], 1)
    )


def test_the_export_vectorizes_the_text_input_in_the_graph(two_inputs):
    _, run, result = two_inputs
    assert result.parity.passed and result.parity.classes_agree == result.parity.examples
    inputs = {item.name: (item.type, item.shape) for item in session(result.path).get_inputs()}
    assert inputs == {
        "message": ("tensor(string)", ["N", 1]),
        "words": ("tensor(float)", ["N", 1]),
        "city": ("tensor(string)", ["N", 1]),
    }
    agrees_with_numpy(run.path, result.path)


def test_predict_reads_csv_json_lines_and_parquet_rows_as_the_run_directory_does(two_inputs):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root, run, result = two_inputs
    records = [dict(zip(HEADER, row)) for row in ODD + rows(20, 1)]
    for record in records:
        record["words"] = float(record["words"])
    (root / "rows.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(records), root / "rows.parquet")
    from_run = api.predict_rows(run.path, root / "test.csv").outputs
    for name in ("test.csv", "rows.jsonl", "rows.parquet"):
        got = api.predict_rows(result.path, root / name).outputs
        np.testing.assert_allclose(got, from_run, rtol=1e-4, atol=1e-5, err_msg=name)


def test_serve_takes_the_text_column_as_a_bytes_tensor(two_inputs):
    root, run, result = two_inputs
    process, url = start_server(run.path)
    try:
        status, metadata = call("GET", f"{url}/v2/models/text-table")
        assert status == 200
        assert metadata["inputs"] == [
            {"name": "message", "datatype": "BYTES", "shape": [-1, 1]},
            {"name": "words", "datatype": "FP32", "shape": [-1, 1]},
            {"name": "city", "datatype": "BYTES", "shape": [-1, 1]},
        ]
        chosen = ODD + rows(2, 1)
        body = {
            "inputs": [
                {"name": "message", "shape": [len(chosen), 1], "datatype": "BYTES", "data": [r[1] for r in chosen]},
                {"name": "words", "shape": [len(chosen), 1], "datatype": "FP32", "data": [float(r[2]) for r in chosen]},
                {"name": "city", "shape": [len(chosen), 1], "datatype": "BYTES", "data": [r[3] for r in chosen]},
            ]
        }
        status, answer = call(
            "POST", f"{url}/v2/models/text-table/infer", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
    finally:
        stop_server(process)
    assert status == 200, answer
    (output,) = answer["outputs"]
    expected = predict_rows(result.path, write_csv(root / "served.csv", chosen)).outputs
    np.testing.assert_allclose(np.reshape(output["data"], output["shape"]), expected, rtol=1e-6, atol=1e-6)


def test_a_column_feeding_two_text_features_is_one_input_vectorized_twice(tmp_path):
    features = [
        {"column": "message", "type": "text", "vectorize": {"output_mode": "multi_hot"}},
        {"column": "message", "type": "text", "vectorize": {"output_mode": "tf_idf", "ngrams": 2}},
    ]
    model = {"layers": [{"type": "Dense", "units": 4, "activation": "relu"}, DENSE_OUT]}
    run, result = trained(tmp_path, write_spec(tmp_path, features, model))
    assert result.parity.passed
    assert [item.name for item in session(result.path).get_inputs()] == ["message"]
    agrees_with_numpy(run.path, result.path)
