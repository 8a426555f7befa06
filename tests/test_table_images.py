"""A table's image column (``type: image``): each cell a PNG or JPEG file relative to the table, decoded once as
image folders decode theirs, feeding a model input of its own beside the numeric columns'. The reference spec
(specs/mnist_greater.yaml) trains on a slice, exports with raw pixels in and its parity gate passed, and
predicts, serves and runs in Node as its run does; missing and unreadable images are located lines."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from export.test_node import loadable
from export.test_readme_examples import link_node_modules, run_node
from needs import require
from PIL import Image
from serve.test_server import _importable
from serve.test_server import request as call
from test_cli_train import specforge

from specforge import api
from specforge.base.errors import DataError
from specforge.data.feed import Feed
from specforge.data.table import images
from specforge.data.table.features import Feature
from specforge.data.table.read import read_table
from specforge.graph.build import build_graph
from specforge.serve.process import start_server, stop_server
from specforge.training.progress import Silent

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "mnist_greater.yaml"
TABLE = ROOT / "specs" / "data" / "mnist_greater.csv"
ROWS = 8


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The reference spec trained one epoch on 200 rows, its export, and the reference table (rows of paths)."""
    directory = tmp_path_factory.mktemp("mnist_greater")
    run = api.fit(
        api.load_spec(SPEC, ["fit.epochs=1"]), out=directory / "run", progress=Silent(), limit_train=200, limit_test=64
    )
    return run, api.export(run.path), TABLE


def write_rows(path: Path, cells: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "n"])
        writer.writerows(cells)
    return path


def test_the_image_input_takes_the_columns_pixels_as_its_shape():
    graph = build_graph(api.load_spec(SPEC))
    assert [(source.name, source.shape) for source in graph.model_inputs] == [("digit", (28, 28, 1)), ("number", (1,))]


def test_a_feed_gives_an_image_group_its_shape():
    x = np.arange(2 * 13, dtype=np.float32).reshape(2, 13)
    pixels, number = Feed((np.arange(12), np.array([12])), ((2, 3, 2), None)).split(x)
    np.testing.assert_array_equal(pixels, x[:, :12].reshape(2, 2, 3, 2))
    np.testing.assert_array_equal(number, x[:, 12:])


def test_an_image_column_encodes_the_raw_pixels_times_rescale():
    table = read_table(TABLE, "train").take(np.arange(3))
    feature = Feature.fit({"column": "image", "type": "image", "shape": [28, 28, 1], "rescale": "1/255"}, table, "f")
    encoded = feature.encode(table)
    raw = np.stack([np.asarray(Image.open(TABLE.parent / path)) for path in table.texts("image")])
    assert encoded.shape == (3, 784) and encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded, raw.reshape(3, 784).astype(np.float32) * np.float32(1 / 255))
    assert feature.width == 784


def test_each_image_is_decoded_once(tmp_path, monkeypatch):
    for name, value in (("a.png", 10), ("b.png", 200)):
        Image.fromarray(np.full((5, 4), value, dtype=np.uint8)).save(tmp_path / name)
    table = read_table(write_rows(tmp_path / "rows.csv", [("a.png", "1"), ("b.png", "2"), ("a.png", "3")]), "rows")
    decoded = []
    real = images.decode_image
    monkeypatch.setattr(images, "decode_image", lambda *args: decoded.append(args[2]) or real(*args))
    first = images.column_pixels(table, "image", (5, 4, 1))
    second = images.column_pixels(table, "image", (5, 4, 1))
    assert sorted(Path(file).name for file in decoded) == ["a.png", "b.png"]
    np.testing.assert_array_equal(first, second)
    assert first[:, 0, 0, 0].tolist() == [10, 200, 10]


def test_a_resized_rgb_image_converts_as_an_image_folders_does(tmp_path):
    Image.new("RGB", (56, 56), (255, 0, 0)).save(tmp_path / "red.jpg")
    table = read_table(write_rows(tmp_path / "rows.csv", [("red.jpg", "1")]), "rows")
    pixels = images.column_pixels(table, "image", (28, 28, 1))
    assert pixels.shape == (1, 28, 28, 1) and int(pixels[0, 0, 0, 0]) == 76  # Pillow's L of pure red


def test_the_export_takes_raw_pixels_and_the_raw_number(exported):
    import onnx

    _, result, _ = exported
    assert result.parity.passed
    model = onnx.load(str(result.path))
    inputs = {
        item.name: [dim.dim_value or dim.dim_param for dim in item.type.tensor_type.shape.dim]
        for item in model.graph.input
    }
    assert inputs == {"image": ["N", 28, 28, 1], "n": ["N", 1]}
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert json.loads(metadata["inputs"]) == [
        {"name": "image", "type": "image", "shape": [28, 28, 1]},
        {"name": "n", "type": "float"},
    ]


def test_predict_from_the_onnx_file_and_from_the_run_agree(exported):
    run, result, rows = exported
    from_onnx = api.predict_rows(result.path, rows, limit=ROWS)
    from_run = api.predict_rows(run.path, rows, limit=ROWS)
    assert from_onnx.outputs.shape == (ROWS, 2) and from_onnx.names == ["no", "yes"]
    np.testing.assert_allclose(from_onnx.outputs, from_run.outputs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ([("0000.png", "1"), ("nowhere.png", "2")], "line 3, column 'image': no image file 'nowhere.png'"),
        ([("0000.png", "1"), ("broken.png", "2")], "line 3, column 'image': broken.png: not an image file"),
        ([("0000.png", "1"), ("", "2")], "line 3, column 'image': no image path"),
        ([("notes.txt", "1")], "line 2, column 'image': 'notes.txt' is not a .png, .jpg or .jpeg file"),
    ],
    ids=["missing", "undecodable", "empty", "suffix"],
)
def test_a_bad_image_is_one_located_line_and_exit_status_2(exported, tmp_path, cells, message):
    run, result, _ = exported
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(tmp_path / "0000.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("a note")
    rows = write_rows(tmp_path / "rows.csv", cells)
    for model in (run.path, result.path):
        with pytest.raises(DataError, match=re.escape(message)):
            api.predict_rows(model, rows)
    answer = specforge("predict", result.path, rows, cwd=tmp_path)
    assert answer.returncode == 2 and answer.stdout == ""
    assert answer.stderr.startswith(f"{rows}:{len(cells) + 1}: error: ") and message in answer.stderr
    assert len(answer.stderr.strip().splitlines()) == 1


def test_serve_takes_the_image_input_by_name(exported):
    require(_importable("uvicorn") and _importable("starlette"), "the serve extra (pip install 'specforge[serve]')")
    run, result, rows = exported
    table = read_table(rows, "rows").take(np.arange(ROWS))
    pixels = images.column_pixels(table, "image", (28, 28, 1)).astype(np.float32)
    numbers = table.numbers("n").astype(np.float32)[:, None]
    body = {
        "inputs": [
            {"name": "image", "shape": list(pixels.shape), "datatype": "FP32", "data": pixels.ravel().tolist()},
            {"name": "n", "shape": [ROWS, 1], "datatype": "FP32", "data": numbers.ravel().tolist()},
        ]
    }
    process, url = start_server(run.path)
    try:
        status, metadata = call("GET", f"{url}/v2/models/mnist-greater")
        status, answer = call("POST", f"{url}/v2/models/mnist-greater/infer", json.dumps(body).encode())
    finally:
        stop_server(process)
    assert {"name": "image", "datatype": "FP32", "shape": [-1, 28, 28, 1]} in metadata["inputs"]
    assert status == 200
    (output,) = answer["outputs"]
    served = np.array(output["data"], dtype=np.float32).reshape(output["shape"])
    np.testing.assert_allclose(served, api.predict_rows(result.path, rows, limit=ROWS).outputs, rtol=1e-6, atol=1e-6)


def _readme_block(heading: str, language: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    return re.search(rf"```{language}\n(.*?)```", text[start:], re.DOTALL).group(1)


def test_the_readmes_image_column_spec_is_the_reference_specs_data_and_inputs():
    import yaml

    shown = yaml.safe_load(_readme_block("### Image columns", "yaml"))
    spec = yaml.safe_load(SPEC.read_text())
    assert shown["data"] == spec["data"] and shown["model"]["inputs"] == spec["model"]["inputs"]


def test_the_readmes_node_example_feeds_pixels_and_the_number_by_name(exported, tmp_path):
    require(loadable("onnxruntime-node"), "onnxruntime-node (npm ci --ignore-scripts)")
    _, result, rows = exported
    (tmp_path / "model.onnx").write_bytes(result.path.read_bytes())
    table = read_table(rows, "rows").take(np.arange(1))
    pixels = images.column_pixels(table, "image", (28, 28, 1))
    probability = api.predict_rows(result.path, rows, limit=1).outputs[0, 1]
    link_node_modules(tmp_path, "onnxruntime-node")
    script = (
        f"const pixels = {json.dumps(pixels.ravel().tolist())};\nconst n = {table.numbers('n')[0]:g};\n"
        f"{_readme_block('### Image columns', 'js')}"
    )
    assert run_node(tmp_path, "example.mjs", script) == ("greater" if probability > 0.5 else "not greater")


def test_data_info_gives_an_image_columns_shape_and_rescale():
    info = api.data_info(api.load_spec(SPEC))
    (image,) = [column for column in info["columns"] if column["column"] == "image"]
    assert (image["type"], image["encoded_width"], image["shape"]) == ("image", 784, [28, 28, 1])
    assert image["rescale"] == pytest.approx(1 / 255)
