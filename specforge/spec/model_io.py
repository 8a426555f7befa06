"""The model's named inputs and outputs as a resolved spec declares them.

A spec with ``model.inputs`` / ``model.outputs`` names several; one without has one of each, the
one-element case of the same structure: the input ``input`` of ``model.input_shape``, and the output
``output`` of ``model.output`` (or the last layer) with ``compile.loss`` and ``compile.metrics``.
Values and names follow Keras: a single output's history keys have no prefix (``loss``, ``accuracy``),
several outputs' have the output's name (``digit_loss``, ``parity_accuracy``) beside the total ``loss``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from specforge.spec.flatten import INPUT
from specforge.spec.reader import SpecPath

#: the name of a model's only output when the spec names none
OUTPUT = "output"


@dataclass(frozen=True)
class InputSpec:
    """One model input: its name, shape, declared dtype (None: what the layers taking it take) and where the
    spec writes it."""

    name: str
    shape: tuple[int, ...]
    dtype: str | None
    path: SpecPath


@dataclass(frozen=True)
class OutputSpec:
    """One model output: its name, the layer it is (None: the model's last layer), its loss (None: none given),
    resolved metrics, weight in the total loss, the map from data labels to its classes (None: the labels
    themselves), where the spec writes it and the prefix of its names in logs."""

    name: str
    layer: str | None
    loss: str | dict | None
    metrics: list[dict[str, Any]]
    loss_weight: float
    target_map: tuple[int, ...] | None
    path: SpecPath
    prefix: str


def model_inputs(config: dict) -> list[InputSpec]:
    """The model's inputs, in order (``model.inputs``, else the one input ``input``)."""
    model = config["model"]
    if "inputs" not in model:
        return [InputSpec(INPUT, tuple(model.get("input_shape", ())), None, ("model", "input_shape"))]
    return [
        InputSpec(name, tuple(item["shape"]), item.get("dtype"), ("model", "inputs", name))
        for name, item in model["inputs"].items()
    ]


def model_outputs(config: dict) -> list[OutputSpec]:
    """The model's outputs, in order (``model.outputs``, else the one output of ``compile``'s loss and metrics)."""
    model, compile_ = config["model"], config["compile"]
    weights = compile_.get("loss_weights") or {}
    targets = config["data"].get("targets") or {}
    if "outputs" not in model:
        return [
            OutputSpec(
                OUTPUT,
                model.get("output"),
                compile_.get("loss"),
                compile_["metrics"],
                float(weights.get(OUTPUT, 1.0)),
                _target_map(targets.get(OUTPUT)),
                (),
                "",
            )
        ]
    several = len(model["outputs"]) > 1
    return [
        OutputSpec(
            name,
            item["layer"],
            item.get("loss", compile_.get("loss")),
            item.get("metrics", compile_["metrics"]),
            float(weights.get(name, 1.0)),
            _target_map(targets.get(name)),
            ("model", "outputs", name),
            f"{name}_" if several else "",
        )
        for name, item in model["outputs"].items()
    ]


def _target_map(target: dict | None) -> tuple[int, ...] | None:
    return tuple(target["map"]) if target is not None and "map" in target else None


def output_label_maps(config: dict) -> dict[str, list[int] | None]:
    """Each output's map from the data's labels to its classes (``data.targets``), None where they are the labels."""
    return {
        output.name: None if output.target_map is None else list(output.target_map) for output in model_outputs(config)
    }


def output_class_names(config: dict, widths: Sequence[int], class_names: Sequence[str]) -> dict[str, list[str]]:
    """Each output's class names in a model of several outputs (``widths``: each output's last axis): the data's
    for an output of the data's labels, the class numbers for one whose target maps them (``data.targets``); one
    sigmoid unit has two classes."""
    names = {}
    for output, width in zip(model_outputs(config), widths, strict=True):
        classes = max(2, width)
        labels = output.target_map is None and len(class_names) == classes
        names[output.name] = list(class_names) if labels else [str(index) for index in range(classes)]
    return names


__all__ = [
    "OUTPUT",
    "InputSpec",
    "OutputSpec",
    "model_inputs",
    "model_outputs",
    "output_class_names",
    "output_label_maps",
]
