"""``data info`` of text (a text folder's documents, or a table's text column): the vocabulary, and per split the
documents' lengths in tokens, the empty ones and the share of tokens the vocabulary does not hold (what a user
needs to choose max_tokens and output_sequence_length)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from specforge.data.text.vectorize import OOV_ID, TextVectorizer

#: The length percentiles ``data info`` shows.
PERCENTILES = (50, 90, 95, 99, 100)


def split_text_info(vectorizer: TextVectorizer, texts: list[str]) -> dict:
    """One split's documents: count, empty ones, out-of-vocabulary share, length percentiles (in tokens, n-grams
    included) and, for ids, how many are cut at output_sequence_length."""
    rows = vectorizer.ids(texts)
    lengths = np.array([len(ids) for ids in rows], dtype=np.int64)
    oov = OOV_ID if vectorizer.output_mode == "int" else 0
    tokens = int(lengths.sum())
    info = {
        "documents": len(rows),
        "empty": int(np.sum(lengths == 0)),
        "tokens": tokens,
        "out_of_vocabulary": sum(ids.count(oov) for ids in rows) / tokens if tokens else 0.0,
        "length_percentiles": {str(p): float(np.percentile(lengths, p)) if len(lengths) else 0.0 for p in PERCENTILES},
    }
    if vectorizer.output_mode == "int":
        info["truncated"] = int(np.sum(lengths > vectorizer.sequence_length))
    return info


def text_info(vectorizer: TextVectorizer, documents: dict[str, list[str]], top: int = 10) -> dict:
    """The vectorizer's settings, vocabulary size, the ``top`` most frequent training tokens with their counts,
    and the ``split_text_info`` of each split's ``documents`` (by split name, ``train`` among them)."""
    counts = Counter(token for text in documents["train"] for token in vectorizer.tokens(text))
    return {
        "output_mode": vectorizer.output_mode,
        "output_sequence_length": vectorizer.output_sequence_length,
        "vocabulary_size": vectorizer.size,
        "most_frequent": [[token, counts[token]] for token in vectorizer.vocabulary[:top]],
        "splits": {name: split_text_info(vectorizer, texts) for name, texts in documents.items()},
    }
