"""validated spec -> checked graph: every layer's shape inferred and the model checked against its data and loss."""

from __future__ import annotations

from specforge.graph.checks import check_compatibility
from specforge.graph.dag import Graph, infer_graph
from specforge.spec import Spec


def build_graph(spec: Spec) -> Graph:
    """Infer every layer's shape and check the model fits its data and loss; raises located errors."""
    graph = infer_graph(spec)
    check_compatibility(spec, graph)
    return graph


__all__ = ["build_graph"]
