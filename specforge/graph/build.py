"""validated spec -> checked graph: every layer's shape inferred and the model checked against its data and loss."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from specforge.base.errors import Problem, SpecError, SpecforgeError
from specforge.graph.dag import Graph, build_graph
from specforge.spec import RefusedSpec, Spec, load_spec
from specforge.spec.checks import check_compatibility


def build(spec: Spec) -> Graph:
    """Infer every shape and check the model fits its data and loss; raises located errors."""
    graph = build_graph(spec)
    check_compatibility(spec, graph)
    return graph


def load_and_build(path: str | Path, overrides: Sequence[str] = ()) -> tuple[Spec, Graph]:
    """``load_spec`` then ``build``, with every independent problem at once: when the schema refuses some
    layers or blocks (or keys), the rest of the model is still expanded and shape-checked (and, when only
    unknown keys were refused, checked against its data and loss), its problems reported with the schema's
    in the order of the file."""
    try:
        spec = load_spec(path, overrides)
    except RefusedSpec as refused:
        if refused.rest is None:
            raise
        raise SpecError(problems=_in_order(refused.problems + _problems(refused.rest, refused.complete))) from None
    return spec, build(spec)


def _problems(rest: Spec, complete: bool) -> list[Problem]:
    try:
        build(rest) if complete else build_graph(rest)
    except SpecforgeError as error:
        return error.problems
    return []


def _in_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.location.file or "", p.location.line or 0, p.location.column or 0))


__all__ = ["build", "load_and_build"]
