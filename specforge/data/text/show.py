"""``data show`` of a text source: examples as the model sees them, written as text: each document's class,
its text and its token ids (or, for a bag-of-words mode, its nonzero vocabulary entries)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from specforge.base.fileio import write_text
from specforge.data.splits import Split
from specforge.data.text.vectorize import PADDING_ID, TextVectorizer

#: Characters of a document shown before it is cut.
SHOWN_CHARACTERS = 200


def example_lines(split: Split, vectorizer: TextVectorizer, class_names: tuple[str, ...], count: int) -> list[str]:
    """Three lines per example (the first ``count``): index and class, the document, its model input."""
    entries = ["[OOV]", *vectorizer.vocabulary] if vectorizer.output_mode != "int" else []
    lines = []
    for index in range(min(count, len(split))):
        text = " ".join((split.texts or [""] * len(split))[index].split())
        cut = text[:SHOWN_CHARACTERS] + (" ..." if len(text) > SHOWN_CHARACTERS else "")
        row = split.images[index]
        if vectorizer.output_mode == "int":
            used = np.flatnonzero(row != PADDING_ID)
            ids = row[: used[-1] + 1] if used.size else row[:0]
            model_input = f"ids: {' '.join(map(str, ids))}" + (
                f" (+{len(row) - len(ids)} padding)" if len(ids) < len(row) else ""
            )
        else:
            model_input = f"{vectorizer.output_mode}: " + ", ".join(
                f"{entries[i]} {row[i]:.4g}" for i in np.flatnonzero(row)
            )
        label = int(split.labels[index]) if split.labels is not None else None
        lines += [
            f"{split.name}[{index}] class {label} ({class_names[label] if label is not None else '?'})",
            f"  text: {cut}",
            f"  {model_input}",
        ]
    return lines


def write_examples(
    split: Split, vectorizer: TextVectorizer, class_names: tuple[str, ...], path: Path, count: int
) -> Path:
    return write_text(path, "\n".join(example_lines(split, vectorizer, class_names, count)) + "\n")
