"""Looking at a table: per column its type, missing cells, range or vocabulary, the target's balance or
distribution, the rows of each split and those left out (``data info``), and a PNG of histograms, one per
feature column and the target (``data show``)."""

from __future__ import annotations

import math
from io import BytesIO
from pathlib import Path

import numpy as np

from specforge.data.table.features import TablePipeline
from specforge.data.table.read import Table
from specforge.base.errors import DataError
from specforge.base.fileio import write_bytes

PANEL = (220, 120)
BINS = 20
#: Categories drawn per panel; the rest are summed into one last bar.
SHOWN_CATEGORIES = 12


def _numbers(values: np.ndarray) -> dict:
    present = values[~np.isnan(values)]
    if not present.size:
        return {"min": None, "max": None, "mean": None, "std": None}
    return {"min": float(present.min()), "max": float(present.max()), "mean": float(present.mean()),
            "std": float(present.std())}


def column_info(pipeline: TablePipeline, splits: dict[str, Table]) -> list[dict]:
    """Per feature column: its type, missing cells per split, and its range (numeric) or vocabulary size."""
    info = []
    for feature in pipeline.features:
        entry = {"column": feature.column, "type": feature.type, "encoded_width": feature.width,
                 "missing": {name: int(sum(cell is None for cell in table.column(feature.column)))
                             for name, table in splits.items()}}
        if feature.type == "numeric":
            entry.update(_numbers(splits["train"].numbers(feature.column)), scale=feature.scale, fill=feature.fill)
        else:
            entry.update(vocabulary_size=len(feature.vocabulary), vocabulary=feature.vocabulary[:SHOWN_CATEGORIES],
                         fill=feature.fill)
        info.append(entry)
    return info


def row_info(splits: dict[str, Table]) -> dict:
    """Which rows of which file each split holds, and the rows each file left out for a missing target: 0-based
    positions among the file's rows (the header not counted), as pandas numbers them, so that another tool can
    use the same split."""
    files: dict[str, list[int]] = {}
    for table in splits.values():
        files.setdefault(table.file, table.dropped.tolist())
    return {"split_rows": {name: {"file": table.file, "rows": table.index.tolist()} for name, table in splits.items()},
            "dropped_missing_target": files}


def target_info(pipeline: TablePipeline, splits: dict[str, Table]) -> dict:
    """The target's class counts per split, or its distribution per column and split (in its own units)."""
    target = pipeline.target
    if target.regression:
        return {"columns": target.columns, "type": target.type, "standardized": bool(target.mean),
                "distribution": {name: {column: _numbers(table.numbers(column)) for column in target.columns}
                                 for name, table in splits.items()}}
    counts = {}
    for name, table in splits.items():
        texts = table.texts(target.columns[0])
        counts[name] = {cls: int(np.sum(texts == cls)) for cls in target.classes}
    return {"columns": target.columns, "type": target.type, "classes": target.classes, "class_counts": counts}


def _panel(values: np.ndarray | list[str], title: str) -> object:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", PANEL, "white")
    draw = ImageDraw.Draw(image)
    if isinstance(values, np.ndarray):
        present = values[~np.isnan(values)]
        counts, edges = np.histogram(present, bins=BINS) if present.size else (np.zeros(BINS), np.zeros(BINS + 1))
        caption = f"{title}  {edges[0]:.4g}..{edges[-1]:.4g}"
    else:
        names, tallies = np.unique(np.array(values, dtype=object).astype(str), return_counts=True)
        order = np.argsort(-tallies, kind="stable")
        counts = tallies[order][:SHOWN_CATEGORIES]
        if len(order) > SHOWN_CATEGORIES:
            counts = np.append(counts, tallies[order][SHOWN_CATEGORIES:].sum())
        caption = f"{title}  {len(names)} values"
    top, bottom, width = 16, PANEL[1] - 4, (PANEL[0] - 8) / max(len(counts), 1)
    peak = max(float(np.max(counts, initial=0)), 1.0)
    for index, count in enumerate(counts):
        left = round(4 + index * width)
        right = round(4 + (index + 1) * width) - max(1, round(width / 10))
        draw.rectangle([left, round(bottom - (bottom - top) * count / peak), right, bottom], fill="steelblue")
    draw.text((4, 2), caption, fill="black")
    return image


def render_histograms(pipeline: TablePipeline, table: Table, path: Path) -> Path:
    """A PNG grid of histograms of ``table``'s raw values: each feature column, then the target column(s)."""
    from PIL import Image

    if not len(table):
        raise DataError("the split has no rows to draw", file=table.file)
    panels = []
    for column, numeric in dict((f.column, f.type == "numeric") for f in pipeline.features).items():
        values = table.numbers(column) if numeric else [t for t in table.texts(column) if t is not None]
        panels.append(_panel(values, column))
    for column in pipeline.target.columns:
        values = (table.numbers(column) if pipeline.target.regression
                  else [t for t in table.texts(column) if t is not None])
        panels.append(_panel(values, f"target {column}"))
    columns = math.ceil(math.sqrt(len(panels)))
    grid = Image.new("RGB", (columns * PANEL[0], math.ceil(len(panels) / columns) * PANEL[1]), "white")
    for index, panel in enumerate(panels):
        grid.paste(panel, ((index % columns) * PANEL[0], (index // columns) * PANEL[1]))
    buffer = BytesIO()
    grid.save(buffer, format="PNG")
    return write_bytes(Path(path), buffer.getvalue())
