"""validated spec -> checked graph: every layer's shape inferred and the model checked against its data and loss."""

from __future__ import annotations

from typing import TYPE_CHECKING

from specforge.base.errors import DataError
from specforge.data.sources import create as create_source
from specforge.graph.checks import check_compatibility, check_options
from specforge.graph.dag import Graph, infer_graph
from specforge.spec import Spec

if TYPE_CHECKING:
    from specforge.data.splits import DataShape


def build_graph(spec: Spec, *, read_data: bool = True) -> Graph:
    """Check the spec's values against each other, infer every layer's shape and check the model fits its data
    and loss; raises located errors.

    Where only the data tells the model's input shape or classes (a table: the features' encoded width depends
    on the categories in the training split), the data's columns are read (no training), unless ``read_data``
    is false and the spec gives model.input_shape."""
    check_options(spec)
    shape = data_shape(spec) if read_data or "input_shape" not in spec.config["model"] else None
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
    if shape is not None and "input_shape" not in spec.config["model"]:
        spec.config["model"]["input_shape"] = list(shape.input_shape)
        spec.inferred_input_shape = True
    return shape


__all__ = ["build_graph", "data_shape"]
