"""How ``specforge validate`` shows a spec: the model summary (the layer table, the totals and the verdict), as
text or JSON, and the picture of its graph."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from specforge.graph.dag import Graph
from specforge.graph.picture import write_picture
from specforge.graph.summary import fit_width, summary_json, summary_parts
from specforge.spec import Spec

__all__ = ["print_summary", "summary_json", "write_picture"]


def print_summary(spec: Spec, graph: Graph) -> None:
    """The model summary ``validate`` prints: the layer table, the totals and the verdict.

    Its cells are names, shapes and counts, never emoji codes (``:smile:``), which names cannot hold: the console
    does not look for them, which would load rich's table of every emoji."""
    console = Console(emoji=False)
    parts = summary_parts(spec, graph)
    fit_width(console, parts)
    for part in parts:
        console.print(part, soft_wrap=isinstance(part, Text))
