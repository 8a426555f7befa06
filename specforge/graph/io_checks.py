"""Checks of the model's named inputs and outputs against the rest of the spec: every input fed by the data and
every part of the data taken by an input, every output with a loss and a target, loss weights and targets that
name outputs, and the options that weigh one output's examples refused where there are several."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from specforge.base.errors import Problem
from specforge.data import declared_num_classes
from specforge.spec import Spec
from specforge.spec.model_io import model_inputs, model_outputs

if TYPE_CHECKING:
    from specforge.data.splits import DataShape


def io_problems(spec: Spec) -> list[Problem]:
    """Every mistake in how the spec's data feeds the model's inputs and targets its outputs (no data read)."""
    return _both_problems(spec) + _input_problems(spec) + _output_problems(spec) + _weighting_problems(spec)


def _both_problems(spec: Spec) -> list[Problem]:
    """model.input_shape beside model.inputs, model.output beside model.outputs."""
    model = spec.config["model"]
    return [
        Problem(f"{many} names the model's {what}; remove {one}", spec.locate(("model", one.split(".")[1])))
        for one, many, what in (
            ("model.input_shape", "model.inputs", "inputs and gives each its shape"),
            ("model.output", "model.outputs", "outputs"),
        )
        if one.split(".")[1] in model and many.split(".")[1] in model
    ]


def _names(wanted: str, known: Sequence[str], what: str) -> str:
    guess = difflib.get_close_matches(wanted, list(known), n=1, cutoff=0.6)
    return f"did you mean {guess[0]!r}?" if guess else f"the {what} are: {', '.join(known)}"


def _input_problems(spec: Spec) -> list[Problem]:
    data = spec.config["data"]
    inputs = [source.name for source in model_inputs(spec.config)]
    groups: dict[str, list[str]] = data.get("inputs") or {}
    source = data.get("source", "mnist")
    if source != "table":
        if groups:
            return [
                Problem(
                    f"data.inputs groups a table's feature columns and source {source} feeds its examples to the "
                    "model's one input; remove data.inputs",
                    spec.locate(("data", "inputs")),
                )
            ]
        if len(inputs) > 1:
            return [
                Problem(
                    f"source {source} feeds one model input and the model has {len(inputs)}; keep one input, or "
                    "feed several from a table's feature columns (source: table with data.inputs)",
                    spec.locate(("model", "inputs", inputs[1])),
                )
            ]
        return []
    problems = [
        Problem(
            f"names input {name!r}, which the model does not have; {_names(name, inputs, 'inputs')}",
            spec.locate(("data", "inputs", name), at_key=True),
        )
        for name in groups
        if name not in inputs
    ]
    if len(inputs) > 1 or groups:
        problems += [
            Problem(
                f"no data feeds model input {name!r}; add data.inputs.{name}: [the feature columns it takes]",
                spec.locate(("model", "inputs", name), at_key=True),
            )
            for name in inputs
            if name not in groups
        ]
        problems += _column_problems(spec, groups)
    return problems


def _column_problems(spec: Spec, groups: dict[str, list[str]]) -> list[Problem]:
    """Each group's columns among the features, each feature in one group."""
    features = spec.config["data"]["features"]
    columns = [feature["column"] for feature in features]
    fed: dict[str, str] = {}
    problems = []
    for name, group in groups.items():
        for index, column in enumerate(group):
            where = spec.locate(("data", "inputs", name, index))
            if column not in columns:
                problems.append(
                    Problem(
                        f"column {column!r} is not among data.features; {_names(column, columns, 'feature columns')}",
                        where,
                    )
                )
            elif column in fed:
                problems.append(
                    Problem(f"column {column!r} already feeds input {fed[column]!r}; each feature feeds one", where)
                )
            else:
                fed[column] = name
    problems += [
        Problem(
            f"column {column!r} feeds no model input; add it to a group of data.inputs or remove it from data.features",
            spec.locate(("data", "features", index, "column")),
        )
        for index, column in enumerate(columns)
        if column not in fed and column not in columns[:index]
    ]
    return problems


def _output_problems(spec: Spec) -> list[Problem]:
    config = spec.config
    outputs = model_outputs(config)
    names = [output.name for output in outputs]
    inputs = {source.name for source in model_inputs(config)}
    several = len(outputs) > 1
    targets: dict[str, dict] = config["data"].get("targets") or {}
    weights: dict[str, float] = config["compile"].get("loss_weights") or {}
    problems = [
        Problem(
            f"names output {name!r}, which the model does not have; {_names(name, names, 'outputs')}",
            spec.locate(("compile", "loss_weights", name), at_key=True),
        )
        for name in weights
        if name not in names
    ]
    problems += [
        Problem(
            f"names output {name!r}, which the model does not have; {_names(name, names, 'outputs')}",
            spec.locate(("data", "targets", name), at_key=True),
        )
        for name in targets
        if name not in names
    ]
    classes = declared_num_classes(config["data"])
    for output in outputs:
        if output.loss is None:
            problems.append(
                Problem(
                    f"output {output.name!r} has no loss; give it `loss:` (or compile.loss, which every output "
                    "without its own takes)",
                    spec.locate(output.path, at_key=True),
                )
            )
        if several and output.name not in targets:
            problems.append(
                Problem(
                    f"output {output.name!r} has no target; add data.targets.{output.name}: {{}} (the data's "
                    "labels) or {map: [the class of each label]}",
                    spec.locate(output.path, at_key=True),
                )
            )
        if output.name in inputs and output.path:
            problems.append(
                Problem(
                    f"output {output.name!r} has the name of a model input; give it another name",
                    spec.locate(output.path, at_key=True),
                )
            )
        mapped = output.target_map
        if mapped is not None and classes is not None and len(mapped) != classes:
            problems.append(
                Problem(
                    f"map gives {len(mapped)} classes for the data's {classes}; give one class per data label",
                    spec.locate(("data", "targets", output.name, "map")),
                )
            )
    return problems


def _weighting_problems(spec: Spec) -> list[Problem]:
    """class_weight and sample_weight weigh the examples of one output."""
    count = len(model_outputs(spec.config))
    if count == 1:
        return []
    settings = [
        (path, option)
        for path, option in ((("fit", "class_weight"), "class_weight"), (("data", "sample_weight"), "sample_weight"))
        if spec.config[path[0]].get(path[1]) is not None
    ]
    return [
        Problem(
            f"{option} weighs the examples of one output and the model has {count}; remove it",
            spec.locate(path),
        )
        for path, option in settings
    ]


def input_width_problems(spec: Spec, shape: DataShape | None) -> list[Problem]:
    """Each model input's shape against the encoded width of the table columns feeding it."""
    groups: dict[str, list[str]] = spec.config["data"].get("inputs") or {}
    if shape is None or shape.column_widths is None or not groups:
        return []
    problems = []
    for source in model_inputs(spec.config):
        columns = groups.get(source.name)
        if columns is None or any(column not in shape.column_widths for column in columns):
            continue
        width = sum(shape.column_widths[column] for column in columns)
        if source.shape != (width,):
            problems.append(
                Problem(
                    f"data.inputs.{source.name} encodes to {width} values per row and the input's shape is "
                    f"{list(source.shape)}; use shape: [{width}]",
                    spec.locate((*source.path, "shape")),
                )
            )
    return problems


__all__ = ["input_width_problems", "io_problems"]
