"""Documents to model inputs with Keras' ``TextVectorization`` rules: standardize, split, n-grams, a vocabulary
learned on the training split, then token ids (``int``) or one vector per document (``multi_hot``, ``count``,
``tf_idf``).

What Keras does, and so what this does:

- ``lower`` lowers ASCII letters only (``tf.strings.lower``); ``lower_and_strip_punctuation`` then removes
  ASCII punctuation (Keras' ``DEFAULT_STRIP_REGEX``).
- ``whitespace`` splits on runs of ASCII whitespace; ``character`` gives each Unicode character.
- ``ngrams: n`` adds every n-gram of 2..n tokens, joined by a space, after the tokens.
- The vocabulary is ordered by count, most frequent first; tokens of the same count come in descending order
  of their UTF-8 bytes (Keras sorts with ``np.lexsort((tokens, counts))[::-1]``). ``max_tokens`` caps the
  vocabulary including its special entries.
- ``int``: id 0 is padding, 1 out of vocabulary, the tokens from 2. The other modes have no padding: index 0
  is out of vocabulary, the tokens from 1, and a document is one vector over the vocabulary.
- ``tf_idf``: the count times ``log(1 + documents / (1 + documents holding the token))`` on the training split;
  the out-of-vocabulary entry gets the mean of the tokens' weights.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from specforge.base.errors import DataError

STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation", "none")
SPLIT = ("whitespace", "character")
OUTPUT_MODES = ("int", "multi_hot", "count", "tf_idf")
PADDING_ID = 0
OOV_ID = 1

_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_WHITESPACE = re.compile(r"[ \t\n\r\x0b\x0c]+")

VECTORIZE_SCHEMA = {
    "type": "object",
    "description": "How documents become model inputs, with Keras' TextVectorization options and defaults; the "
    "vocabulary is learned on the training split and saved with the run.",
    "properties": {
        "standardize": {
            "enum": list(STANDARDIZE),
            "default": "lower_and_strip_punctuation",
            "description": "lower_and_strip_punctuation: lower ASCII letters and remove ASCII "
            "punctuation; lower; strip_punctuation; none. Default: "
            "lower_and_strip_punctuation.",
        },
        "split": {
            "enum": list(SPLIT),
            "default": "whitespace",
            "description": "whitespace: tokens are the runs between whitespace; character: every character "
            "is a token. Default: whitespace.",
        },
        "ngrams": {
            "type": ["integer", "null"],
            "minimum": 2,
            "default": None,
            "description": "Also count every run of 2 up to this many tokens as a token (joined by a "
            "space). Default: none, single tokens only.",
        },
        "max_tokens": {
            "type": ["integer", "null"],
            "minimum": 3,
            "default": None,
            "description": "Largest vocabulary, the special entries (padding and out of vocabulary for "
            "int, out of vocabulary otherwise) included; the most frequent tokens are "
            "kept. Default: every training token.",
        },
        "output_mode": {
            "enum": list(OUTPUT_MODES),
            "default": "int",
            "description": "int: a sequence of token ids per document (0 padding, 1 out of "
            "vocabulary), for Embedding; multi_hot: 1 for each vocabulary entry in the "
            "document; count: how often; tf_idf: the count times the entry's inverse "
            "document frequency. Default: int.",
        },
        "output_sequence_length": {
            "type": ["integer", "null"],
            "minimum": 1,
            "default": None,
            "description": "int only: documents are padded with 0 or cut at the end to "
            "this many ids. Default: the longest training document's "
            "length.",
        },
    },
    "additionalProperties": False,
    "default": {},
    "examples": [
        {"output_mode": "int", "output_sequence_length": 64, "max_tokens": 20000},
        {"output_mode": "tf_idf", "ngrams": 2},
    ],
}


def standardize(text: str, how: str) -> str:
    if how in ("lower", "lower_and_strip_punctuation"):
        text = text.translate(_ASCII_LOWER)
    if how in ("strip_punctuation", "lower_and_strip_punctuation"):
        text = _PUNCTUATION.sub("", text)
    return text


def split_tokens(text: str, how: str) -> list[str]:
    return list(text) if how == "character" else [token for token in _WHITESPACE.split(text) if token]


def with_ngrams(tokens: list[str], ngrams: int | None) -> list[str]:
    """``tokens`` followed by their 2..``ngrams``-grams, in Keras' order (all bigrams, then all trigrams...)."""
    grams = list(tokens)
    for width in range(2, (ngrams or 1) + 1):
        grams += [" ".join(tokens[start : start + width]) for start in range(len(tokens) - width + 1)]
    return grams


@dataclass
class TextVectorizer:
    """The options of ``VECTORIZE_SCHEMA`` (defaults filled), the learned vocabulary (without the special
    entries) and, for tf_idf, one weight per output index."""

    standardize: str = "lower_and_strip_punctuation"
    split: str = "whitespace"
    ngrams: int | None = None
    max_tokens: int | None = None
    output_mode: str = "int"
    output_sequence_length: int | None = None
    vocabulary: list[str] = field(default_factory=list)
    idf: list[float] | None = None

    @classmethod
    def from_options(cls, options: dict) -> TextVectorizer:
        """A vectorizer of ``data.vectorize`` (checked by the schema and ``specforge.graph.text_checks``)."""
        return cls(**options)

    def tokens(self, document: str) -> list[str]:
        """A document's tokens and n-grams after standardizing and splitting."""
        return with_ngrams(split_tokens(standardize(document, self.standardize), self.split), self.ngrams)

    @property
    def first_id(self) -> int:
        """The id of the most frequent token: after padding and out of vocabulary (int), or after the latter."""
        return 2 if self.output_mode == "int" else 1

    @property
    def size(self) -> int:
        """The vocabulary's size with its special entries: an Embedding's smallest input_dim (int), or the
        width of a document's vector."""
        return self.first_id + len(self.vocabulary)

    def fit(self, documents: Sequence[str], where: str = "data.train") -> TextVectorizer:
        """Learn the vocabulary (and the idf weights) from the training documents; ``where`` is the spec option
        that gives them, for the error when they hold no token."""
        tokenized = [self.tokens(document) for document in documents]
        counts = Counter(token for tokens in tokenized for token in tokens)
        ranked = sorted(counts, key=lambda token: (counts[token], token.encode()), reverse=True)
        if self.max_tokens is not None:
            ranked = ranked[: max(self.max_tokens - self.first_id, 0)]
        if not ranked:
            raise DataError("the training documents hold no tokens; give documents with text in them", path=where)
        self.vocabulary = ranked
        if self.output_mode == "tf_idf":
            holding = Counter(token for tokens in tokenized for token in set(tokens))
            weights = [float(np.log(1 + len(documents) / (1 + holding[token]))) for token in ranked]
            self.idf = [float(np.mean(weights)), *weights]
        if self.output_mode == "int" and self.output_sequence_length is None:
            self.output_sequence_length = max(1, max(len(tokens) for tokens in tokenized))
        return self

    @property
    def sequence_length(self) -> int:
        """The ids per document of ``output_mode`` int: ``output_sequence_length``, which ``fit`` sets when the
        options leave it out."""
        if self.output_sequence_length is None:
            raise ValueError("the vectorizer has not been fitted")
        return self.output_sequence_length

    @property
    def output_shape(self) -> tuple[int]:
        """A document's model input shape: ``(output_sequence_length,)`` ids or ``(size,)`` values."""
        return (self.sequence_length,) if self.output_mode == "int" else (self.size,)

    def ids(self, documents: Iterable[str]) -> list[list[int]]:
        """The ids of each document's tokens, unpadded (out-of-vocabulary tokens get ``OOV_ID``, or 0 in the
        modes without padding)."""
        index = {token: self.first_id + rank for rank, token in enumerate(self.vocabulary)}
        oov = OOV_ID if self.output_mode == "int" else 0
        return [[index.get(token, oov) for token in self.tokens(document)] for document in documents]

    def transform(self, documents: Iterable[str]) -> np.ndarray:
        """int64 ``(N, output_sequence_length)`` ids, or float32 ``(N, size)`` vectors."""
        rows = self.ids(documents)
        if self.output_mode == "int":
            length = self.sequence_length
            out = np.full((len(rows), length), PADDING_ID, dtype=np.int64)
            for row, ids in zip(out, rows):
                row[: min(len(ids), length)] = ids[:length]
            return out
        out = np.zeros((len(rows), self.size), dtype=np.float32)
        for row, ids in zip(out, rows):
            np.add.at(row, ids, 1.0)
        if self.output_mode == "multi_hot":
            return np.minimum(out, 1.0)
        if self.output_mode == "tf_idf":
            out *= np.asarray(self.idf, dtype=np.float32)
        return out

    def to_dict(self) -> dict:
        return {
            "standardize": self.standardize,
            "split": self.split,
            "ngrams": self.ngrams,
            "max_tokens": self.max_tokens,
            "output_mode": self.output_mode,
            "output_sequence_length": self.output_sequence_length,
            "vocabulary": list(self.vocabulary),
            "idf": self.idf,
        }

    @classmethod
    def from_dict(cls, data: dict) -> TextVectorizer:
        return cls(**data)
