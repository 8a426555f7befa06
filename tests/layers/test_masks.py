"""Keras' masks of the padding: made by ``Embedding(mask_zero: true)``, passed on by the per-step kinds, taken by
the recurrent kinds, attention and GlobalAveragePooling1D (``Layer.masking``); the numpy math against the
unpadded sequences it stands for, its gradients against central differences, and ONNX against numpy."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from helpers import numerical_gradient
from onnx.reference import ReferenceEvaluator

from specforge.export.onnx import graph_to_onnx
from specforge.graph.dag import Graph, infer_graph
from specforge.graph.model import Model
from specforge.layers import REGISTRY
from specforge.spec import load_spec

RECURRENT = ["SimpleRNN", "LSTM", "GRU"]
#: rows of ids, 0 the padding: trailing (what vectorization makes), leading, in the middle, none, all
IDS = np.array([[3, 4, 5, 0, 0, 0], [0, 0, 2, 1, 5, 0], [2, 0, 3, 0, 0, 4], [1, 2, 3, 4, 5, 1], [0] * 6])


def layer(kind: str, **options):
    return REGISTRY[kind].from_options(options)


def model(steps: int, *layers, seed: int = 0) -> Model:
    return Model.initialize(Graph.chain((steps,), list(layers)), np.random.default_rng(seed))


def embedding(mask_zero: bool = True):
    return layer("Embedding", input_dim=6, output_dim=3, mask_zero=mask_zero)


def unpadded(masked: Model, head, ids: np.ndarray) -> np.ndarray:
    """``masked``'s output for the ids other than 0 alone, by a model of the same weights without a mask."""
    real = ids[ids != 0]
    plain = Model(Graph.chain((len(real),), [embedding(False), head]), masked.get_weights())
    return plain.forward(real[None])[0]


def test_every_kind_says_what_it_does_with_a_mask():
    for kind, cls in REGISTRY.items():
        assert cls.masking in ("none", "pass", "take"), kind
    takes = {kind for kind, cls in REGISTRY.items() if cls.masking == "take"}
    assert takes == {"SimpleRNN", "LSTM", "GRU", "Bidirectional", "MultiHeadAttention", "GlobalAveragePooling1D"}


@pytest.mark.parametrize("kind", RECURRENT)
@pytest.mark.parametrize("go_backwards", [False, True])
def test_a_recurrent_layer_skips_masked_steps_wherever_they_are(kind, go_backwards):
    head = layer(kind, units=4, go_backwards=go_backwards)
    masked = model(6, embedding(), head)
    out = masked.forward(IDS)
    for row, ids in enumerate(IDS[:4]):
        np.testing.assert_allclose(out[row], unpadded(masked, head, ids), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[4], 0)  # nothing counts: the initial state


@pytest.mark.parametrize("kind", RECURRENT)
def test_masked_steps_output_the_step_before_and_bidirectional_zeros(kind):
    alone = model(6, embedding(), layer(kind, units=2, return_sequences=True))
    out = alone.forward(IDS)
    np.testing.assert_array_equal(out[0, 3:], np.repeat(out[0, 2:3], 3, axis=0))
    np.testing.assert_array_equal(out[1, :2], 0)  # before the first step that counts: the initial state
    np.testing.assert_array_equal(out[2, 1], out[2, 0])
    both = model(6, embedding(), layer("Bidirectional", layer={"type": kind, "units": 2, "return_sequences": True}))
    out = both.forward(IDS)
    np.testing.assert_array_equal(out[IDS == 0], 0)
    assert np.all(np.abs(out[IDS != 0]) > 0)


def test_global_average_pooling_averages_the_steps_that_count():
    pooled = model(6, embedding(), layer("GlobalAveragePooling1D"))
    table = pooled.params[0]["embeddings"]
    out = pooled.forward(IDS)
    for row, ids in enumerate(IDS[:4]):
        np.testing.assert_allclose(out[row], table[ids[ids != 0]].mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(out[4], 0)


def test_attention_does_not_attend_to_masked_steps():
    head = layer("MultiHeadAttention", num_heads=2, key_dim=2)
    masked = model(6, embedding(), head)
    out = masked.forward(IDS)
    for row, ids in enumerate(IDS[:4]):
        np.testing.assert_allclose(out[row][ids != 0], unpadded(masked, head, ids), rtol=1e-5, atol=1e-6)


def test_masks_travel_through_the_kinds_that_pass_them():
    graph = Graph.chain(
        (6,),
        [
            embedding(),
            layer("Dense", units=4),
            layer("Dropout", rate=0.5),
            layer("LayerNormalization"),
            layer("LSTM", units=3, return_sequences=True),
            layer("GRU", units=2),
        ],
    )
    assert [node.mask for node in graph.nodes] == [(-1,)] * 5 + [()]
    flat = Graph.chain((6,), [embedding(), layer("GlobalMaxPooling1D")])
    assert flat.drops_mask(1) and not flat.nodes[1].mask  # Keras' GlobalMaxPooling1D does not use a mask


def test_a_model_without_mask_zero_computes_as_before():
    masked, plain = model(6, embedding(), layer("LSTM", units=3)), model(6, embedding(False), layer("LSTM", units=3))
    full = IDS[3:4]  # no padding: the mask changes nothing
    np.testing.assert_array_equal(masked.forward(full), plain.forward(full))
    assert not np.allclose(masked.forward(IDS[:1]), plain.forward(IDS[:1]))


MASKED_KINDS = [
    ("SimpleRNN", {"units": 2, "return_sequences": True}),
    ("LSTM", {"units": 2, "go_backwards": True}),
    ("LSTM", {"units": 2, "return_sequences": True, "go_backwards": True}),
    ("GRU", {"units": 2, "return_sequences": True}),
    ("GRU", {"units": 2, "reset_after": False}),
    ("Bidirectional", {"layer": {"type": "LSTM", "units": 2, "return_sequences": True}}),
    ("Bidirectional", {"layer": {"type": "GRU", "units": 2, "go_backwards": True}, "merge_mode": "sum"}),
    ("GlobalAveragePooling1D", {}),
    ("GlobalAveragePooling1D", {"keepdims": True}),
]


@pytest.mark.parametrize(("kind", "config"), MASKED_KINDS)
def test_masked_gradients_match_central_differences(kind, config):
    rng = np.random.default_rng(3)
    head = layer(kind, **config)
    params = {name: value.astype(np.float64) for name, value in head.init_params((6, 3), rng).items()}
    x = rng.standard_normal((len(IDS), 6, 3))
    mask = IDS != 0
    y, cache = head.forward(params, x, mask=mask)
    w = rng.standard_normal(y.shape)
    dx, grads = head.backward(params, cache, w.copy())

    def loss() -> float:
        return float(np.sum(w * head.forward(params, x, mask=mask)[0]))

    for name, array, analytic in [("x", x, dx), *((name, params[name], grads[name]) for name in params)]:
        np.testing.assert_allclose(analytic, numerical_gradient(loss, array), rtol=1e-5, atol=1e-7, err_msg=name)


def test_attention_gradients_with_masks_match_central_differences():
    rng = np.random.default_rng(4)
    head = layer("MultiHeadAttention", num_heads=2, key_dim=2, use_causal_mask=True)
    params = {name: value.astype(np.float64) for name, value in head.init_params([(6, 3)], rng).items()}
    x = rng.standard_normal((len(IDS), 6, 3))
    mask = [IDS != 0]
    y, cache = head.forward(params, [x], mask=mask)
    # the padded query steps' outputs are left out of the loss: their scores, all shifted by -1e9, keep 1e-7 of
    # precision in float64, too little for central differences
    w = rng.standard_normal(y.shape) * mask[0][:, :, None]
    dxs, grads = head.backward(params, cache, w.copy())

    def loss() -> float:
        return float(np.sum(w * head.forward(params, [x], mask=mask)[0]))

    for name, array, analytic in [("x", x, dxs[0]), *((name, params[name], grads[name]) for name in params)]:
        np.testing.assert_allclose(analytic, numerical_gradient(loss, array), rtol=1e-5, atol=1e-7, err_msg=name)


ONNX_HEADS = [
    *MASKED_KINDS,
    ("Bidirectional", {"layer": {"type": "SimpleRNN", "units": 2, "return_sequences": True, "go_backwards": True}}),
    ("LSTM", {"units": 2, "use_bias": False, "return_sequences": True}),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 2, "use_causal_mask": True}),
]


@pytest.mark.parametrize("opset", [13, 21])
@pytest.mark.parametrize(("kind", "config"), ONNX_HEADS)
def test_onnx_computes_the_masked_model_wherever_the_padding_is(kind, config, opset):
    masked = model(6, embedding(), layer("Dense", units=3), layer(kind, **config))
    onnx_model = graph_to_onnx(masked.graph, masked.params, opset=opset)
    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = [session.run(None, {"input": IDS})[0]]
    if kind in ("GlobalAveragePooling1D", "MultiHeadAttention"):  # the evaluator's recurrent ops ignore sequence_lens
        outputs.append(ReferenceEvaluator(onnx_model).run(None, {"input": IDS})[0])
    for got in outputs:
        np.testing.assert_allclose(got, masked.forward(IDS), rtol=1e-4, atol=1e-5)


SPEC = """version: 1
name: drop
data: {{source: npz, path: x.npz}}
model:
  input_shape: [6]
  layers:
    - {{type: Embedding, input_dim: 6, output_dim: 3, mask_zero: true}}
    - {{type: {pooling}}}
    - {{type: Dense, units: 2, activation: softmax}}
compile: {{loss: categorical_crossentropy}}
"""


def test_a_layer_that_drops_the_mask_is_warned_about_at_its_line(tmp_path):
    path = tmp_path / "drop.yaml"
    path.write_text(SPEC.format(pooling="GlobalMaxPooling1D"))
    (warning,) = infer_graph(load_spec(path)).warnings
    assert warning.format() == (
        f"{path}:8:7: warning: model.layers[1]: GlobalMaxPooling1D does not use the mask of the padding "
        "(Embedding mask_zero), so it is dropped here, as Keras drops it: from here on the padded steps count; "
        "the README's Masks section lists the kinds that take or pass one"
    )
    path.write_text(SPEC.format(pooling="GlobalAveragePooling1D"))
    assert infer_graph(load_spec(path)).warnings == []


def test_a_model_output_that_carries_a_mask_is_warned_about(tmp_path):
    path = tmp_path / "sequence.yaml"
    path.write_text(
        SPEC.format(pooling="LSTM, units: 2, return_sequences: true").replace(
            "categorical_crossentropy", "mean_squared_error"
        )
    )
    (warning,) = infer_graph(load_spec(path)).warnings
    assert "this model output carries the mask of the padding" in warning.format()
    assert ":9:7: warning: model.layers[2]:" in warning.format()
