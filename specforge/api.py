"""The Python API: everything the CLI does, callable from a notebook.

    from specforge import api
    spec = api.load_spec("specs/mnist.yaml")
    graph = api.build(spec)
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from specforge.graph import Graph, build_graph
from specforge.spec import Spec, load_spec
from specforge.spec.checks import check_compatibility

__all__ = ["load_spec", "build", "build_graph", "validate"]


def build(spec: Spec) -> Graph:
    """Infer every layer's shape and check the model fits its data and loss; raises located errors."""
    graph = build_graph(spec)
    check_compatibility(spec, graph)
    return graph


def validate(path: str | Path, overrides: Sequence[str] = ()) -> tuple[Spec, Graph]:
    """``specforge validate``: the resolved spec and its graph, or a SpecError/ShapeError naming every problem."""
    spec = load_spec(path, overrides)
    return spec, build(spec)
