"""A table model's export: raw rows in (one named input per column), the preprocessing and the target's units
inside the graph, parity with the numpy pipeline, and ``specforge predict MODEL rows.csv``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import yaml
from typer.testing import CliRunner

from specforge import api
from specforge.cli.commands import app
from specforge.data import Preprocessing
from specforge.data.table.read import MISSING, read_table
from specforge.export.table import pipeline_inputs
from specforge.graph.model import Model
from specforge.predict.table import numpy_outputs, rows_feed

HEADER = "age,city,smoker,income,note,label,price,weight"
CITIES = ["paris", "rome", "oslo", "lima"]


def rows(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(count):
        age = "" if i % 11 == 3 else f"{rng.uniform(18, 80):.1f}"
        city = "" if i % 13 == 5 else CITIES[i % 4]
        smoker = "" if i % 17 == 2 else ("yes" if rng.random() < 0.3 else "no")
        income = "" if i % 7 == 1 else f"{rng.uniform(0, 9000):.0f}"
        price = float(age or 40) * 2 + (CITIES.index(city) if city else 0) * 5 + rng.normal()
        label = "high" if price > 100 else "low"
        lines.append(f"{age},{city},{smoker},{income},free text {i},{label},{price:.3f},{price / 2 + 1:.3f}")
    return lines


FEATURES = [
    {"column": "age"},
    {"column": "city", "type": "categorical"},
    {"column": "smoker", "type": "binary"},
    {"column": "income", "fill": "median", "scale": "log"},
    {"column": "age", "fill": "constant", "fill_value": -5, "scale": "minmax"},
]
WIDTH = 1 + 5 + 1 + 1 + 1


def write_spec(tmp_path: Path, target: dict, loss: str, units: int, activation: str, metrics: list) -> Path:
    (tmp_path / "train.csv").write_text("\n".join([HEADER, *rows(300, 0)]) + "\n")
    (tmp_path / "test.csv").write_text("\n".join([HEADER, *rows(60, 1)]) + "\n")
    spec = {
        "version": 1,
        "name": "table",
        "data": {"source": "table", "train": "train.csv", "test": "test.csv", "features": FEATURES, "target": target},
        "model": {
            "input_shape": [WIDTH],
            "layers": [
                {"type": "Dense", "units": 8, "activation": "tanh"},
                {"type": "Dense", "units": units, "activation": activation},
            ],
        },
        "compile": {"optimizer": "adam", "loss": loss, "metrics": metrics},
        "fit": {"epochs": 2, "batch_size": 32, "seed": 1},
    }
    path = tmp_path / "table.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    root = tmp_path_factory.mktemp("regression")
    spec = write_spec(
        root,
        {"column": ["price", "weight"], "type": "numeric", "standardize": True},
        "mean_squared_error",
        2,
        "linear",
        ["mae", "rmse", "r2"],
    )
    run = api.fit(spec, out=root / "run", quiet=True)
    return root, run, api.export(run)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    root = tmp_path_factory.mktemp("classifier")
    spec = write_spec(root, {"column": "label"}, "categorical_crossentropy", 2, "softmax", ["accuracy"])
    run = api.fit(spec, out=root / "run", quiet=True)
    return root, run, api.export(run)


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_the_exported_model_takes_one_named_input_per_feature_column(regression):
    _, _, result = regression
    model = onnx.load(str(result.path))
    inputs = [
        (i.name, i.type.tensor_type.elem_type, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
        for i in model.graph.input
    ]
    assert inputs == [
        ("age", onnx.TensorProto.FLOAT, ["N", 1]),
        ("city", onnx.TensorProto.STRING, ["N", 1]),
        ("smoker", onnx.TensorProto.STRING, ["N", 1]),
        ("income", onnx.TensorProto.FLOAT, ["N", 1]),
    ]
    assert [o.name for o in model.graph.output] == ["predictions"]
    assert {"LabelEncoder", "IsNaN", "Where", "Log", "Concat"} <= {node.op_type for node in model.graph.node}
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["task"] == "regression" and json.loads(meta["class_names"]) == ["price", "weight"]
    assert json.loads(meta["inputs"])[1] == {"name": "city", "type": "string"}
    assert result.parity.passed and result.parity.examples == 256
    assert result.parity.data == "table test[0:60] + train[0:196]"
    assert "classes agree" not in result.parity.summary()


def test_onnxruntime_on_raw_rows_equals_the_numpy_pipeline_with_unseen_and_missing_values(regression, tmp_path):
    _root, run, result = regression
    rows_file = tmp_path / "rows.csv"
    rows_file.write_text(
        "price,smoker,income,extra,age,city\n"
        "0,yes,100,x,30,paris\n"
        "0,maybe,,x,,tokyo\n"  # an unseen smoker value and city, missing income and age
        "0,,5000,x,70,\n"
    )  # missing smoker and city take the training's most frequent
    table = read_table(rows_file, "rows")
    pipeline = Preprocessing.from_dict(run.preprocessing).pipeline
    expected = numpy_outputs(run.graph, run.weights(), pipeline, table)
    got = session(result.path).run(["predictions"], rows_feed(table, pipeline_inputs(pipeline)))[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
    encoded = pipeline.encode(table)
    assert encoded[1, 1:6].tolist() == [0, 0, 0, 0, 0]  # tokyo, never seen in training: no column
    assert encoded[2, 1:6].tolist() == encoded[0, 1:6].tolist() == [0, 0, 1, 0, 0]  # paris, the most frequent
    # predictions are in the target's units: about 2 * age + 5 * city index after training
    assert np.all(np.abs(got[:, 0]) < 1000)


def test_a_missing_cell_means_the_same_in_python_and_in_the_graph_and_an_unseen_category_adds_nothing(
    regression, tmp_path
):
    _, run, result = regression
    pipeline = Preprocessing.from_dict(run.preprocessing).pipeline
    markers = sorted(MISSING)
    cities = [*markers, "paris", "tokyo"]  # every missing-value text, the most frequent city (the fill), unseen
    rows_file = tmp_path / "rows.csv"
    rows_file.write_text("age,city,smoker,income\n" + "".join(f"30,{city},NA,100\n" for city in cities))
    expected = numpy_outputs(run.graph, run.weights(), pipeline, read_table(rows_file, "rows"))
    count = len(cities)
    feed = {
        "age": np.full((count, 1), 30, np.float32),
        "income": np.full((count, 1), 100, np.float32),
        "city": np.array([[city] for city in cities], dtype=object),
        "smoker": np.array([["NA"]] * count, dtype=object),
    }  # the raw texts, as Node or a browser send them
    got = session(result.path).run(["predictions"], feed)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(got[: len(markers)], np.repeat(got[[len(markers)]], len(markers), axis=0))
    # tokyo: the network's input with no city column set, whatever the out-of-vocabulary weights hold
    x = pipeline.encode(read_table(rows_file, "rows"))[[len(markers)]]
    x[:, 1:6] = 0
    unseen = pipeline.target.decode(Model(run.graph, run.weights()).forward(x))
    np.testing.assert_allclose(got[[-1]], unseen, rtol=1e-4, atol=1e-3)
    assert not np.allclose(got[-1], got[-2], atol=1e-2)  # the city matters to this model


def test_the_classifier_exports_probabilities(classifier):
    _, _, result = classifier
    model = onnx.load(str(result.path))
    assert [o.name for o in model.graph.output] == ["probabilities"]
    assert result.parity.passed and result.parity.classes_agree == result.parity.examples


def invoke(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def test_predict_reads_raw_rows_and_prints_numbers(regression, tmp_path):
    root, _, result = regression
    out = invoke("predict", result.path, root / "test.csv", "--limit", "2")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("line 2  price ") and " weight " in lines[0]
    table = read_table(root / "test.csv", "rows")
    got = session(result.path).run(
        ["predictions"], rows_feed(table, [("age", False), ("city", True), ("smoker", True), ("income", False)])
    )[0]
    assert lines[1] == f"line 3  price {got[1, 0]:.6g}  weight {got[1, 1]:.6g}"
    written = invoke("predict", result.path, root / "test.csv", "-o", tmp_path / "p.csv")
    assert written.exit_code == 0 and len((tmp_path / "p.csv").read_text().splitlines()) == 61


def test_predict_warns_of_values_a_binary_column_never_held_and_reads_them_as_0(regression, tmp_path):
    """An unseen value in a binary column is encoded as 0, as the first training value is (scikit-learn's
    handle_unknown='ignore'): predict says so on stderr, and the prediction is the first value's."""
    root, _, result = regression
    (tmp_path / "rows.csv").write_text(
        "age,city,smoker,income\n30,paris,no,100\n30,paris,maybe,100\n"
        "30,paris,sometimes,100\n30,paris,maybe,100\n30,paris,yes,100\n"
    )
    out = invoke("predict", result.path, tmp_path / "rows.csv")
    assert out.exit_code == 0, out.output
    assert out.stderr == (
        f"{tmp_path / 'rows.csv'}: warning: binary column 'smoker' (no / yes in training) has 3 rows "
        "with other values ('maybe', 'sometimes'), read as 0, as 'no' is; declare the column "
        "categorical to tell them apart\n"
    )
    lines = out.stdout.splitlines()
    assert lines[1].split()[2:] == lines[0].split()[2:] == lines[2].split()[2:] != lines[4].split()[2:]
    clean = invoke("predict", result.path, root / "test.csv", "--limit", "3")
    assert clean.exit_code == 0 and clean.stderr == ""


def test_data_info_counts_the_values_a_binary_column_never_held_in_training(tmp_path):
    spec = write_spec(tmp_path, {"column": "label"}, "categorical_crossentropy", 2, "softmax", ["accuracy"])
    lines = (tmp_path / "test.csv").read_text().splitlines()
    lines[1:3] = [line.replace(",no,", ",maybe,").replace(",yes,", ",maybe,") for line in lines[1:3]]
    assert sum(",maybe," in line for line in lines) == 2
    (tmp_path / "test.csv").write_text("\n".join(lines) + "\n")
    (smoker,) = [column for column in api.data_info(api.load_spec(spec))["columns"] if column["column"] == "smoker"]
    assert smoker["unseen"] == {"train": 0, "test": 2}
    shown = invoke("data", "info", spec)
    assert shown.exit_code == 0, shown.output
    assert (
        "  smoker: binary, 2 values (no, yes); missing: train 18, test 4; other values, read as 0: test 2"
        in shown.stdout.splitlines()
    )


def test_predict_prints_classes_as_json(classifier):
    root, _, result = classifier
    out = invoke("predict", result.path, root / "test.csv", "--json", "--limit", "3")
    assert out.exit_code == 0, out.output
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [record["row"] for record in records] == ["line 2", "line 3", "line 4"]
    assert {record["name"] for record in records} <= {"high", "low"}


def test_predict_refuses_rows_without_a_feature_column(regression, tmp_path):
    _, _, result = regression
    (tmp_path / "rows.csv").write_text("age,city,smoker\n30,paris,no\n")
    out = invoke("predict", result.path, tmp_path / "rows.csv")
    assert out.exit_code == 2
    assert out.output.strip().splitlines() == [
        (
            f"{tmp_path / 'rows.csv'}: error: the model needs the columns 'income', which the file does not have; "
            "its header has: age, city, smoker"
        )
    ]


def test_a_table_model_refuses_images_and_arrays(regression, tmp_path):
    _, _, result = regression
    np.save(tmp_path / "x.npy", np.zeros((2, WIDTH), np.float32))
    out = invoke("predict", result.path, tmp_path / "x.npy")
    assert out.exit_code == 2
    assert out.output.strip() == (
        f"{result.path}: error: this model takes table rows: give one CSV or Parquet "
        "file of raw rows with its feature columns"
    )


def test_table_export_refuses_logits(regression):
    _, run, _ = regression
    out = invoke("export", run.path, "--logits")
    assert out.exit_code == 2 and "a table model takes raw rows" in out.output


def json_records(*args) -> list[dict]:
    out = invoke("predict", *args, "--json")
    assert out.exit_code == 0, out.output
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize("fixture", ["regression", "classifier"])
def test_a_table_run_directory_predicts_raw_rows_as_its_exported_model_does(fixture, request):
    root, run, result = request.getfixturevalue(fixture)
    from_run, from_onnx = (json_records(model, root / "test.csv") for model in (run.path, result.path))
    assert len(from_run) == len(from_onnx) == 60
    assert [r["row"] for r in from_run] == [r["row"] for r in from_onnx]
    values = [k for k in from_onnx[0] if k not in ("row", "class", "name")]
    if fixture == "classifier":
        assert [r["name"] for r in from_run] == [r["name"] for r in from_onnx]
    np.testing.assert_allclose(
        [[r[k] for k in values] for r in from_run], [[r[k] for k in values] for r in from_onnx], rtol=1e-4, atol=1e-4
    )
    assert api.predict_rows(run.path, root / "test.csv", limit=2).rows == ["line 2", "line 3"]


def test_a_table_run_directory_refuses_images_and_names_missing_columns(regression, tmp_path):
    _, run, _ = regression
    np.save(tmp_path / "x.npy", np.zeros((2, WIDTH), np.float32))
    out = invoke("predict", run.path, tmp_path / "x.npy")
    assert (out.exit_code, out.output.strip()) == (
        2,
        (
            f"{run.path}: error: this model takes table rows: give one "
            "CSV or Parquet file of raw rows with its feature columns"
        ),
    )
    (tmp_path / "rows.csv").write_text("age,city\n30,paris\n")
    out = invoke("predict", run.path, tmp_path / "rows.csv")
    assert (out.exit_code, out.output.strip()) == (
        2,
        (
            f"{tmp_path / 'rows.csv'}: error: the model needs the columns "
            "'smoker', 'income', which the file does not have; its header "
            "has: age, city"
        ),
    )
    out = invoke("predict", run.path, tmp_path / "gone.csv")
    assert (out.exit_code, out.output.strip()) == (
        2,
        (f"{tmp_path / 'gone.csv'}: error: no such file; give a CSV or Parquet file of raw rows"),
    )
