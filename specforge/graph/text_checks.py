"""Checks of text options that span several values: ``vectorize`` options that go only with ``output_mode:
int``, and a model whose input is integer ids (a kind with ``input_dtype = "int"``, Embedding) against its
data: only a text source vectorizing to ``output_mode: int`` gives ids, and a vocabulary larger than a
layer's ``input_dim`` would give ids the layer has no row for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from specforge.base.errors import Problem
from specforge.graph.dag import Graph
from specforge.spec import Spec

if TYPE_CHECKING:
    from specforge.data.splits import DataShape

#: The source whose data can be token ids.
TEXT_SOURCE = "text_folder"


def vectorize_problems(spec: Spec) -> list[Problem]:
    """``output_sequence_length`` given with a bag-of-words ``output_mode``, which makes one vector per document."""
    vectorize = spec.config["data"].get("vectorize") or {}
    mode = vectorize.get("output_mode", "int")
    if mode == "int" or vectorize.get("output_sequence_length") is None:
        return []
    return [
        Problem(
            f"output_sequence_length applies to output_mode int only, and output_mode is {mode}; leave "
            "output_sequence_length out",
            spec.locate(("data", "vectorize", "output_sequence_length")),
        )
    ]


def id_input_problems(spec: Spec, graph: Graph, shape: DataShape | None) -> list[Problem]:
    """What is wrong with the data the kinds taking the model's ids get: floats, or ids past their table."""
    nodes = [node for node in graph.nodes if node.layer.input_dtype == "int" and min(node.inputs) < 0]
    if not nodes:
        return []
    data = spec.config["data"]
    source = data.get("source", "mnist")
    mode = (data.get("vectorize") or {}).get("output_mode", "int") if source == TEXT_SOURCE else None
    if mode != "int":
        gives = f"vectorizes to {mode} values, not ids" if mode else "gives values, not ids"
        return [
            Problem(
                f"{node.layer.type} takes integer token ids and data source {source} {gives}; use "
                f"source: {TEXT_SOURCE} with vectorize.output_mode: int",
                spec.locate(node.path),
            )
            for node in nodes
        ]
    size = shape.vocabulary_size if shape else None
    return [
        Problem(
            f"input_dim {node.layer.config['input_dim']} is smaller than the vocabulary's {size} ids "
            f"(padding 0 and out-of-vocabulary 1 included) learned from {data['train']}; use input_dim: "
            f"{size}, or cap the vocabulary with vectorize.max_tokens: {node.layer.config['input_dim']}",
            spec.locate((*node.path, "input_dim")),
        )
        for node in nodes
        if size is not None and node.layer.config.get("input_dim", size) < size
    ]
