"""Checks that need more than one value of the spec at once (the schema checks each value alone): options
that exclude each other, and the model's output against the data's classes and the loss."""

from __future__ import annotations

from specforge.base.errors import Problem, SpecError
from specforge.graph.dag import Graph
from specforge.spec import Spec
from specforge.spec.reader import SpecPath


def check_compatibility(spec: Spec, graph: Graph) -> None:
    """Raise SpecError listing every mismatch between the output layer, the data's classes and the loss."""
    from specforge.spec.augmentation_checks import augmentation_problems
    from specforge.spec.training_checks import training_problems

    problems = (option_problems(spec) + _reshape_problems(spec) + _class_problems(spec, graph)
                + _loss_problems(spec, graph) + _target_problems(spec, graph) + augmentation_problems(spec, graph)
                + training_problems(spec, graph))
    if problems:
        raise SpecError(problems=problems)


def option_problems(spec: Spec) -> list[Problem]:
    """Options valid one by one that cannot go together: clipnorm with clipvalue, two learning-rate setters."""
    from specforge.options.callbacks import CALLBACKS

    problems = []
    optimizer = spec.config["compile"]["optimizer"]
    if optimizer["clipnorm"] is not None and optimizer["clipvalue"] is not None:
        problems.append(Problem("only one of clipnorm and clipvalue can be set; received both",
                                spec.locate(("compile", "optimizer", "clipvalue"))))
    items = spec.config["fit"]["callbacks"]
    setters = [index for index, item in enumerate(items) if CALLBACKS[item["type"]].sets_learning_rate]
    if len(setters) > 1:
        first, second = (items[index]["type"] for index in setters[:2])
        problems.append(Problem(f"{first} and {second} both set the learning rate; keep one of them",
                                spec.locate(("fit", "callbacks", setters[1]))))
    return problems


def _reshape_problems(spec: Spec) -> list[Problem]:
    reshape = spec.config["data"]["preprocessing"]["reshape"]
    input_shape = spec.config["model"]["input_shape"]
    if reshape is None or list(reshape) == list(input_shape):
        return []
    return [Problem(f"{list(reshape)} does not match model.input_shape {list(input_shape)}; "
                    f"use reshape: {list(input_shape)} or leave it out",
                    spec.locate(("data", "preprocessing", "reshape")))]


def _class_problems(spec: Spec, graph: Graph) -> list[Problem]:
    from specforge.options import losses
    from specforge.data import declared_num_classes

    classes = declared_num_classes(spec.config["data"])
    path, layer = _output_layer(spec, graph)
    output = graph.output_shape
    if classes is None:
        return []
    if len(output) != 1:
        return [Problem(f"the model's output has shape {output} but a classifier of {classes} classes needs "
                        f"({classes},); end with Flatten (or GlobalAveragePooling2D) and Dense with units: {classes}",
                        spec.locate(path))]
    loss = losses.get(spec.config["compile"]["loss"])
    binary = loss.name == "binary_crossentropy" and output[0] == 1 and classes == 2
    if output[0] != classes and not binary:
        where = path + ("units",) if "units" in layer else path
        values = "value" if output[0] == 1 else "values"
        return [Problem(f"the model outputs {output[0]} {values} but the data has {classes} classes; "
                        f"use units: {classes}", spec.locate(where))]
    return []


def _loss_problems(spec: Spec, graph: Graph) -> list[Problem]:
    from specforge.options import losses
    loss = losses.get(spec.config["compile"]["loss"])
    problems = []
    path, layer = _output_layer(spec, graph)
    hint = loss.fits(graph.final_activation, graph.output_shape[-1])
    if hint:
        where = path + ("activation",) if "activation" in layer else path
        problems.append(Problem(hint, spec.locate(where)))
    encoding = spec.config["data"]["preprocessing"]["labels"]
    if loss.label_encoding in ("one_hot", "sparse") and encoding != loss.label_encoding:
        other = "sparse_categorical_crossentropy" if encoding == "sparse" else "categorical_crossentropy"
        problems.append(Problem(f"{loss.name} takes {loss.label_encoding} labels but data.preprocessing.labels is "
                                f"{encoding}; use loss: {other} or labels: {loss.label_encoding}",
                                spec.locate(("compile", "loss"))))
    return problems


def _output_layer(spec: Spec, graph: Graph) -> tuple[SpecPath, dict]:
    """Where the spec writes the layer that makes the model's output, and that ``model.layers`` item."""
    path = graph.nodes[-1].path
    return path, spec.config["model"]["layers"][path[2]]


def _target_problems(spec: Spec, graph: Graph) -> list[Problem]:
    """A table's numeric target needs a regression loss and metrics, one output per target column; a class
    target takes no regression metrics."""
    from specforge.options import losses
    from specforge.options.metrics import METRICS

    data = spec.config["data"]
    if data.get("source") != "table":
        return []
    target = data["target"]
    metrics = spec.config["compile"]["metrics"]
    regression = target["type"] == "numeric"
    problems = [Problem(f"{metric['name']} is a {'classification' if regression else 'regression'} metric and "
                        f"the target is {target['type']}; use "
                        f"{'mae, rmse or r2' if regression else 'accuracy, top_k_accuracy, precision or recall'}",
                        spec.locate(("compile", "metrics", index)))
                for index, metric in enumerate(metrics) if METRICS[metric["name"]].takes_targets != regression]
    if not regression:
        return problems
    loss = losses.get(spec.config["compile"]["loss"])
    if loss.label_encoding != "any" or loss.fused_activation is not None:
        problems.append(Problem(f"{loss.name} is a classification loss and the target is numeric; use "
                                "mean_squared_error, mean_absolute_error or huber", spec.locate(("compile", "loss"))))
    columns = target["column"] if isinstance(target["column"], list) else [target["column"]]
    if graph.output_shape != (len(columns),):
        problems.append(Problem(f"the model outputs shape {graph.output_shape} but the target has {len(columns)} "
                                f"numeric column(s); end with Dense with units: {len(columns)}",
                                spec.locate(_output_layer(spec, graph)[0])))
    return problems
