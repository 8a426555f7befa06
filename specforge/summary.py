"""The model summary that ``validate`` prints: one row per layer, with totals."""

from __future__ import annotations

from specforge.graph import Graph
from specforge.spec import Spec


def human(count: float) -> str:
    """22381056 -> '22.4 M'."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return str(int(count))


def summary_json(spec: Spec, graph: Graph) -> dict:
    return {
        "valid": True,
        "file": spec.file,
        "name": spec.name,
        "input_shape": list(graph.input_shape),
        "layers": [
            {"name": row.name, "type": row.type, "output_shape": list(row.output_shape),
             "params": row.params, "flops": row.flops}
            for row in graph.summary()
        ],
        "total_params": graph.total_params,
        "trainable_params": graph.trainable_params,
        "total_flops": graph.total_flops,
    }


def print_summary(spec: Spec, graph: Graph) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{spec.name}: input {graph.input_shape}", title_justify="left")
    table.add_column("Layer (type)")
    table.add_column("Output shape")
    table.add_column("Params", justify="right")
    table.add_column("FLOPs / example", justify="right")
    for row in graph.summary():
        table.add_row(f"{row.name} ({row.type})", str(row.output_shape), f"{row.params:,}", f"{row.flops:,}")
    table.add_section()
    table.add_row("Total", "", f"{graph.total_params:,}", f"{graph.total_flops:,}")
    console.print(table)
    non_trainable = graph.total_params - graph.trainable_params
    console.print(f"Trainable params: {graph.trainable_params:,}; non-trainable: {non_trainable:,}; "
                  f"forward {human(graph.total_flops)}FLOP per example", soft_wrap=True)
    console.print(f"[green]{spec.file}: valid[/green]", soft_wrap=True)
