"""The README's table examples, run as written on an exported diabetes model and one raw row.

The Python example always runs; the Node.js (onnxruntime-node) and browser (onnxruntime-web under
Node.js) examples run when node can load the packages.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from needs import require

from export.test_node import loadable
from export.test_readme_examples import link_node_modules, run_node
from specforge import api
from specforge.data import Preprocessing
from specforge.data.table.read import read_table
from specforge.predict.table import numpy_outputs
from specforge.training.progress import Silent

ROOT = Path(__file__).resolve().parents[2]
ROW = {
    "age": "59",
    "sex": "2",
    "bmi": "32.1",
    "bp": "101",
    "s1": "157",
    "s2": "93.2",
    "s3": "38",
    "s4": "4",
    "s5": "4.8598",
    "s6": "87",
}


def table_examples() -> dict[str, str]:
    """The code blocks of the README's Tables section, by language (the last block of each language)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Tables\n") : text.index("\n## Text\n")]
    return dict(re.findall(r"```(\w+)\n(.*?)```", section, re.DOTALL))


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A directory holding the exported diabetes model (2 epochs) and what the numpy pipeline predicts for ROW."""
    directory = tmp_path_factory.mktemp("table")
    run = api.fit(
        api.load_spec(ROOT / "specs" / "diabetes.yaml", ["fit.epochs=2"]), out=directory / "run", progress=Silent()
    )
    result = api.export(run, output=directory / "model.onnx")
    (directory / "row.csv").write_text(",".join(ROW) + "\n" + ",".join(ROW.values()) + "\n")
    pipeline = Preprocessing.from_dict(run.preprocessing).pipeline
    expected = numpy_outputs(run.graph, run.weights(), pipeline, read_table(directory / "row.csv", "row"))
    return result.path.parent, float(expected[0, 0])


def test_the_section_has_python_node_and_browser_examples():
    assert set(table_examples()) >= {"python", "js", "html", "yaml"}


def test_python_example(deployed, monkeypatch, capsys):
    directory, expected = deployed
    monkeypatch.chdir(directory)
    exec(table_examples()["python"], {})
    assert float(capsys.readouterr().out) == pytest.approx(expected, rel=1e-5, abs=1e-3)


def test_node_example(deployed):
    require(loadable("onnxruntime-node"), "node with onnxruntime-node (npm ci --ignore-scripts)")
    directory, expected = deployed
    link_node_modules(directory, "onnxruntime-node")
    assert float(run_node(directory, "table.mjs", table_examples()["js"])) == pytest.approx(
        expected, rel=1e-5, abs=1e-3
    )


def test_browser_example(deployed):
    require(loadable("onnxruntime-web"), "node with onnxruntime-web (npm ci --ignore-scripts)")
    directory, expected = deployed
    (code,) = re.findall(r"<script>\n(.*?)</script>", table_examples()["html"], re.DOTALL)
    row = "{" + ", ".join(f"{name}: {value if name != 'sex' else repr(value)}" for name, value in ROW.items()) + "}"
    script = f"const ort = require('onnxruntime-web');\n{code}\npredict({row}).then(console.log);\n"
    link_node_modules(directory, "onnxruntime-web")
    assert float(run_node(directory, "browser.js", script)) == pytest.approx(expected, rel=1e-5, abs=1e-3)


def test_the_readme_lists_the_missing_value_texts_the_reader_and_the_graph_use():
    from specforge.data.table.read import MISSING

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = re.search(r"Missing is an empty cell or one of (.*?) \(spaces", text, re.DOTALL).group(1)
    assert {"", *re.findall(r"`([^`]+)`", listed)} == MISSING
