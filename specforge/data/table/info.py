"""Looking at a table: per column its type, missing cells, range or vocabulary (a text column's as the text
folder's ``data info`` shows it: most frequent tokens, empty documents, lengths, out-of-vocabulary share per
split), values a binary column never held in training, the target's balance or distribution, the rows of each split and those left out (``data info``), and
a PNG of histograms, one per feature column and the target (``data show``)."""

from __future__ import annotations

import math
from collections import Counter
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from specforge.base.errors import DataError
from specforge.base.fileio import write_bytes
from specforge.data.table.features import Feature, TablePipeline
from specforge.data.table.read import Table
from specforge.data.text.info import text_info

if TYPE_CHECKING:
    from PIL import Image, ImageDraw

PANEL = (260, 150)
BINS = 20
#: Categories drawn per panel; the rest are summed into one last bar.
SHOWN_CATEGORIES = 12
#: Pixels: the thickest a category's bar is drawn, and the space between panels.
MAX_BAR_HEIGHT = 18
GAP = 10
FONT_SIZE = 11
#: Values a binary column never held in training named in a warning; the rest are counted.
SHOWN_UNSEEN = 3


def _numbers(values: np.ndarray) -> dict:
    present = values[~np.isnan(values)]
    if not present.size:
        return {"min": None, "max": None, "mean": None, "std": None}
    return {
        "min": float(present.min()),
        "max": float(present.max()),
        "mean": float(present.mean()),
        "std": float(present.std()),
    }


def unseen_counts(pipeline: TablePipeline, table: Table) -> dict[str, Counter]:
    """Per binary feature column of ``table`` with values training never saw: how often each occurs.  A binary
    column encodes its second training value as 1 and anything else as 0, so an unseen value reads as the first
    one, as scikit-learn's ``handle_unknown='ignore'`` encodes it, in Python, the ONNX graph, Node and the
    browser alike: the documented encoding, but rarely what ``maybe`` in a yes/no column means, so ``data info``
    counts such rows and ``predict`` on a rows file warns of them."""
    counts = {}
    for feature in pipeline.features:
        if feature.type == "binary":
            unseen = Counter(
                text for text in table.texts(feature.column) if text is not None and text not in feature.vocabulary
            )
            if unseen:
                counts[feature.column] = unseen
    return counts


def unseen_binary_notes(pipeline: TablePipeline, table: Table) -> list[str]:
    """One sentence per binary column of ``table`` holding values training never saw."""
    vocabularies = {feature.column: feature.vocabulary for feature in pipeline.features}
    notes = []
    for column, unseen in unseen_counts(pipeline, table).items():
        vocabulary = vocabularies[column]
        named = ", ".join(repr(value) for value, _ in unseen.most_common(SHOWN_UNSEEN))
        more = f" and {len(unseen) - SHOWN_UNSEEN} more" if len(unseen) > SHOWN_UNSEEN else ""
        notes.append(
            f"binary column {column!r} ({' / '.join(vocabulary)} in training) has {sum(unseen.values())} "
            f"{'row' if sum(unseen.values()) == 1 else 'rows'} with other values ({named}{more}), "
            f"read as 0, as {vocabulary[0]!r} is; declare the column categorical to tell them apart"
        )
    return notes


def column_info(pipeline: TablePipeline, splits: dict[str, Table]) -> list[dict]:
    """Per feature column: its type, missing cells per split, and its range (numeric) or vocabulary size."""
    info = []
    for feature in pipeline.features:
        entry = {
            "column": feature.column,
            "type": feature.type,
            "encoded_width": feature.width,
            "missing": {
                name: int(sum(cell is None for cell in table.column(feature.column))) for name, table in splits.items()
            },
        }
        if feature.vectorizer is not None:
            entry["text"] = text_info(
                feature.vectorizer, {name: feature.documents(table) for name, table in splits.items()}
            )
        elif feature.type == "numeric":
            entry.update(_numbers(splits["train"].numbers(feature.column)), scale=feature.scale, fill=feature.fill)
        elif feature.type == "image":
            entry.update(shape=feature.shape, rescale=feature.rescale)
        else:
            entry.update(
                vocabulary_size=len(feature.vocabulary),
                vocabulary=feature.vocabulary[:SHOWN_CATEGORIES],
                fill=feature.fill,
            )
        if feature.type == "binary":  # rows whose value training never saw, read as 0 (unseen_counts)
            entry["unseen"] = {
                name: sum(unseen_counts(pipeline, table).get(feature.column, {}).values())
                for name, table in splits.items()
            }
        info.append(entry)
    return info


def row_info(splits: dict[str, Table]) -> dict:
    """Which rows of which file each split holds, and the rows each file left out for a missing target: 0-based
    positions among the file's rows (the header not counted), as pandas numbers them, so that another tool can
    use the same split."""
    files: dict[str, list[int]] = {}
    for table in splits.values():
        files.setdefault(table.file, table.dropped.tolist())
    return {
        "split_rows": {name: {"file": table.file, "rows": table.index.tolist()} for name, table in splits.items()},
        "dropped_missing_target": files,
    }


def target_info(pipeline: TablePipeline, splits: dict[str, Table]) -> dict:
    """The target's class counts per split, or its distribution per column and split (in its own units)."""
    target = pipeline.target
    if target.regression:
        return {
            "columns": target.columns,
            "type": target.type,
            "standardized": bool(target.mean),
            "distribution": {
                name: {column: _numbers(table.numbers(column)) for column in target.columns}
                for name, table in splits.items()
            },
        }
    counts = {}
    for name, table in splits.items():
        texts = table.texts(target.columns[0])
        counts[name] = {cls: int(np.sum(texts == cls)) for cls in target.classes}
    return {"columns": target.columns, "type": target.type, "classes": target.classes, "class_counts": counts}


def column_panel(values: np.ndarray | list[str], title: str) -> Image.Image:
    """One column's picture: a histogram of a numeric column with its range, or a bar per category (the most
    frequent first, the rest summed into one bar) labelled with the category and its count."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", PANEL, "white")
    draw = ImageDraw.Draw(image)
    draw.font = _font()
    top, bottom = 20, PANEL[1] - 4
    if isinstance(values, np.ndarray):
        present = values[~np.isnan(values)]
        counts, edges = np.histogram(present, bins=BINS) if present.size else (np.zeros(BINS), np.zeros(BINS + 1))
        draw.text((4, 2), f"{title}: {edges[0]:.4g} to {edges[-1]:.4g}", fill="black")
        width, peak = (PANEL[0] - 8) / BINS, max(float(np.max(counts, initial=0)), 1.0)
        for index, count in enumerate(counts):
            bar_left = round(4 + index * width)
            bar_right = round(4 + (index + 1) * width) - max(1, round(width / 10))
            draw.rectangle(
                [bar_left, round(bottom - (bottom - top) * count / peak), bar_right, bottom], fill="steelblue"
            )
        return image
    names, tallies = np.unique(np.array(values, dtype=object).astype(str), return_counts=True)
    order = np.argsort(-tallies, kind="stable")
    bars = [(str(names[i]), int(tallies[i])) for i in order[:SHOWN_CATEGORIES]]
    if len(order) > SHOWN_CATEGORIES:
        bars.append((f"{len(order) - SHOWN_CATEGORIES} others", int(tallies[order][SHOWN_CATEGORIES:].sum())))
    draw.text((4, 2), f"{title}: {len(names)} values", fill="black")
    label_width = min(max(draw.textlength(name) for name, _ in bars), PANEL[0] * 0.4)
    count_width = max(draw.textlength(f"{count:,}") for _, count in bars)
    left, right = 4 + label_width + 4, PANEL[0] - 4 - count_width - 4
    height, peak = min((bottom - top) / len(bars), MAX_BAR_HEIGHT), max(count for _, count in bars)
    for index, (name, count) in enumerate(bars):
        y = top + index * height
        middle = y + height / 2
        draw.text((4, middle), _fitted(draw, name, label_width), fill="black", anchor="lm")
        draw.rectangle(
            [left, round(y + 1), left + max(1, round((right - left) * count / peak)), round(y + height - 1)],
            fill="steelblue",
        )
        draw.text((PANEL[0] - 4, middle), f"{count:,}", fill="black", anchor="rm")
    return image


def _font():
    """DejaVu Sans where the system has it (Pillow looks among the system's fonts), whose letters cover the
    accented names categories have (rosé); else Pillow's own scalable font."""
    from PIL import ImageFont

    try:
        return ImageFont.truetype("DejaVuSans.ttf", FONT_SIZE)
    except OSError:
        return ImageFont.load_default(size=FONT_SIZE)


def _fitted(draw: ImageDraw.ImageDraw, text: str, width: float) -> str:
    """``text``, shortened with an ellipsis to fit ``width`` pixels where it is longer."""
    if draw.textlength(text) <= width:
        return text
    while text and draw.textlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def target_title(column: str) -> str:
    """The title of a target column's panel."""
    return f"{column} (target)"


def _feature_panel(feature: Feature, table: Table) -> Image.Image:
    """A feature column's picture: the histogram of a numeric column or of a text column's documents' lengths in
    tokens, or a bar per category."""
    if feature.vectorizer is not None:
        lengths = [len(ids) for ids in feature.vectorizer.ids(feature.documents(table))]
        return column_panel(np.asarray(lengths, dtype=np.float64), f"{feature.column} (tokens)")
    if feature.type == "numeric":
        return column_panel(table.numbers(feature.column), feature.column)
    return column_panel([t for t in table.texts(feature.column) if t is not None], feature.column)


def render_histograms(pipeline: TablePipeline, table: Table, path: Path) -> Path:
    """A PNG grid of histograms of ``table``'s raw values: each feature column, then the target column(s)."""
    from PIL import Image

    if not len(table):
        raise DataError("the split has no rows to draw", file=table.file)
    panels: list[Image.Image] = []
    for feature in {f.column: f for f in pipeline.features if f.type != "image"}.values():  # paths: no histogram
        panels.append(_feature_panel(feature, table))
    for column in pipeline.target.columns:
        values = (
            table.numbers(column) if pipeline.target.regression else [t for t in table.texts(column) if t is not None]
        )
        panels.append(column_panel(values, target_title(column)))
    columns = math.ceil(math.sqrt(len(panels)))
    step = (PANEL[0] + GAP, PANEL[1] + GAP)
    grid = Image.new("RGB", (columns * step[0] + GAP, math.ceil(len(panels) / columns) * step[1] + GAP), "#e4e4e4")
    for index, panel in enumerate(panels):
        grid.paste(panel, (GAP + (index % columns) * step[0], GAP + (index // columns) * step[1]))
    buffer = BytesIO()
    grid.save(buffer, format="PNG")
    return write_bytes(Path(path), buffer.getvalue())
