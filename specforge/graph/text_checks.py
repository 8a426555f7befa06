"""Checks of text options that span several values: ``vectorize`` options that go only with ``output_mode:
int`` or only with a text column, a table's text column of token ids beside other columns (in the model's one
input, or in one of ``data.inputs``), each of a table's model inputs against whether it is fed ids, and a model whose
input is integer ids (a kind with ``input_dtype = "int"``, Embedding) against its data: only text vectorized
to ``output_mode: int`` (a ``text_folder`` source, or a table's text column) gives ids, and a vocabulary larger
than a layer's ``input_dim`` would give ids the layer has no row for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from specforge.base.errors import Problem
from specforge.graph.dag import Graph
from specforge.spec import Spec
from specforge.spec.model_io import model_inputs
from specforge.spec.reader import SpecPath

if TYPE_CHECKING:
    from specforge.data.splits import DataShape

#: The source whose data can be token ids.
TEXT_SOURCE = "text_folder"
TABLE_SOURCE = "table"


def _vectorizings(data: dict) -> list[tuple[SpecPath, dict]]:
    """Where the spec vectorizes text, and the options: ``data.vectorize`` of a text folder, or each table text
    column's ``vectorize``."""
    if data.get("source") == TEXT_SOURCE:
        return [(("data", "vectorize"), data.get("vectorize") or {})]
    if data.get("source") == TABLE_SOURCE:
        return [
            (("data", "features", index, "vectorize"), feature.get("vectorize") or {})
            for index, feature in enumerate(data["features"])
            if feature["type"] == "text"
        ]
    return []


def vectorize_problems(spec: Spec) -> list[Problem]:
    """``output_sequence_length`` given with a bag-of-words ``output_mode``, which makes one vector per document;
    a table's ``vectorize`` or ``fill`` where they do not apply, and its text column of ids beside others."""
    problems = [
        Problem(
            f"output_sequence_length applies to output_mode int only, and output_mode is {mode}; leave "
            "output_sequence_length out",
            spec.locate((*where, "output_sequence_length")),
        )
        for where, options in _vectorizings(spec.config["data"])
        if (mode := options.get("output_mode", "int")) != "int" and options.get("output_sequence_length") is not None
    ]
    return problems + _table_text_problems(spec)


def _table_text_problems(spec: Spec) -> list[Problem]:
    data = spec.config["data"]
    if data.get("source") != TABLE_SOURCE:
        return []
    features = data["features"]
    problems = []
    for index, feature in enumerate(features):
        where = ("data", "features", index)
        if feature["type"] != "text":
            if "vectorize" in feature:
                problems.append(
                    Problem(
                        f"vectorize applies to text columns and column {feature['column']!r} is {feature['type']}; "
                        "add type: text, or leave vectorize out",
                        spec.locate((*where, "vectorize")),
                    )
                )
            continue
        for option in ("fill", "fill_value"):
            if option in feature:
                problems.append(
                    Problem(
                        f"a text column's missing cells are empty documents (data info counts them); leave {option} "
                        "out",
                        spec.locate((*where, option)),
                    )
                )
        if _gives_ids(feature) and len(features) > 1 and not data.get("inputs"):
            problems.append(
                Problem(
                    f"text column {feature['column']!r} gives token ids (output_mode int), which are the model's "
                    f"whole input, and data.features lists {len(features)} columns; list it alone, give it a model "
                    "input of its own (model.inputs and data.inputs), or give it vectorize.output_mode multi_hot, "
                    "count or tf_idf to put it beside the other columns",
                    spec.locate(where),
                )
            )
    return problems + _mixed_group_problems(spec)


def _gives_ids(feature: dict) -> bool:
    """Whether a table feature is a text column of token ids (``output_mode: int``, the default)."""
    return feature["type"] == "text" and (feature.get("vectorize") or {}).get("output_mode", "int") == "int"


def _mixed_group_problems(spec: Spec) -> list[Problem]:
    """A group of ``data.inputs`` holding a text column of token ids beside other columns: a model input has one
    dtype, and ids are not values."""
    data = spec.config["data"]
    ids = {feature["column"] for feature in data["features"] if _gives_ids(feature)}
    values = {feature["column"] for feature in data["features"] if not _gives_ids(feature)}
    problems = []
    for name, group in (data.get("inputs") or {}).items():
        taken = [column for column in group if column in ids]
        if not taken or not values & set(group):
            continue
        column = taken[0]
        where = spec.locate(("data", "inputs", name, group.index(column)))
        if column in values:
            message = (
                f"column {column!r} is listed as token ids (output_mode int) and as values, and data.inputs feeds a "
                f"column's features to one input, {name!r}, of one dtype; keep one of the column's text features"
            )
        else:
            others = ", ".join(repr(other) for other in group if other in values)
            message = (
                f"column {column!r} gives token ids (output_mode int) and input {name!r} takes the values of "
                f"{others} too; give the ids a model input of their own (data.inputs.{column}: [{column}] with an "
                "Embedding taking it), or give the column vectorize.output_mode multi_hot, count or tf_idf"
            )
        problems.append(Problem(message, where))
    return problems
    return problems


def _id_column(data: dict) -> int | None:
    """The index of a table's text column of token ids, or None."""
    return next((index for index, feature in enumerate(data["features"]) if _gives_ids(feature)), None)


def id_input_problems(spec: Spec, graph: Graph, shape: DataShape | None) -> list[Problem]:
    """What is wrong with the data the kinds taking the model's ids get: floats, or ids past their table."""
    data = spec.config["data"]
    source = data.get("source", "mnist")
    if source == TABLE_SOURCE and data.get("inputs"):
        problems = _input_dtype_problems(spec, graph)
        if problems:
            return problems
    nodes = [node for node in graph.nodes if node.layer.input_dtype == "int" and min(node.inputs) < 0]
    if not nodes:
        return []
    if source == TABLE_SOURCE:
        column = _id_column(data)
        if column is None:
            return [
                Problem(
                    f"{node.layer.type} takes integer token ids and the table's columns give values, not ids; "
                    "use a text column with output_mode: int, such as features: [{column: message, type: text}] "
                    "(output_mode int is the default)",
                    spec.locate(node.path),
                )
                for node in nodes
            ]
        learned = f"column {data['features'][column]['column']!r} of {data['train']}"
        cap = f"data.features[{column}].vectorize.max_tokens"
    else:
        mode = (data.get("vectorize") or {}).get("output_mode", "int") if source == TEXT_SOURCE else None
        if mode != "int":
            gives = f"vectorizes to {mode} values, not ids" if mode else "gives values, not ids"
            return [
                Problem(
                    f"{node.layer.type} takes integer token ids and data source {source} {gives}; use "
                    f"source: {TEXT_SOURCE} with vectorize.output_mode: int, or a table's text column with "
                    "output_mode: int",
                    spec.locate(node.path),
                )
                for node in nodes
            ]
        learned, cap = data["train"], "vectorize.max_tokens"
    size = shape.vocabulary_size if shape else None
    return [
        Problem(
            f"input_dim {node.layer.config['input_dim']} is smaller than the vocabulary's {size} ids "
            f"(padding 0 and out-of-vocabulary 1 included) learned from {learned}; use input_dim: "
            f"{size}, or cap the vocabulary with {cap}: {node.layer.config['input_dim']}",
            spec.locate((*node.path, "input_dim")),
        )
        for node in nodes
        if size is not None and node.layer.config.get("input_dim", size) < size
    ]


def _input_dtype_problems(spec: Spec, graph: Graph) -> list[Problem]:
    """Each model input a table's ``data.inputs`` feeds against what its layers take: the token ids of a text
    column (``output_mode: int``) for int64 inputs (Embedding), values for the others."""
    if graph.input_dtype_conflict() is not None:
        return []  # the graph's own error says it
    data = spec.config["data"]
    ids = {feature["column"] for feature in data["features"] if _gives_ids(feature)}
    values = {feature["column"] for feature in data["features"] if not _gives_ids(feature)}
    problems = []
    for source, dtype in zip(model_inputs(spec.config), graph.input_dtypes):
        columns = data["inputs"].get(source.name) or []
        group = set(columns)
        if not group or (ids & group and values & group):
            continue  # fed by nothing, or ids mixed with values: io_problems and _mixed_group_problems say it
        gives_ids, takes_ids = group <= ids, dtype == "int64"
        if gives_ids and not takes_ids:
            problems.append(
                Problem(
                    f"data.inputs.{source.name} gives the token ids of column {columns[0]!r} (output_mode int) and "
                    f"the layers taking input {source.name!r} take values; take it with an Embedding, or give the "
                    "column vectorize.output_mode multi_hot, count or tf_idf",
                    spec.locate(source.path, at_key=True),
                )
            )
        elif takes_ids and not gives_ids:
            problems.append(
                Problem(
                    f"input {source.name!r} takes integer token ids (Embedding) and data.inputs.{source.name} "
                    "gives values; feed it one text column of output_mode int (the default), alone, or take it "
                    "with layers of values (Dense)",
                    spec.locate(source.path, at_key=True),
                )
            )
    return problems
