"""Checks of the training options that need more than one value of the spec: class weights against the
model's classes, a learning-rate schedule against the callbacks that set the rate, a schedule's warmup against
the steps training will take, and class weights against a regression target."""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path

from specforge.base.errors import Problem, SpecError
from specforge.data.idx import read_idx_dims
from specforge.data.mnist import FILES, MNIST_DIR
from specforge.data.sources import create as create_source
from specforge.graph.dag import Graph
from specforge.options.callbacks import CALLBACKS
from specforge.options.class_weights import class_index
from specforge.options.schedules import create
from specforge.spec import Spec


def training_option_problems(spec: Spec) -> list[Problem]:
    """What the spec's values alone tell: a schedule beside a callback that sets the learning rate, a
    piecewise schedule's values against its boundaries, class weights for a numeric target."""
    problems = _schedule_problems(spec)
    data = spec.config["data"]
    if (
        spec.config["fit"].get("class_weight") is not None
        and data.get("source") == "table"
        and data["target"]["type"] == "numeric"
    ):
        problems.append(
            Problem(
                "class_weight weighs classes and the target is numeric; use data.sample_weight to weight examples",
                spec.locate(("fit", "class_weight")),
            )
        )
    return problems


def training_problems(spec: Spec, graph: Graph) -> list[Problem]:
    """Class weights naming classes the model does not have."""
    setting = spec.config["fit"].get("class_weight")
    data = spec.config["data"]
    if not isinstance(setting, dict) or (data.get("source") == "table" and data["target"]["type"] == "numeric"):
        return []
    classes = max(graph.output_shape[-1], 2)
    names = data.get("class_names") or ()
    known = f"classes 0..{classes - 1}" + (f" or {', '.join(names)}" if names else "")
    return [
        Problem(
            f"class_weight names class {key!r}, which the model does not have; use {known}",
            spec.locate(("fit", "class_weight", key), at_key=True),
        )
        for key in setting
        if class_index(key, classes, names) is None
    ]


def _schedule_problems(spec: Spec) -> list[Problem]:
    rate = spec.config["compile"]["optimizer"]["learning_rate"]
    if not isinstance(rate, dict):
        return []
    callbacks = spec.config["fit"]["callbacks"]
    setters = [
        Problem(
            f"{item['type']} sets the learning rate, and compile.optimizer.learning_rate is a "
            "schedule; keep one of them",
            spec.locate(("fit", "callbacks", index)),
        )
        for index, item in enumerate(callbacks)
        if CALLBACKS[item["type"]].sets_learning_rate
    ]
    return _piecewise_problems(spec, rate) + setters


def _piecewise_problems(spec: Spec, rate: dict) -> list[Problem]:
    """piecewise_constant_decay needs one value more than boundaries, and increasing boundaries."""
    if rate["name"] != "piecewise_constant_decay":
        return []
    where = ("compile", "optimizer", "learning_rate")
    boundaries, values = rate["boundaries"], rate["values"]
    if len(values) != len(boundaries) + 1:
        return [
            Problem(
                f"{len(boundaries)} boundaries need {len(boundaries) + 1} values (one before the first "
                f"boundary, one after each), got {len(values)}",
                spec.locate((*where, "values")),
            )
        ]
    if any(later <= earlier for earlier, later in pairwise(boundaries)):
        return [Problem(f"the boundaries must increase, got {boundaries}", spec.locate((*where, "boundaries")))]
    return []


def check_warmup(spec: Spec, train_examples: int | None) -> None:
    """SpecError when the schedule's warmup takes more steps than training with ``train_examples`` examples does
    (nothing to check when that count is not known)."""
    rate = spec.config["compile"]["optimizer"]["learning_rate"]
    if train_examples is None or not isinstance(rate, dict):
        return
    fit = spec.config["fit"]
    steps = fit["epochs"] * math.ceil(train_examples / fit["batch_size"])
    warmup = create(rate).warmup_length()
    if warmup > steps:
        raise SpecError(
            problems=[
                Problem(
                    f"the warmup takes {warmup} steps but training takes {steps} ({fit['epochs']} epochs of "
                    f"{math.ceil(train_examples / fit['batch_size'])} batches); use warmup_steps <= {steps} or more epochs",
                    spec.locate(("compile", "optimizer", "learning_rate", "warmup_steps")),
                )
            ]
        )


def check_warmup_from_headers(spec: Spec, base_dir: Path) -> None:
    """``check_warmup`` with as many training examples as the data's headers tell, when there is a schedule."""
    if isinstance(spec.config["compile"]["optimizer"]["learning_rate"], dict):
        check_warmup(spec, known_train_examples(spec, base_dir))


def known_train_examples(spec: Spec, base_dir: Path) -> int | None:
    """At most how many training examples the data has, as far as its headers tell without reading it (the
    embedded MNIST, or labels small enough to read); None when they do not tell."""
    data = spec.config["data"]
    if data.get("source", "mnist") == "mnist":
        return read_idx_dims(MNIST_DIR / FILES["train_images"])[0]
    probes = create_source(data["source"]).probe(data, base_dir) or {}
    train = probes.get("train")
    return None if train is None or train.labels is None else len(train.labels)
