"""A picture of a model's graph: Graphviz DOT text (one box per spec layer with its kind and output shape,
the layers of each block instance in a labelled frame, an arrow per input), drawn as SVG or PNG by
Graphviz's ``dot`` tool when the file asked for is an image."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from specforge.base.errors import SpecError
from specforge.base.fileio import atomic_open, write_text
from specforge.graph.dag import Graph, SummaryRow

IMAGE_FORMATS = ("svg", "png")


def graph_dot(graph: Graph, title: str) -> str:
    """The DOT text of ``graph``: layers top to bottom, each block instance a cluster."""
    lines = [
        f"digraph {_quote(title)} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="Helvetica", fontsize=10];',
        '  edge [color="#555555"];',
        *(
            f'  {_quote(source.name)} [label={_quote(f"{source.name}{chr(10)}{source.shape}")}, fillcolor="#ffffff"];'
            for source in graph.model_inputs
        ),
    ]
    rows = graph.summary()
    _clusters(rows, lines, prefix="", depth=1)
    for row in rows:
        for source in row.connected_to:
            lines.append(f"  {_quote(source)} -> {_quote(row.name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _clusters(rows: list[SummaryRow], lines: list[str], prefix: str, depth: int) -> None:
    """Nodes of ``rows`` directly in block instance ``prefix``; a nested cluster per instance inside it."""
    pad = "  " * depth
    seen: list[str] = []
    for row in rows:
        if not row.name.startswith(prefix):
            continue
        rest = row.name[len(prefix) :]
        if "/" not in rest:
            label = f"{rest}\n{row.type}\n{row.output_shape}"
            lines.append(f"{pad}{_quote(row.name)} [label={_quote(label)}];")
            continue
        instance = prefix + rest.split("/")[0] + "/"
        if instance in seen:
            continue
        seen.append(instance)
        block = next(r.blocks[depth - 1] for r in rows if r.name.startswith(instance))
        lines.append(f"{pad}subgraph {_quote('cluster_' + instance[:-1])} {{")
        lines.append(
            f'{pad}  label={_quote(f"{instance[len(prefix) : -1]} ({block})")}; style="rounded,dashed"; '
            'color="#8899aa"; fontname="Helvetica"; fontsize=10;'
        )
        _clusters(rows, lines, instance, depth + 1)
        lines.append(f"{pad}}}")


def _quote(text: str) -> str:
    """A DOT string: double-quoted with JSON's escapes (DOT reads \\n as a line break in labels)."""
    return json.dumps(str(text))


def write_picture(graph: Graph, title: str, path: str | Path) -> Path:
    """Write the picture of ``graph`` to ``path``: DOT text for .dot (or .gv), an image drawn by ``dot`` for
    .svg or .png; SpecError naming what would work when the suffix is another or ``dot`` is missing."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    text = graph_dot(graph, title)
    if suffix in ("dot", "gv"):
        return write_text(path, text)
    if suffix not in IMAGE_FORMATS:
        raise SpecError(
            f"cannot draw the graph as {suffix or 'a suffix-less file'}; name a .dot, .svg or .png file", file=str(path)
        )
    tool = shutil.which("dot")
    if tool is None:
        raise SpecError(
            "drawing an image needs Graphviz's dot tool (Debian: apt-get install graphviz); or name a "
            ".dot file and draw it elsewhere",
            file=str(path),
        )
    drawn = subprocess.run([tool, f"-T{suffix}"], input=text.encode(), capture_output=True, timeout=120)
    if drawn.returncode:
        raise SpecError(
            f"dot could not draw the graph: {drawn.stderr.decode(errors='replace').strip()[:200]}", file=str(path)
        )
    with atomic_open(path, "wb") as handle:
        handle.write(drawn.stdout)
    return path
