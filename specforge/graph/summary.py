"""The model summary that ``validate`` prints: one row per layer, indented under the block instances they
sit in, with the layers each one is connected to (as Keras prints a functional model), and totals."""

from __future__ import annotations

import io

from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from specforge.graph.dag import Graph, SummaryRow
from specforge.spec import Spec
from specforge.spec.model_io import model_outputs


def human(count: float, unit: str) -> str:
    """(22381056, 'FLOP') -> '22.4 MFLOP'; (608, 'FLOP') -> '608 FLOP'."""
    for prefix, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {prefix}{unit}"
    return f"{int(count)} {unit}"


def summary_json(spec: Spec, graph: Graph) -> dict:
    return {
        "valid": True,
        "file": spec.file,
        "name": spec.name,
        "input_shape": list(graph.input_shape),
        "layers": [
            {
                "name": row.name,
                "type": row.type,
                "output_shape": list(row.output_shape),
                "params": row.params,
                "flops": row.flops,
                "connected_to": row.connected_to,
                "blocks": list(row.blocks),
            }
            for row in graph.summary()
        ],
        "warnings": [warning.to_json() for warning in graph.warnings],
        "total_params": graph.total_params,
        "trainable_params": graph.trainable_params,
        "total_flops": graph.total_flops,
    }


def _interface(spec: Spec, graph: Graph) -> str:
    """The model's input (``input (28, 28, 1)``), or its named inputs and outputs with their shapes."""
    dtypes = graph.input_dtypes
    if "inputs" not in spec.config["model"] and "outputs" not in spec.config["model"]:
        return f"input {graph.input_shape}" + ("" if dtypes[0] == "float32" else f" of {dtypes[0]} ids")
    inputs = ", ".join(
        f"{source.name} {source.shape}" + ("" if dtype == "float32" else f" of {dtype} ids")
        for source, dtype in zip(graph.model_inputs, dtypes)
    )
    outputs = ", ".join(
        f"{output.name} {graph.nodes[node].output_shape}"
        for output, node in zip(model_outputs(spec.config), graph.output_nodes)
    )
    return f"inputs {inputs}; outputs {outputs}"


def summary_parts(spec: Spec, graph: Graph) -> list[RenderableType]:
    """The summary as rich renderables (the table, the totals, the verdict), for a console to print (see
    ``fit_width``)."""
    lines = summary_lines(graph.summary())
    table = Table(title=f"{spec.name}: {_interface(spec, graph)}", title_justify="left")
    # a layer's name and kind are never cut short, on a narrow terminal either
    table.add_column("Layer (type)", no_wrap=True, min_width=max(len(cells[0]) for cells in lines))
    table.add_column("Output shape")
    table.add_column("Params", justify="right")
    table.add_column("FLOPs / example", justify="right")
    rows = graph.summary()
    branching = any(
        row.connected_to != [previous] for row, previous in zip(rows, ["input"] + [row.name for row in rows])
    )
    if branching:
        table.add_column("Connected to")
    for cells in lines:
        table.add_row(*cells[:4], *cells[4:] if branching else ())
    table.add_section()
    table.add_row("Total", "", f"{graph.total_params:,}", f"{graph.total_flops:,}")
    non_trainable = graph.total_params - graph.trainable_params
    return [
        table,
        Text(
            f"Trainable params: {graph.trainable_params:,}; non-trainable: {non_trainable:,}; "
            f"forward {human(graph.total_flops, 'FLOP')} per example"
        ),
        Text(f"{spec.file}: valid", style="green"),
    ]


def fit_width(console: Console, parts: list[RenderableType]) -> None:
    """A console that is not a terminal (a file, a pipe, a string) gets the whole table, however wide."""
    if not console.is_terminal:
        console.width = max(
            console.width, Measurement.get(console, console.options.update_width(10_000), parts[0]).maximum
        )


def summary_text(spec: Spec, graph: Graph) -> str:
    """The summary as plain text (a notebook's ``print(run.summary())``)."""
    text = io.StringIO()
    console = Console(file=text, color_system=None, emoji=False)
    parts = summary_parts(spec, graph)
    fit_width(console, parts)
    for part in parts:
        console.print(part, soft_wrap=isinstance(part, Text))
    return text.getvalue()


def summary_lines(rows: list[SummaryRow]) -> list[tuple[str, ...]]:
    """The summary's cells: a heading for each block instance (with its parameter count) and, indented
    under it, its layers by their short names; a layer's inputs from its own block instance are named
    short, others in full."""
    lines: list[tuple[str, ...]] = []
    shown: set[str] = set()
    for row in rows:
        parts = row.name.split("/")
        for depth in range(len(parts) - 1):
            instance = "/".join(parts[: depth + 1])
            if instance not in shown:
                shown.add(instance)
                params = sum(other.params for other in rows if other.name.startswith(instance + "/"))
                lines.append((f"{'  ' * depth}{parts[depth]} ({row.blocks[depth]})", "", f"{params:,}", "", ""))
        scope = row.name[: len(row.name) - len(parts[-1])]
        sources = [
            source[len(scope) :] if scope and source.startswith(scope) else source for source in row.connected_to
        ]
        lines.append(
            (
                f"{'  ' * (len(parts) - 1)}{parts[-1]} ({row.type})",
                str(row.output_shape),
                f"{row.params:,}",
                f"{row.flops:,}",
                ", ".join(sources),
            )
        )
    return lines
