"""A text model's ONNX interface: raw documents in (``text``, a string tensor ``[N]``), the whole vectorization
inside the graph, in standard ONNX operators only, so that the same document gets the same token ids in Python,
under onnxruntime, onnxruntime-node and onnxruntime-web.

Standard ONNX has no regex replace, and ``StringNormalizer`` lowers more than ASCII under onnxruntime-web
(Keras' ``lower`` lowers ASCII letters only), so characters are replaced the one way every runtime agrees on:
``StringSplit`` on the character, then the pieces joined again (by a ``Loop`` of ``StringConcat``) with the
replacement between them.  The steps, each what ``specforge.data.text.vectorize`` does:

1. split the documents on each ASCII whitespace character (space, ``\\t``, ``\\n``, ``\\r``, ``\\v``, ``\\f``) and
   keep the non-empty pieces, in order (a sort on ``(empty, position)``): the tokens, ``[N, L]``;
2. lower ASCII letters (``A`` becomes ``a``, ...) and remove ASCII punctuation in every token, then drop the
   tokens left empty (Keras strips punctuation before splitting; stripping never adds or removes whitespace, so
   splitting first gives the same tokens);
3. n-grams: the tokens joined by a space, 2 up to ``ngrams`` at a time, after the tokens;
4. the vocabulary lookup (``ai.onnx.ml`` ``LabelEncoder``; out of vocabulary: ``OOV_ID``, or 0 in the modes
   without padding);
5. ``int``: the ids, padded with 0 or cut to ``output_sequence_length``; the other modes: per document, a count
   per vocabulary entry (``ScatterElements`` adding ones), capped at 1 (``multi_hot``) or times the idf weights
   (``tf_idf``).

A ``character`` split makes every Unicode character a token, and no standard operator splits a string into
characters: such a model is not exported with raw strings (``check_expressible``).

The same nodes (``vectorized``) vectorize a table's text columns (``specforge.export.table``), each under a
prefix of its own in the table's graph.
"""

from __future__ import annotations

import string

import numpy as np
import onnx
from onnx import TensorProto, compose, helper

from specforge.base.errors import ExportError
from specforge.data.text.vectorize import OOV_ID, PADDING_ID, TextVectorizer
from specforge.export.onnx import INPUT_NAME, IR_VERSIONS, check_model
from specforge.export.subgraph import ML_DOMAIN, ML_OPSET, Subgraph

#: The graph's input: one document per string.
TEXT_INPUT = "text"
#: The smallest default-domain opset with ``StringSplit`` and ``StringConcat``.
TEXT_OPSET = 20
#: Keras' whitespace (``specforge.data.text.vectorize``), the space last: what the tokens are split on.
WHITESPACE = "\t\n\r\x0b\x0c "
PUNCTUATION = string.punctuation
UPPERCASE = string.ascii_uppercase


def check_expressible(vectorizer: TextVectorizer, where: str = "data.vectorize") -> None:
    """Refuse a vectorization that standard ONNX operators cannot compute from raw strings (``where``: its
    ``vectorize`` options in the spec)."""
    if vectorizer.split == "character":
        raise ExportError(
            "a text model that splits documents into characters (vectorize.split: character) cannot take raw "
            "strings in ONNX (no standard operator splits a string into characters); use split: whitespace",
            path=f"{where}.split",
        )


class TextGraph(Subgraph):
    """The vectorization's nodes, with the shape helpers the steps share; ``prefix`` names them (a table's text
    column has its own, so that several columns' vectorizations sit in one graph)."""

    def __init__(self, prefix: str = "text") -> None:
        super().__init__(prefix)
        self.zero = self.ints([0], "zero")
        self.one = self.ints([1], "one")
        self.flat = self.ints([-1], "flat")
        self.empty = self.constant(np.array([""], dtype=object), "empty")

    def dim(self, tensor: str, axis: int) -> str:
        """The size of ``tensor``'s ``axis``, as a one-element int64 tensor."""
        return self.node("Shape", [tensor], "dim", start=axis, end=axis + 1)

    def split(self, tokens: str, rows: str, separator: str) -> str:
        """``[N, W]`` strings split on ``separator``, the pieces of a row in order: ``[N, W * pieces]``."""
        flat = self.node("Reshape", [tokens, self.flat], "flat")
        pieces = self.nodes_of("StringSplit", [flat], "pieces", 2, delimiter=separator)[0]
        return self.node("Reshape", [pieces, self.node("Concat", [rows, self.flat], "shape", axis=0)], "split")

    def compact(self, values: str, keep: str) -> tuple[str, str]:
        """Each row's kept values first, in order, and the row cut to the most any row keeps; with the mask of
        kept entries, of the same shape."""
        width = self.dim(values, 1)
        position = self.node(
            "Range", [self.ints(0, "start"), self.node("Squeeze", [width], "width"), self.ints(1, "step")], "position"
        )
        dropped = self.node("Cast", [self.node("Not", [keep], "dropped")], "dropped_int", to=TensorProto.INT64)
        key = self.node("Add", [position, self.node("Mul", [dropped, width], "past_kept")], "key")
        order = self.nodes_of("TopK", [key, width], "order", 2, axis=1, largest=0, sorted=1)[1]
        kept = self.node("Cast", [keep], "kept_int", to=TensorProto.INT64)
        most = self.node("ReduceMax", [self.node("ReduceSum", [kept, self.one], "count", keepdims=0)], "most")
        cut = self.node("Slice", [order, self.zero, self.node("Reshape", [most, self.one], "most_1"), self.one], "cut")
        return (
            self.node("GatherElements", [values, cut], "compacted", axis=1),
            self.node("GatherElements", [keep, cut], "compacted_keep", axis=1),
        )

    def non_empty(self, tokens: str) -> str:
        return self.node("Not", [self.node("Equal", [tokens, self.empty], "is_empty")], "non_empty")

    def replace(self, tokens: str, character: str, by: str) -> str:
        """``tokens`` (``[M]``) with every ``character`` replaced by ``by`` (removed when ``by`` is empty)."""
        pieces, counts = self.nodes_of("StringSplit", [tokens], "pieces", 2, delimiter=character)
        trips = self.node("Squeeze", [self.dim(pieces, 1)], "trips")
        start = self.node("Expand", [self.empty, self.node("Shape", [tokens], "rows")], "start")
        return self.node("Loop", [trips, "", start], "replaced", body=_join_body(pieces, counts, by))


def _join_body(pieces: str, counts: str, by: str) -> onnx.GraphProto:
    """A Loop body appending piece ``i`` of each row to the row's string so far, with ``by`` before it where the
    row has that piece and one before it (``StringSplit`` pads short rows with empty pieces)."""
    body = Subgraph(f"{pieces}/join")
    piece = body.node("Gather", [pieces, "i"], "piece", axis=1)
    if by:
        held = body.node(
            "And",
            [body.node("Greater", ["i", body.ints(0, "zero")], "not_first"), body.node("Less", ["i", counts], "held")],
            "between",
        )
        separator = body.node(
            "Where",
            [held, body.constant(np.array(by, dtype=object), "by"), body.constant(np.array("", dtype=object), "none")],
            "separator",
        )
        piece = body.node("StringConcat", [separator, piece], "with_separator")
    body.nodes.append(helper.make_node("StringConcat", ["so_far", piece], ["next"], name=body.name("append")))
    body.nodes.append(helper.make_node("Identity", ["condition"], ["condition_out"], name=body.name("go_on")))
    return helper.make_graph(
        body.nodes,
        "join",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("condition", TensorProto.BOOL, []),
            helper.make_tensor_value_info("so_far", TensorProto.STRING, ["M"]),
        ],
        [
            helper.make_tensor_value_info("condition_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("next", TensorProto.STRING, ["M"]),
        ],
        body.initializers,
    )


def _tokens(graph: TextGraph, documents: str, vectorizer: TextVectorizer) -> tuple[str, str]:
    """The standardized, non-empty tokens ``[N, L]`` of ``documents`` (``[N]``) and their mask (a prefix of each
    row)."""
    rows = graph.dim(documents, 0)
    tokens = graph.node("Unsqueeze", [documents, graph.one], "documents")
    for separator in WHITESPACE:
        tokens, _ = graph.compact(split := graph.split(tokens, rows, separator), graph.non_empty(split))
    replacements = []
    if vectorizer.standardize in ("lower", "lower_and_strip_punctuation"):
        replacements += [(upper, upper.lower()) for upper in UPPERCASE]
    if vectorizer.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
        replacements += [(mark, "") for mark in PUNCTUATION]
    if replacements:
        tokens = _standardized(graph, tokens, replacements)
    return graph.compact(tokens, graph.non_empty(tokens))


def _standardized(graph: TextGraph, tokens: str, replacements: list[tuple[str, str]]) -> str:
    """``tokens`` with each replacement made, on the distinct tokens only (``Unique``; a corpus repeats its
    words), then put back in place."""
    shape = graph.node("Shape", [tokens], "token_shape")
    distinct, _, where, _ = graph.nodes_of(
        "Unique", [graph.node("Reshape", [tokens, graph.flat], "all_tokens")], "distinct", 4, sorted=0
    )
    for character, by in replacements:
        distinct = graph.replace(distinct, character, by)
    standardized = graph.node("Gather", [distinct, where], "standardized")
    return graph.node("Reshape", [standardized, shape], "in_place", allowzero=1)  # [N, 0]: no tokens at all


def _with_ngrams(graph: TextGraph, tokens: str, keep: str, ngrams: int | None) -> tuple[str, str]:
    """The tokens followed by their 2..``ngrams``-grams (those of a row that fit in its tokens kept)."""
    if not ngrams:
        return tokens, keep
    parts, masks = [tokens], [keep]
    space = graph.constant(np.array(" ", dtype=object), "space")
    for width in range(2, ngrams + 1):
        columns = [_columns(graph, tokens, offset, offset - width + 1 or _TO_THE_END) for offset in range(width)]
        gram = columns[0]
        for column in columns[1:]:
            gram = graph.node("StringConcat", [graph.node("StringConcat", [gram, space], "spaced"), column], "gram")
        parts.append(gram)
        masks.append(_columns(graph, keep, width - 1, _TO_THE_END))
    return graph.node("Concat", parts, "grams", axis=1), graph.node("Concat", masks, "grams_keep", axis=1)


#: A Slice's end past the last column.
_TO_THE_END = int(np.iinfo(np.int64).max)


def _columns(graph: TextGraph, tensor: str, start: int, end: int) -> str:
    """``tensor[:, start:end]``."""
    return graph.node("Slice", [tensor, graph.ints([start], "start"), graph.ints([end], "end"), graph.one], "columns")


def _lookup(graph: TextGraph, tokens: str, vectorizer: TextVectorizer) -> str:
    oov = OOV_ID if vectorizer.output_mode == "int" else 0
    return graph.node(
        "LabelEncoder",
        [tokens],
        "ids",
        domain=ML_DOMAIN,
        keys_strings=list(vectorizer.vocabulary),
        values_int64s=list(range(vectorizer.first_id, vectorizer.size)),
        default_int64=oov,
    )


def _sequence(graph: TextGraph, ids: str, keep: str, length: int) -> str:
    """Each row's ids, padded with ``PADDING_ID`` or cut to ``length``."""
    ids, _ = graph.compact(graph.node("Where", [keep, ids, graph.ints(PADDING_ID, "padding")], "masked"), keep)
    padding = graph.node(
        "ConstantOfShape",
        [graph.node("Concat", [graph.dim(ids, 0), graph.ints([length], "length")], "padding_shape", axis=0)],
        "padding",
        value=helper.make_tensor("padding_id", TensorProto.INT64, [1], [PADDING_ID]),
    )
    padded = graph.node("Concat", [ids, padding], "padded", axis=1)
    return graph.node("Slice", [padded, graph.zero, graph.ints([length], "length"), graph.one], "sequence")


def _bag(graph: TextGraph, ids: str, keep: str, vectorizer: TextVectorizer) -> str:
    """Each row's count per vocabulary entry (the dropped entries add 0), then its mode's vector."""
    zeros = graph.node(
        "ConstantOfShape",
        [graph.node("Concat", [graph.dim(ids, 0), graph.ints([vectorizer.size], "size")], "bag_shape", axis=0)],
        "zeros",
        value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]),
    )
    ones = graph.node("Cast", [keep], "ones", to=TensorProto.FLOAT)
    counts = graph.node("ScatterElements", [zeros, ids, ones], "counts", axis=1, reduction="add")
    if vectorizer.output_mode == "multi_hot":
        return graph.node("Min", [counts, graph.floats([1.0], "one_float")], "multi_hot")
    if vectorizer.output_mode == "tf_idf":
        return graph.node("Mul", [counts, graph.floats(vectorizer.idf or [], "idf")], "tf_idf")
    return counts


def vectorized(graph: TextGraph, documents: str, vectorizer: TextVectorizer) -> str:
    """The nodes vectorizing ``documents`` (``[N]`` strings) added to ``graph``; the vectors' name: int64 ids
    ``[N, output_sequence_length]`` (``output_mode: int``), else float32 ``[N, vocabulary size]``."""
    check_expressible(vectorizer)
    tokens, keep = _tokens(graph, documents, vectorizer)
    tokens, keep = _with_ngrams(graph, tokens, keep, vectorizer.ngrams)
    ids = _lookup(graph, tokens, vectorizer)
    if vectorizer.output_mode == "int":
        return _sequence(graph, ids, keep, vectorizer.sequence_length)
    return _bag(graph, ids, keep, vectorizer)


def vectors_info(name: str, vectorizer: TextVectorizer) -> onnx.ValueInfoProto:
    """The type and shape of ``vectorized``'s output, under ``name``."""
    if vectorizer.output_mode == "int":
        return helper.make_tensor_value_info(name, TensorProto.INT64, ["N", vectorizer.sequence_length])
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", vectorizer.size])


def text_preprocessing(vectorizer: TextVectorizer) -> onnx.ModelProto:
    """The vectorization alone: ``text`` ``[N]`` strings to the network's ``input``."""
    graph = TextGraph()
    last = vectorized(graph, TEXT_INPUT, vectorizer)
    graph.nodes.append(helper.make_node("Identity", [last], [INPUT_NAME], name="text/vectorized"))
    text = helper.make_tensor_value_info(TEXT_INPUT, TensorProto.STRING, ["N"])
    text.doc_string = "one raw document per string (UTF-8); the graph standardizes, splits and looks up its tokens"
    return helper.make_model(
        helper.make_graph(graph.nodes, "text", [text], [vectors_info(INPUT_NAME, vectorizer)], graph.initializers),
        opset_imports=[helper.make_opsetid("", TEXT_OPSET), helper.make_opsetid(ML_DOMAIN, ML_OPSET)],
        ir_version=IR_VERSIONS[TEXT_OPSET],
    )


def text_model(network: onnx.ModelProto, vectorizer: TextVectorizer) -> onnx.ModelProto:
    """The exported network (input ``input``) wrapped so that it takes raw documents (``text``)."""
    preprocessing = text_preprocessing(vectorizer)
    preprocessing.ir_version = network.ir_version  # the network's opset may be later than the vectorization's
    model = compose.merge_models(preprocessing, network, io_map=[(INPUT_NAME, INPUT_NAME)])
    model.graph.doc_string = network.graph.doc_string
    model.producer_name, model.producer_version = network.producer_name, network.producer_version
    check_model(model)
    return model
