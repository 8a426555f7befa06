"""The parity gate: an exported model must compute what the numpy forward computes.

Both run on the same batch of real data: the numpy ``Model`` on the preprocessed
images, onnxruntime on raw values when the preprocessing is in the graph (a text model: the raw
documents in, the run's saved vocabulary vectorizing them for numpy).  The
outputs (each of them, for a model of several) must agree within ``RTOL``/``ATOL`` and the predicted
classes on every example.  When they do not, each prefix of the graph is exported and compared
with the numpy output of the same layers, and the first layer whose output
differs is named.  Intermediate tensors can be large (raw 0-255 pixels give
activations in the hundreds), so that search scales the absolute tolerance by
each tensor's largest magnitude.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from specforge.base.errors import ExportError
from specforge.export.onnx import DEFAULT_OPSET, INPUT_NAME, PROBABILITIES, export_graph
from specforge.export.text import TEXT_INPUT
from specforge.graph.model import Model
from specforge.predict.session import make_session

if TYPE_CHECKING:
    import onnx

    from specforge.data.preprocessing import Preprocessing
    from specforge.data.text.vectorize import TextVectorizer
    from specforge.graph.dag import Graph
    from specforge.layers.base import Params

RTOL = 1e-4
ATOL = 1e-5
#: The smallest batch the gate runs on.
MIN_EXAMPLES = 256


@dataclass
class ParityResult:
    """How the exported model's outputs compare with the numpy forward's on ``examples`` inputs."""

    examples: int
    max_abs_diff: float
    classes_agree: int
    passed: bool
    rtol: float = RTOL
    atol: float = ATOL
    #: the data the batch came from, e.g. "mnist test[0:256]"
    data: str = ""
    #: the first layer (``name (Type)``) whose ONNX output differs, when the gate failed
    first_mismatch: str | None = None
    #: False for a regression, whose outputs are numbers, not class scores
    classes: bool = True

    def summary(self) -> str:
        return (
            f"{self.examples} examples{f' of {self.data}' if self.data else ''}: max abs difference "
            f"{self.max_abs_diff:.3g} (rtol {self.rtol:g}, atol {self.atol:g})"
            + (f", classes agree on {self.classes_agree}/{self.examples}" if self.classes else "")
        )

    def failure(self) -> str:
        """The ExportError message of a failed gate."""
        if self.first_mismatch is None:
            where = "no single layer's output differs beyond float32 rounding; the differences add up along the network"
        else:
            where = f"the first layer whose ONNX output differs from the numpy forward is {self.first_mismatch}"
        return f"parity check failed on {self.summary()}; {where}; nothing was written"

    def to_dict(self) -> dict:
        return asdict(self)


def check_parity(
    graph: Graph,
    params: Sequence[Params],
    model: onnx.ModelProto,
    raw: np.ndarray,
    preprocessing: Preprocessing,
    *,
    in_graph: bool,
    opset: int = DEFAULT_OPSET,
    data: str = "",
) -> ParityResult:
    """Compare ``model`` (made by ``export_graph``) under onnxruntime with the numpy forward on ``raw``.

    ``raw`` holds stored values (``(N, ...)``, any dtype); ``in_graph`` says whether ``model``
    contains ``preprocessing``.  A failed comparison comes back with ``first_mismatch`` set.
    """
    x = preprocessing.images(raw)
    feed = _feed(raw, x, in_graph)
    expected = _expected(graph, params, x, data)
    result = _compared(_run(model.SerializeToString(), INPUT_NAME, feed, _names(graph, expected)), expected, data)
    if not result.passed:
        result.first_mismatch = first_mismatch(graph, params, x, feed, preprocessing if in_graph else None, opset)
    return result


def check_text_parity(
    graph: Graph,
    params: Sequence[Params],
    model: onnx.ModelProto,
    vectorizer: TextVectorizer,
    texts: Sequence[str],
    *,
    opset: int = DEFAULT_OPSET,
    data: str = "",
) -> ParityResult:
    """Compare a text model taking raw documents (``export.text.text_model``) under onnxruntime with the run's
    vectorizer and the numpy forward on ``texts``.  When they differ, the model's own vectorization is read on
    the documents: ids other than the vectorizer's are reported as ``the text vectorization``, else the first
    layer that differs is searched for as ``check_parity`` does."""
    x = vectorizer.transform(texts)
    documents = np.array(list(texts), dtype=object)
    expected = _expected(graph, params, x, data)
    got = _run(model.SerializeToString(), TEXT_INPUT, documents, _names(graph, expected))
    result = _compared(got, expected, data)
    if not result.passed:
        result.first_mismatch = (
            first_mismatch(graph, params, x, x, None, opset)
            if np.array_equal(_vectorized(model, documents, x.dtype), x)
            else "the text vectorization"
        )
    return result


def _vectorized(model: onnx.ModelProto, documents: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """What the vectorization in ``model`` gives the network for ``documents``: its tensor ``input``, made an
    output of a copy of the model."""
    from onnx import helper

    probe = type(model)()
    probe.CopyFrom(model)
    element = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    probe.graph.output.append(helper.make_tensor_value_info(INPUT_NAME, element, None))
    return make_session(probe.SerializeToString()).run([INPUT_NAME], {TEXT_INPUT: documents})[0]


def _expected(graph: Graph, params: Sequence[Params], x: np.ndarray, data: str) -> list[np.ndarray]:
    """The numpy forward's outputs on the model inputs ``x``; ExportError when one is not finite."""
    expected = Model(graph, list(params)).outputs(x)
    if not all(np.all(np.isfinite(each)) for each in expected):
        raise ExportError(
            f"the numpy forward gives NaN or infinite outputs on {data or 'the parity batch'}; "
            "the weights are not usable (did training diverge?); nothing was written"
        )
    return expected


def _names(graph: Graph, expected: list[np.ndarray]) -> list[str]:
    """The exported model's output names: ``probabilities`` for one output, the model's output names for several."""
    return [PROBABILITIES] if len(expected) == 1 else list(graph.output_names)


def _compared(got: list[np.ndarray], expected: list[np.ndarray], data: str) -> ParityResult:
    """Every output within the tolerances and every example's class agreeing in each output."""
    agreeing = np.logical_and.reduce([a.argmax(axis=-1) == b.argmax(axis=-1) for a, b in zip(got, expected)])
    agree = int(np.sum(agreeing))
    close = all(np.allclose(a, b, rtol=RTOL, atol=ATOL) for a, b in zip(got, expected))
    examples = len(expected[0])
    difference = max(_max_abs_diff(a, b) for a, b in zip(got, expected))
    return ParityResult(examples, difference, agree, close and agree == examples, data=data)


def first_mismatch(
    graph: Graph,
    params: Sequence[Params],
    x: np.ndarray,
    feed: np.ndarray,
    preprocessing: Preprocessing | None,
    opset: int = DEFAULT_OPSET,
) -> str | None:
    """``name (Type)`` of the first node, in topological order, whose exported prefix (the graph up to that
    node, with its output as the output) differs from the numpy forward (or ``"the preprocessing"``); None
    when every prefix agrees within the scaled tolerance."""
    numpy_model = Model(graph, list(params))
    for until in range(0 if preprocessing is not None else 1, len(graph.nodes) + 1):  # no preprocessing: 0 is x
        expected = numpy_model.forward(x, until=until)
        prefix = export_graph(graph, params, opset=opset, preprocessing=preprocessing, until=until)
        (got,) = _run(prefix.SerializeToString(), INPUT_NAME, feed, [PROBABILITIES])
        scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
        if got.shape != expected.shape or not np.allclose(got, expected, rtol=RTOL, atol=ATOL * scale):
            if until == 0:
                return "the preprocessing"
            layer = graph.nodes[until - 1].layer
            return f"{layer.name!r} ({layer.type})"
    return None


def _feed(raw: np.ndarray, x: np.ndarray, in_graph: bool) -> np.ndarray:
    """The model's input: raw values in the input's dtype and shape, or the preprocessed batch ``x``."""
    return np.asarray(raw, dtype=x.dtype).reshape(x.shape) if in_graph else x


def _run(model_bytes: bytes, input_name: str, feed: np.ndarray, names: Sequence[str]) -> list[np.ndarray]:
    session = make_session(model_bytes)
    return list(session.run(list(names), {input_name: feed}))


def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b), initial=0.0))
