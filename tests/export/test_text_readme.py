"""The README's text examples, run as written on an exported text model: the Python example under onnxruntime
and the Node.js example under onnxruntime-node print the classes the run's numpy model gives the same documents."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from needs import require
from text_corpus import trained_run

from export.test_node import loadable
from export.test_readme_examples import link_node_modules, run_node
from specforge import api
from specforge.predict.run_model import RunPredictor

ROOT = Path(__file__).resolve().parents[2]


def text_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text[text.index("\n### An exported text model\n") : text.index("\n## Pictures\n")]


def text_examples() -> dict[str, str]:
    """The code blocks of the README's exported text model section, by language."""
    return dict(re.findall(r"```(\w+)\n(.*?)```", text_section(), re.DOTALL))


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A directory holding the exported model, and the classes the numpy model gives the examples' documents."""
    directory = tmp_path_factory.mktemp("text")
    run = trained_run(directory, vectorize={"output_sequence_length": 16, "ngrams": 2, "max_tokens": 32})
    api.export(run, output=directory / "model.onnx")
    python, js = (
        re.findall(r"['\"]([^'\"]+)['\"]", re.search(r"documents = .*?\[(.*?)\]", text_examples()[language]).group(1))
        for language in ("python", "js")
    )
    assert python == js and len(python) == 2
    texts = python
    best = RunPredictor(run.path).run(np.array(texts, dtype=object)).argmax(axis=1)
    assert list(best) == [0, 1]  # cooking, then sport
    return directory, " ".join(map(str, best))


def test_the_section_has_python_and_node_examples():
    assert set(text_examples()) >= {"python", "js", "sh"}


def test_python_example(deployed, monkeypatch, capsys):
    directory, expected = deployed
    monkeypatch.chdir(directory)
    exec(text_examples()["python"], {})
    assert capsys.readouterr().out.strip() == expected


def test_node_example(deployed):
    require(loadable("onnxruntime-node"), "node with onnxruntime-node (npm ci --ignore-scripts)")
    directory, expected = deployed
    link_node_modules(directory, "onnxruntime-node")
    assert run_node(directory, "text.mjs", text_examples()["js"]) == expected
