"""Checks that need more than one value of the spec at once (the schema checks each value alone): options
that exclude each other, a table's columns, and the model's input and output against the data's shape,
classes and the loss."""

from __future__ import annotations

from typing import TYPE_CHECKING

from specforge.base.errors import Problem, SpecError
from specforge.data import declared_num_classes
from specforge.data.table.features import NUMERIC_FILLS
from specforge.graph.augmentation_checks import augmentation_problems
from specforge.graph.dag import Graph
from specforge.graph.image_checks import image_column_problems
from specforge.graph.io_checks import input_width_problems, io_problems
from specforge.graph.text_checks import id_input_problems, vectorize_problems
from specforge.graph.training_checks import training_option_problems, training_problems
from specforge.options import losses
from specforge.options.callbacks import CALLBACKS
from specforge.options.metrics import METRICS
from specforge.spec import Spec
from specforge.spec.model_io import OutputSpec, model_outputs
from specforge.spec.reader import SpecPath

if TYPE_CHECKING:
    from specforge.data.splits import DataShape


def check_options(spec: Spec) -> None:
    """Raise SpecError listing every clash the spec's values make among themselves (no graph, no data needed)."""
    _raise(
        option_problems(spec)
        + _column_problems(spec)
        + io_problems(spec)
        + vectorize_problems(spec)
        + image_column_problems(spec)
        + training_option_problems(spec)
    )


def check_compatibility(spec: Spec, graph: Graph, shape: DataShape | None = None) -> None:
    """Raise SpecError listing every mismatch between the model's input and the data, and between the output
    layer, the data's classes and the loss; ``shape`` is what reading the data told about the model's input and
    classes, when it was read. Also where augmentation layers sit and the training options against the model."""
    _raise(
        _reshape_problems(spec)
        + _input_problems(spec, shape)
        + input_width_problems(spec, shape)
        + id_input_problems(spec, graph, shape)
        + _class_problems(spec, graph, shape)
        + _loss_problems(spec, graph)
        + _target_problems(spec, graph)
        + augmentation_problems(spec, graph)
        + training_problems(spec, graph)
    )


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise SpecError(problems=problems)


def option_problems(spec: Spec) -> list[Problem]:
    """Options valid one by one that cannot go together: clipnorm with clipvalue, two learning-rate setters."""
    problems = []
    optimizer = spec.config["compile"]["optimizer"]
    if optimizer["clipnorm"] is not None and optimizer["clipvalue"] is not None:
        problems.append(
            Problem(
                "only one of clipnorm and clipvalue can be set; received both",
                spec.locate(("compile", "optimizer", "clipvalue")),
            )
        )
    items = spec.config["fit"]["callbacks"]
    setters = [index for index, item in enumerate(items) if CALLBACKS[item["type"]].sets_learning_rate]
    if len(setters) > 1:
        first, second = (items[index]["type"] for index in setters[:2])
        problems.append(
            Problem(
                f"{first} and {second} both set the learning rate; keep one of them",
                spec.locate(("fit", "callbacks", setters[1])),
            )
        )
    return problems


def _reshape_problems(spec: Spec) -> list[Problem]:
    reshape = spec.config["data"]["preprocessing"]["reshape"]
    input_shape = spec.config["model"].get("input_shape")
    if reshape is None or input_shape is None or list(reshape) == list(input_shape):
        return []
    return [
        Problem(
            f"{list(reshape)} does not match model.input_shape {list(input_shape)}; "
            f"use reshape: {list(input_shape)} or leave it out",
            spec.locate(("data", "preprocessing", "reshape")),
        )
    ]


def _column_problems(spec: Spec) -> list[Problem]:
    """A table's columns: none both a feature and the target, a column listed again only to be encoded another
    way (standardized and log-scaled, say) and never both as numbers and as text, fills that fit the type,
    fill_value with fill: constant and only with it."""
    data = spec.config["data"]
    if data.get("source") != "table":
        return []
    target = data["target"]["column"]
    features = data["features"]
    problems = []
    for index, feature in enumerate(features):
        column, where = feature["column"], ("data", "features", index)
        if column in (target if isinstance(target, list) else [target]):
            problems.append(
                Problem(
                    f"column {column!r} is the target; a model cannot take its target as a feature: "
                    "remove it from data.features",
                    spec.locate((*where, "column")),
                )
            )
        clash = next(
            (
                (other, why)
                for other in range(index)
                if features[other]["column"] == column and (why := _second_use(features[other], feature))
            ),
            None,
        )
        if clash:
            problems.append(
                Problem(
                    f"column {column!r} is listed twice (also data.features[{clash[0]}]) {clash[1]}",
                    spec.locate((*where, "column")),
                )
            )
        if feature["type"] in ("text", "image"):
            continue  # a text or image column takes no fill (text_checks, image_checks)
        if feature.get("fill") == "constant" and "fill_value" not in feature:
            problems.append(
                Problem(
                    "fill: constant needs fill_value, the value a missing cell takes; add "
                    f"fill_value: {'0' if feature['type'] == 'numeric' else 'unknown'} (say), or use "
                    f"fill: {'mean' if feature['type'] == 'numeric' else 'most_frequent'}",
                    spec.locate((*where, "fill")),
                )
            )
        if "fill_value" in feature and feature.get("fill") != "constant":
            problems.append(
                Problem(
                    "fill_value is the value of fill: constant and this column's fill is "
                    f"{feature.get('fill') or 'the default'}; add fill: constant or remove fill_value",
                    spec.locate((*where, "fill_value")),
                )
            )
        if feature["type"] != "numeric" and feature.get("fill") in NUMERIC_FILLS:
            problems.append(
                Problem(
                    f"fill {feature['fill']} needs numbers and column {column!r} is "
                    f"{feature['type']}; use fill: most_frequent, or constant with a fill_value",
                    spec.locate((*where, "fill")),
                )
            )
    return problems


def _second_use(first: dict, second: dict) -> str:
    """What is wrong with listing a column again as ``second`` after ``first``, or '' when it is encoded another
    way (a second scaling of the same numbers)."""
    if first == second:
        return "with the same encoding, which only copies an input; list each column once"
    if (first["type"] == "numeric") != (second["type"] == "numeric"):
        return (
            "as numbers once and as text once; give each column one kind (numeric, or categorical/binary) "
            "and list it once"
        )
    return ""


def _input_problems(spec: Spec, shape: DataShape | None) -> list[Problem]:
    given = spec.config["model"].get("input_shape")
    problem = shape and given is not None and shape.input_problem(given)
    return [Problem(problem, spec.locate(("model", "input_shape")))] if problem else []


def _class_problems(spec: Spec, graph: Graph, shape: DataShape | None) -> list[Problem]:
    """Each output layer against the classes the spec declares, or else those the data has (MNIST's ten, a
    table target's values), or those its target's map gives; a declared count the data contradicts."""
    declared = declared_num_classes(spec.config["data"])
    found = shape.num_classes if shape else None
    if declared is not None and found is not None and declared != found:
        setting = "num_classes" if "num_classes" in spec.config["data"] else "class_names"
        fix = f"use num_classes: {found}" if setting == "num_classes" else f"give {found} class_names"
        return [
            Problem(
                f"data.{setting} gives {declared} classes but the target has {found} in the training "
                f"split; {fix} or leave it out",
                spec.locate(("data", setting)),
            )
        ]
    data_classes = declared if declared is not None else found
    problems = []
    for output, node in zip(model_outputs(spec.config), graph.output_nodes):
        classes = data_classes if output.target_map is None else max(max(output.target_map) + 1, 2)
        problems += _output_classes(spec, graph, output, node, classes)
    return problems


def _output_classes(spec: Spec, graph: Graph, output: OutputSpec, node: int, classes: int | None) -> list[Problem]:
    """One output layer against the classes of its target."""
    path, layer = _output_layer(spec, graph, node)
    shape = graph.nodes[node].output_shape
    if classes is None:
        return []
    if len(shape) != 1:
        pooling = "GlobalAveragePooling1D" if len(shape) == 2 else "GlobalAveragePooling2D"
        return [
            Problem(
                f"the model's output has shape {shape} but a classifier of {classes} classes needs "
                f"({classes},); end with Flatten (or {pooling}) and Dense with units: {classes}",
                spec.locate(path),
            )
        ]
    loss = _loss_of(output)
    binary = loss.name == "binary_crossentropy" and shape[0] == 1 and classes == 2
    if shape[0] != classes and not binary:
        where = (*path, "units") if "units" in layer else path
        values = "value" if shape[0] == 1 else "values"
        target = "the data has" if output.target_map is None else f"data.targets.{output.name} gives"
        return [
            Problem(
                f"the model outputs {shape[0]} {values} but {target} {classes} classes; use units: {classes}",
                spec.locate(where),
            )
        ]
    return []


def _loss_problems(spec: Spec, graph: Graph) -> list[Problem]:
    problems = []
    for output, node in zip(model_outputs(spec.config), graph.output_nodes):
        loss = _loss_of(output)
        path, layer = _output_layer(spec, graph, node)
        hint = loss.fits(graph.activation_of(node), graph.nodes[node].output_shape[-1])
        if hint:
            where = (*path, "activation") if "activation" in layer else path
            problems.append(Problem(hint, spec.locate(where)))
        encoding = spec.config["data"]["preprocessing"]["labels"]
        mapped = output.target_map is not None
        if not mapped and loss.label_encoding in ("one_hot", "sparse") and encoding != loss.label_encoding:
            other = "sparse_categorical_crossentropy" if encoding == "sparse" else "categorical_crossentropy"
            problems.append(
                Problem(
                    f"{loss.name} takes {loss.label_encoding} labels but data.preprocessing.labels is "
                    f"{encoding}; use loss: {other} or labels: {loss.label_encoding}",
                    spec.locate(_loss_path(spec, output)),
                )
            )
    return problems


def _loss_of(output: OutputSpec) -> losses.Loss:
    """An output's loss (check_options has refused an output without one)."""
    assert output.loss is not None, "check_options refuses an output without a loss"
    return losses.create(output.loss)


def _loss_path(spec: Spec, output: OutputSpec) -> SpecPath:
    """Where the spec writes ``output``'s loss: its own, or compile.loss."""
    own = bool(output.path) and "loss" in spec.config["model"]["outputs"][output.name]
    return (*output.path, "loss") if own else ("compile", "loss")


def _output_layer(spec: Spec, graph: Graph, node: int | None = None) -> tuple[SpecPath, dict]:
    """Where the spec writes the layer that makes the model's output (node ``node``, the first output's by
    default), and that ``model.layers`` item."""
    path = graph.nodes[graph.output_nodes[0] if node is None else node].path
    return path, spec.config["model"]["layers"][path[2]]


def _target_problems(spec: Spec, graph: Graph) -> list[Problem]:
    """A table's numeric target needs a regression loss and metrics, one output per target column; a class
    target takes no regression metrics."""
    data = spec.config["data"]
    if data.get("source") != "table":
        return []
    target = data["target"]
    metrics = spec.config["compile"]["metrics"]
    regression = target["type"] == "numeric"
    problems = [
        Problem(
            f"{metric['name']} is a {'classification' if regression else 'regression'} metric and "
            f"the target is {target['type']}; use "
            f"{'mae, rmse or r2' if regression else 'accuracy, top_k_accuracy, precision or recall'}",
            spec.locate(("compile", "metrics", index)),
        )
        for index, metric in enumerate(metrics)
        if METRICS[metric["name"]].takes_targets != regression
    ]
    if not regression:
        return problems
    loss = _loss_of(model_outputs(spec.config)[0])
    if loss.label_encoding != "any" or loss.fused_activation is not None:
        problems.append(
            Problem(
                f"{loss.name} is a classification loss and the target is numeric; use "
                "mean_squared_error, mean_absolute_error or huber",
                spec.locate(("compile", "loss")),
            )
        )
    columns = target["column"] if isinstance(target["column"], list) else [target["column"]]
    if graph.output_shape != (len(columns),):
        problems.append(
            Problem(
                f"the model outputs shape {graph.output_shape} but the target has {len(columns)} "
                f"numeric column(s); end with Dense with units: {len(columns)}",
                spec.locate(_output_layer(spec, graph)[0]),
            )
        )
    return problems
