"""Documents to model inputs as Keras' TextVectorization computes them: standardization, splitting, n-grams,
the vocabulary's order and cap, padding and out-of-vocabulary ids, and the bag-of-words modes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from specforge.base.errors import DataError
from specforge.data.text.vectorize import (
    OOV_ID,
    PADDING_ID,
    TextVectorizer,
    standardize,
    with_ngrams,
)


def test_lowering_and_stripping_touch_ascii_only_as_tf_strings_does():
    text = "Héllo, WORLD! Ünïcode's (fine) - Straße"
    assert standardize(text, "lower_and_strip_punctuation") == "héllo world Ünïcodes fine  straße"
    assert standardize(text, "lower") == "héllo, world! Ünïcode's (fine) - straße"
    assert standardize(text, "strip_punctuation") == "Héllo WORLD Ünïcodes fine  Straße"
    assert standardize(text, "none") == text


def test_splitting_on_whitespace_runs_or_into_characters():
    assert TextVectorizer().tokens("  One\ttwo\n\nthree  ") == ["one", "two", "three"]
    assert TextVectorizer(split="character").tokens("Ab c") == ["a", "b", " ", "c"]


def test_ngrams_follow_the_tokens_up_to_their_width():
    assert with_ngrams(["a", "b", "c"], 3) == ["a", "b", "c", "a b", "b c", "a b c"]
    assert with_ngrams(["a", "b"], None) == ["a", "b"]
    assert TextVectorizer(ngrams=2).tokens("x y") == ["x", "y", "x y"]


def test_the_vocabulary_is_ordered_by_count_then_by_descending_bytes_as_keras_sorts_ties():
    vectorizer = TextVectorizer().fit(["b a c", "a b", "c d", "e"])
    # a, b, c twice; d, e once; ties in descending byte order (np.lexsort((tokens, counts))[::-1] in Keras)
    assert vectorizer.vocabulary == ["c", "b", "a", "e", "d"]
    assert vectorizer.size == 7


def test_int_ids_start_after_padding_and_out_of_vocabulary_and_pad_or_cut_at_the_end():
    vectorizer = TextVectorizer(output_sequence_length=3).fit(["b a c", "a b", "c d", "e"])
    ids = vectorizer.transform(["a b c d e", "a zzz", ""])
    assert (PADDING_ID, OOV_ID) == (0, 1)
    np.testing.assert_array_equal(ids, [[4, 3, 2], [4, OOV_ID, PADDING_ID], [0, 0, 0]])
    assert ids.dtype == np.int64


def test_the_sequence_length_defaults_to_the_longest_training_document():
    vectorizer = TextVectorizer().fit(["a b c d", "a"])
    assert vectorizer.output_sequence_length == 4
    assert vectorizer.output_shape == (4,)


def test_max_tokens_counts_the_special_entries():
    int_mode = TextVectorizer(max_tokens=4).fit(["a a a b b c"])
    assert int_mode.vocabulary == ["a", "b"] and int_mode.size == 4
    counts = TextVectorizer(max_tokens=3, output_mode="count").fit(["a a a b b c"])
    assert counts.vocabulary == ["a", "b"] and counts.size == 3


def test_multi_hot_and_count_put_out_of_vocabulary_tokens_at_index_0():
    docs = ["a a b", "b c"]
    multi_hot = TextVectorizer(output_mode="multi_hot").fit(docs)
    assert multi_hot.vocabulary == ["b", "a", "c"]
    np.testing.assert_array_equal(multi_hot.transform(["a a z", "c"]), [[1, 0, 1, 0], [0, 0, 0, 1]])
    count = TextVectorizer(output_mode="count").fit(docs)
    np.testing.assert_array_equal(count.transform(["a a z z z", "b"]), [[3, 0, 2, 0], [0, 1, 0, 0]])


def test_tf_idf_weighs_counts_by_the_training_documents_holding_each_token():
    docs = ["a a b", "b c", "b"]
    vectorizer = TextVectorizer(output_mode="tf_idf").fit(docs)
    assert vectorizer.vocabulary == ["b", "a", "c"]
    weights = [math.log(1 + 3 / (1 + held)) for held in (3, 1, 1)]
    expected_idf = [sum(weights) / 3, *weights]
    np.testing.assert_allclose(vectorizer.idf, expected_idf)
    np.testing.assert_allclose(
        vectorizer.transform(["a a q"]), [[expected_idf[0], 0, 2 * expected_idf[2], 0]], rtol=1e-6
    )


def test_a_fitted_vectorizer_survives_its_saved_form():
    vectorizer = TextVectorizer(output_mode="tf_idf", ngrams=2, max_tokens=10).fit(["a b c", "b c d"])
    again = TextVectorizer.from_dict(vectorizer.to_dict())
    assert again == vectorizer
    np.testing.assert_array_equal(again.transform(["c d e"]), vectorizer.transform(["c d e"]))


def test_training_documents_without_tokens_are_refused():
    with pytest.raises(DataError, match="hold no tokens"):
        TextVectorizer().fit(["...", "  !"])
