"""Values a binary column never held in training.  A binary column encodes its second training value as 1 and
anything else as 0, so an unseen value reads as the first one (0), as scikit-learn's ``handle_unknown='ignore'``
encodes it, in Python, the ONNX graph, Node and the browser alike.  That is the documented encoding, but rarely
what a row with ``maybe`` in a yes/no column means: where specforge reads such rows itself (``predict`` on a
rows file, ``data info``), it says how many there are."""

from __future__ import annotations

from collections import Counter

from specforge.data.table_features import TablePipeline
from specforge.data.table_read import Table

#: Unseen values named in a warning; the rest are counted.
SHOWN = 3


def unseen_counts(pipeline: TablePipeline, table: Table) -> dict[str, Counter]:
    """Per binary feature column of ``table`` with values training never saw: how often each occurs."""
    counts = {}
    for feature in pipeline.features:
        if feature.type == "binary":
            unseen = Counter(text for text in table.texts(feature.column)
                             if text is not None and text not in feature.vocabulary)
            if unseen:
                counts[feature.column] = unseen
    return counts


def unseen_binary_notes(pipeline: TablePipeline, table: Table) -> list[str]:
    """One sentence per binary column of ``table`` holding values training never saw."""
    vocabularies = {feature.column: feature.vocabulary for feature in pipeline.features}
    notes = []
    for column, unseen in unseen_counts(pipeline, table).items():
        vocabulary = vocabularies[column]
        named = ", ".join(repr(value) for value, _ in unseen.most_common(SHOWN))
        more = f" and {len(unseen) - SHOWN} more" if len(unseen) > SHOWN else ""
        notes.append(f"binary column {column!r} ({' / '.join(vocabulary)} in training) has {sum(unseen.values())} "
                     f"{'row' if sum(unseen.values()) == 1 else 'rows'} with other values ({named}{more}), "
                     f"read as 0, as {vocabulary[0]!r} is; declare the column categorical to tell them apart")
    return notes


__all__ = ["unseen_binary_notes", "unseen_counts"]
