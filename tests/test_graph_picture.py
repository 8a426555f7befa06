"""The picture of a graph: DOT text with a box per layer, a frame per block instance and an arrow per input;
SVG and PNG drawn by Graphviz's dot; ``specforge validate --graph``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from needs import require

from specforge.api import build_graph, load_spec
from specforge.base.errors import SpecError
from specforge.graph.picture import graph_dot, write_picture

ROOT = Path(__file__).resolve().parents[1]
RESIDUAL = ROOT / "specs" / "residual.yaml"


def residual_graph():
    return build_graph(load_spec(RESIDUAL))


def test_dot_has_every_layer_edge_and_block_frame():
    graph = residual_graph()
    text = graph_dot(graph, "mnist-residual")
    rows = graph.summary()
    for row in rows:
        assert f'"{row.name}" [label="{row.name.rsplit("/", 1)[-1]}\\n{row.type}\\n{row.output_shape}"];' in text
        for source in row.connected_to:
            assert f'"{source}" -> "{row.name}";' in text
    assert len(re.findall(r" -> ", text)) == sum(len(row.connected_to) for row in rows)
    assert re.findall(r'subgraph "cluster_([^"]+)"', text) == [
        "stage1",
        "stage1/residual",
        "stage1/residual_1",
        "stage2",
        "stage2/residual",
        "stage2/residual_1",
    ]
    assert 'label="residual_1 (residual)"' in text and 'label="stage2 (stage)"' in text


def test_a_chain_has_no_frames():
    text = graph_dot(build_graph(load_spec(ROOT / "specs" / "mnist.yaml")), "mnist-cnn")
    assert "subgraph" not in text
    assert '"input" -> "conv2d";' in text and '"flatten" -> "dense";' in text


@pytest.mark.parametrize("suffix,magic", [("svg", b"<svg"), ("png", b"\x89PNG")])
def test_images_are_drawn_by_dot(tmp_path, suffix, magic):
    require(shutil.which("dot") is not None, "Graphviz's dot (apt-get install graphviz)")
    path = write_picture(residual_graph(), "mnist-residual", tmp_path / f"graph.{suffix}")
    assert magic in path.read_bytes()[:400]


def test_without_dot_an_image_is_a_located_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    with pytest.raises(SpecError, match=r"needs Graphviz's dot tool \(Debian: apt-get install graphviz\)"):
        write_picture(residual_graph(), "x", tmp_path / "graph.svg")
    assert not (tmp_path / "graph.svg").exists()


def test_other_suffixes_are_refused(tmp_path):
    with pytest.raises(SpecError, match=r"name a \.dot, \.svg or \.png file"):
        write_picture(residual_graph(), "x", tmp_path / "graph.pdf")


def test_validate_writes_the_picture(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    target = tmp_path / "graph.dot"
    result = subprocess.run(
        [sys.executable, "-m", "specforge", "validate", str(RESIDUAL), "--graph", str(target)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert target.read_text() == graph_dot(residual_graph(), "mnist-residual")


def test_the_readme_picture_is_the_residual_spec(tmp_path):
    require(shutil.which("dot") is not None, "Graphviz's dot (apt-get install graphviz)")
    drawn = write_picture(residual_graph(), "mnist-residual", tmp_path / "residual.svg")
    assert (ROOT / "docs" / "residual.svg").read_text() == drawn.read_text()
