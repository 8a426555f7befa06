"""Checks that need the whole spec at once: the model's output against the data's classes and the loss."""

from __future__ import annotations

from specforge.errors import Problem, SpecError
from specforge.graph import Graph
from specforge.spec import Spec


def check_compatibility(spec: Spec, graph: Graph) -> None:
    """Raise SpecError listing every mismatch between the output layer, the data's classes and the loss."""
    problems = _class_problems(spec, graph)
    if problems:
        raise SpecError(problems=problems)


def _class_problems(spec: Spec, graph: Graph) -> list[Problem]:
    from specforge.data import declared_num_classes

    classes = declared_num_classes(spec.config["data"])
    layers = spec.config["model"]["layers"]
    last = len(layers) - 1
    output = graph.output_shape
    if classes is None:
        return []
    if len(output) != 1:
        return [Problem(f"the model's output has shape {output} but a classifier of {classes} classes needs "
                        f"({classes},); end with Flatten (or GlobalAveragePooling2D) and Dense with units: {classes}",
                        spec.locate(("model", "layers", last)))]
    if output[0] != classes:
        where = ("model", "layers", last, "units") if "units" in layers[last] else ("model", "layers", last)
        return [Problem(f"the model outputs {output[0]} values but the data has {classes} classes; "
                        f"use units: {classes}", spec.locate(where))]
    return []
