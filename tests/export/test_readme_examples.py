"""The README's deployment examples, run as written on an exported model and one MNIST test image.

The Python example always runs; the Node.js (onnxruntime-node) and browser (onnxruntime-web, its
WebAssembly backend under Node.js with a stand-in canvas) examples run when node can load the packages.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from export.models import export_spec, small_spec
from export.test_node import NODE, loadable

README = Path(__file__).resolve().parents[2] / "README.md"


def deploy_examples() -> dict[str, str]:
    """The code blocks of the README's Deploy section, by language."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n## Deploy\n") : text.index("\n## Spec reference\n")]
    return dict(re.findall(r"```(\w+)\n(.*?)```", section, re.DOTALL))


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A directory holding model.onnx, the digit's raw pixels, and the class the numpy model predicts."""
    model, _, numpy_model, dataset, _ = export_spec(small_spec())
    directory = tmp_path_factory.mktemp("deployed")
    (directory / "model.onnx").write_bytes(model.SerializeToString())
    digit = dataset.test.images[0]
    predicted = int(numpy_model.forward(dataset.preprocessing.images(digit[None])).argmax())
    return directory, digit, predicted


def link_node_modules(directory: Path, package: str) -> None:
    """Make ``package`` importable from ``directory`` (ES modules ignore NODE_PATH)."""
    found = subprocess.run([NODE, "-p", f"require.resolve('{package}')"], capture_output=True, text=True, check=True)
    modules = next(p for p in Path(found.stdout.strip()).parents if p.name == "node_modules")
    link = directory / "node_modules"
    if not link.exists():
        link.symlink_to(modules, target_is_directory=True)


def run_node(directory: Path, name: str, script: str) -> str:
    (directory / name).write_text(script)
    done = subprocess.run([NODE, name], cwd=directory, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_the_deploy_section_has_every_example():
    assert set(deploy_examples()) >= {"python", "js", "html", "cpp", "csharp"}


def test_python_example(deployed, monkeypatch, capsys):
    directory, digit, predicted = deployed
    monkeypatch.chdir(directory)
    exec(deploy_examples()["python"], {"pixels": digit.tolist()})
    assert capsys.readouterr().out.strip() == str(predicted)


@pytest.mark.skipif(not loadable("onnxruntime-node"), reason="node with onnxruntime-node is not available")
def test_node_example(deployed):
    directory, digit, predicted = deployed
    link_node_modules(directory, "onnxruntime-node")
    script = f"const pixels = {json.dumps(digit.ravel().tolist())};\n{deploy_examples()['js']}"
    assert run_node(directory, "example.mjs", script) == str(predicted)


@pytest.mark.skipif(not loadable("onnxruntime-web"), reason="node with onnxruntime-web is not available")
def test_browser_example(deployed):
    directory, digit, predicted = deployed
    (code,) = re.findall(r"<script>\n(.*?)</script>", deploy_examples()["html"], re.DOTALL)
    rgba = np.repeat(digit.ravel(), 4).tolist()
    canvas = (
        f"{{ getContext: () => ({{ getImageData: () => ({{ data: Uint8ClampedArray.from({json.dumps(rgba)}) }}) }}) }}"
    )
    script = f"const ort = require('onnxruntime-web');\n{code}\nclassify({canvas}).then(console.log);\n"
    link_node_modules(directory, "onnxruntime-web")
    assert run_node(directory, "browser.js", script) == str(predicted)
