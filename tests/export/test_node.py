"""Exported files under onnxruntime-node and onnxruntime-web (its WebAssembly backend, run by Node.js) give
Python's predictions: the README's JavaScript example, on the small CNN and on the strided example spec, and a
table model's raw rows with missing and unseen categories, and one with a text column vectorized in its graph.

Each package's test is skipped unless ``node`` is installed and can load it (``npm install onnxruntime-node
onnxruntime-web`` in this directory or a parent, or a folder on NODE_PATH).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from export.models import SPECS_DIR, export_spec, small_spec
from specforge.spec import load_spec

SCRIPT = """
const fs = require('fs');
async function main(runtime, modelPath, pixelsPath, count) {
  const ort = require(runtime);
  const session = await ort.InferenceSession.create(modelPath);
  const bytes = fs.readFileSync(pixelsPath);
  const pixels = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  const input = new ort.Tensor('float32', pixels, [count, 28, 28, 1]);   // raw 0-255 values, NHWC
  const { probabilities } = await session.run({ input });
  console.log(JSON.stringify({ inputs: session.inputNames, outputs: session.outputNames,
                               dims: probabilities.dims, data: Array.from(probabilities.data) }));
}
main(...process.argv.slice(2, 5), Number(process.argv[5]));
"""


NODE = shutil.which("node")
RUNTIMES = ("onnxruntime-node", "onnxruntime-web")


def loadable(package: str) -> bool:
    return (
        NODE is not None
        and subprocess.run([NODE, "-e", f"require.resolve('{package}')"], capture_output=True).returncode == 0
    )


@pytest.fixture(scope="module", params=["small", "strided"])
def exported(request, tmp_path_factory):
    spec = small_spec() if request.param == "small" else load_spec(SPECS_DIR / "strided.yaml")
    model, _, numpy_model, dataset, _ = export_spec(spec)
    path = tmp_path_factory.mktemp(request.param) / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path, numpy_model, dataset


@pytest.mark.parametrize(
    "runtime",
    [
        pytest.param(name, marks=pytest.mark.skipif(not loadable(name), reason=f"node with {name} is not available"))
        for name in RUNTIMES
    ],
)
def test_javascript_predicts_what_python_predicts(runtime, exported, tmp_path):
    path, numpy_model, dataset = exported
    raw = dataset.test.images[:16]
    raw.astype(np.float32).tofile(tmp_path / "pixels.f32")
    (tmp_path / "predict.js").write_text(SCRIPT)
    done = subprocess.run(
        [NODE, str(tmp_path / "predict.js"), runtime, str(path), str(tmp_path / "pixels.f32"), "16"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["inputs"], result["outputs"], result["dims"]) == (["input"], ["probabilities"], [16, 10])
    probabilities = np.array(result["data"], dtype=np.float32).reshape(16, 10)
    expected = numpy_model.forward(dataset.preprocessing.images(raw))
    np.testing.assert_allclose(probabilities, expected, rtol=1e-4, atol=1e-5)
    assert list(probabilities.argmax(axis=1)) == list(expected.argmax(axis=1))


TABLE_SCRIPT = """
const fs = require('fs');
async function main(runtime, modelPath, rowsPath) {
  const ort = require(runtime);
  const session = await ort.InferenceSession.create(modelPath);
  const columns = JSON.parse(fs.readFileSync(rowsPath, 'utf8'));
  const feeds = {};
  for (const [name, values] of Object.entries(columns)) {
    const shape = [values.length, 1];
    feeds[name] = typeof values[0] === 'string' ? new ort.Tensor('string', values, shape)
                                                : new ort.Tensor('float32', Float32Array.from(values), shape);
  }
  const [output] = Object.values(await session.run(feeds));   // predictions, or a classifier's probabilities
  console.log(JSON.stringify(Array.from(output.data)));
}
main(...process.argv.slice(2, 5));
"""


@pytest.fixture(scope="module")
def table_model(tmp_path_factory):
    from specforge import api

    root = tmp_path_factory.mktemp("diabetes")
    run = api.fit(SPECS_DIR / "diabetes.yaml", overrides=["fit.epochs=2"], out=root / "run", quiet=True)
    return run, api.export(run).path


@pytest.mark.parametrize(
    "runtime",
    [
        pytest.param(name, marks=pytest.mark.skipif(not loadable(name), reason=f"node with {name} is not available"))
        for name in RUNTIMES
    ],
)
def test_javascript_reads_missing_and_unseen_categories_as_python_does(runtime, table_model, tmp_path):
    from specforge.data import Preprocessing
    from specforge.data.table.read import read_table
    from specforge.predict.table import numpy_outputs

    run, path = table_model
    header, first = (SPECS_DIR / "data" / "diabetes.csv").read_text().splitlines()[:2]
    row = dict(zip(header.split(","), first.split(",")))
    sexes = ["", "NA", "1", "2", "3"]  # missing, missing, the two training values, one never seen
    lines = [header] + [",".join(sex if name == "sex" else row[name] for name in row) for sex in sexes]
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    pipeline = Preprocessing.from_dict(run.preprocessing).pipeline
    expected = numpy_outputs(run.graph, run.weights(), pipeline, read_table(tmp_path / "rows.csv", "rows"))[:, 0]
    columns = {
        feature.column: sexes if feature.type != "numeric" else [float(row[feature.column])] * len(sexes)
        for feature in pipeline.features
    }
    got = _run_table_script(tmp_path, runtime, path, columns)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
    (sex,) = [feature for feature in pipeline.features if feature.column == "sex"]
    assert got[0] == got[1] == got[sexes.index(sex.fill)] and got[2] != got[3]


@pytest.mark.parametrize(
    "runtime",
    [
        pytest.param(name, marks=pytest.mark.skipif(not loadable(name), reason=f"node with {name} is not available"))
        for name in RUNTIMES
    ],
)
def test_javascript_vectorizes_a_table_text_column_as_python_does(runtime, tmp_path):
    """The message's token ids as a model input of their own beside a number and a category: raw strings in
    (missing, out-of-vocabulary, punctuation, a non-ASCII letter), the vectorization in the graph."""
    from export.test_table_text_export import ODD, rows, two_inputs_spec, write_csv
    from specforge import api
    from specforge.data import Preprocessing
    from specforge.data.feed import make_feed
    from specforge.data.table.read import read_table
    from specforge.predict.table import numpy_outputs

    run = api.fit(two_inputs_spec(tmp_path), out=tmp_path / "run", quiet=True)
    path = api.export(run).path
    chosen = ODD + rows(8, 2)
    pipeline = Preprocessing.from_dict(run.preprocessing).pipeline
    table = read_table(write_csv(tmp_path / "rows.csv", chosen), "rows")
    expected = numpy_outputs(run.graph, run.weights(), pipeline, table, make_feed(run.config["data"], pipeline))
    columns = {"message": [row[1] for row in chosen], "words": [float(row[2]) for row in chosen]}
    columns["city"] = [row[3] for row in chosen]
    got = _run_table_script(tmp_path, runtime, path, columns).reshape(expected.shape)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def _run_table_script(tmp_path: Path, runtime: str, model: Path, columns: dict[str, list]) -> np.ndarray:
    """The table model's outputs for ``columns`` (column name -> its cells) as the README's script computes them
    under ``runtime``."""
    (tmp_path / "rows.json").write_text(json.dumps(columns))
    (tmp_path / "predict.js").write_text(TABLE_SCRIPT)
    done = subprocess.run(
        [NODE, str(tmp_path / "predict.js"), runtime, str(model), str(tmp_path / "rows.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return np.array(json.loads(done.stdout), dtype=np.float32)
