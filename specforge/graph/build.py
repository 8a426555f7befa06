"""validated spec -> checked graph: every layer's shape inferred and the model checked against its data and loss."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from specforge.base.errors import DataError, Problem, SpecError, SpecforgeError
from specforge.data.sources import create as create_source
from specforge.graph.checks import check_compatibility, check_options
from specforge.graph.dag import Graph, infer_graph
from specforge.spec import RefusedSpec, Spec, load_spec

if TYPE_CHECKING:
    from specforge.data.splits import DataShape


def build_graph(spec: Spec, *, read_data: bool = True) -> Graph:
    """Check the spec's values against each other, infer every layer's shape and check the model fits its data
    and loss; raises located errors.

    Where only the data tells the model's input shape or classes (a table: the features' encoded width depends
    on the categories in the training split), the data's columns are read (no training), unless ``read_data``
    is false and the spec gives model.input_shape."""
    check_options(spec)
    model = spec.config["model"]
    shape = data_shape(spec) if read_data or ("input_shape" not in model and "inputs" not in model) else None
    graph = infer_graph(spec)
    check_compatibility(spec, graph, shape)
    return graph


def data_shape(spec: Spec) -> DataShape | None:
    """What ``spec``'s data fixes about its model (``DataSource.shape``), errors located in the spec.  A spec
    that leaves model.input_shape out gets the data's, written into its config so that a run records it."""
    data = spec.config["data"]
    try:
        shape = create_source(data.get("source", "mnist")).shape(data, spec.base_dir)
    except DataError as error:
        raise spec.located(error) from None
    model = spec.config["model"]
    if shape is not None and "input_shape" not in model and "inputs" not in model:
        spec.config["model"]["input_shape"] = list(shape.input_shape)
        spec.inferred_input_shape = True
    return shape


def load_and_build(path: str | Path, overrides: Sequence[str] = (), *, read_data: bool = True) -> tuple[Spec, Graph]:
    """``load_spec`` then ``build_graph``, with every independent problem at once (``with_rest_checked``)."""
    try:
        spec = load_spec(path, overrides)
    except RefusedSpec as refused:
        raise with_rest_checked(refused, read_data=read_data) from None
    return spec, build_graph(spec, read_data=read_data)


def with_rest_checked(refused: RefusedSpec, *, read_data: bool = True) -> SpecforgeError:
    """The schema's problems with a spec together with those of the rest of it: when the schema refuses some
    layers or blocks (or keys), the rest of the model is still expanded and shape-checked (and, when only
    unknown keys were refused, checked against its data and loss), in the order of the file."""
    if refused.rest is None:
        return refused
    return SpecError(problems=_in_order(refused.problems + _problems(refused.rest, refused.complete, read_data)))


def _problems(rest: Spec, complete: bool, read_data: bool) -> list[Problem]:
    if not complete and "input_shape" not in rest.config["model"]:
        return []  # only the data can tell the input's shape, and the spec around it is not valid
    try:
        build_graph(rest, read_data=read_data) if complete else infer_graph(rest)
    except SpecforgeError as error:
        return error.problems
    return []


def _in_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.location.file or "", p.location.line or 0, p.location.column or 0))


__all__ = ["build_graph", "data_shape", "load_and_build", "with_rest_checked"]
