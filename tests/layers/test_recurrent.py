"""Recurrent kinds: the forward against Keras' cell formulas written out one step at a time, the initial weights
(orthogonal recurrent kernel, LSTM's forget bias), Bidirectional as its two layers, the one product of the input
projection, bit-identical reruns, activations the ONNX reference evaluator cannot run checked under onnxruntime,
and the formula path of the PyTorch lowering. The generic tests run every example through shapes, gradients
(finite differences), float32, ONNX and PyTorch."""

from __future__ import annotations

import importlib.util

import numpy as np
import onnxruntime as ort
import pytest
from helpers import make_layer, onnx_of
from needs import require

from specforge import ops
from specforge.api import load_spec
from specforge.graph.dag import infer_graph
from specforge.layers import REGISTRY
from specforge.layers import recurrent as recurrent_module
from specforge.options.activations import create as activation


def _sigma(name: str):
    function = activation(name)
    return function.forward


def keras_cell(kind: str, config: dict, params: dict, x: np.ndarray) -> np.ndarray:
    """Keras 3's SimpleRNNCell, LSTMCell and GRUCell, one example and one step at a time, over the layer."""
    units = config["units"]
    act = _sigma(config.get("activation", "tanh"))
    gate = _sigma(config.get("recurrent_activation", "sigmoid"))
    kernel, recurrent = params["kernel"], params["recurrent_kernel"]
    reset_after = config.get("reset_after", True)
    bias = params.get("bias", np.zeros((2, 3 * units) if kind == "GRU" and reset_after else kernel.shape[1]))
    outputs = []
    for sequence in x:
        steps = sequence[::-1] if config.get("go_backwards") else sequence
        h, c, states = np.zeros(units), np.zeros(units), []
        for step in steps:
            if kind == "SimpleRNN":
                h = act(step @ kernel + h @ recurrent + bias)
            elif kind == "LSTM":
                z = step @ kernel + h @ recurrent + bias
                i, f, g, o = (z[k * units : (k + 1) * units] for k in range(4))
                c = gate(f) * c + gate(i) * act(g)
                h = gate(o) * act(c)
            else:
                x_part = step @ kernel + (bias[0] if reset_after else bias)
                if reset_after:
                    inner = h @ recurrent + bias[1]
                else:
                    inner = np.concatenate([h @ recurrent[:, : 2 * units], np.zeros(units)])
                z = gate(x_part[:units] + inner[:units])
                r = gate(x_part[units : 2 * units] + inner[units : 2 * units])
                if reset_after:
                    candidate = act(x_part[2 * units :] + r * inner[2 * units :])
                else:
                    candidate = act(x_part[2 * units :] + (r * h) @ recurrent[:, 2 * units :])
                h = z * h + (1 - z) * candidate
            states.append(h)
        outputs.append(np.stack(states) if config.get("return_sequences") else h)
    return np.stack(outputs)


FORMULA_CASES = [
    ("SimpleRNN", {"units": 3}),
    ("SimpleRNN", {"units": 2, "activation": "relu", "return_sequences": True, "go_backwards": True}),
    ("LSTM", {"units": 3, "return_sequences": True}),
    ("LSTM", {"units": 2, "activation": "softsign", "recurrent_activation": "hard_sigmoid", "go_backwards": True}),
    ("GRU", {"units": 3, "return_sequences": True, "go_backwards": True}),
    ("GRU", {"units": 2, "reset_after": False, "return_sequences": True}),
    ("GRU", {"units": 2, "reset_after": False, "use_bias": False, "activation": "elu"}),
]


@pytest.mark.parametrize("kind,config", FORMULA_CASES)
def test_forward_is_keras_cell_step_by_step(kind, config):
    layer, params = make_layer(kind, config, (5, 3))
    x = np.random.default_rng(3).standard_normal((4, 5, 3))
    y, _ = layer.forward(params, x)
    np.testing.assert_allclose(y, keras_cell(kind, config, params, x), rtol=1e-12, atol=1e-12)


def test_bidirectional_is_the_layer_and_its_reversed_copy_merged():
    inner = {"type": "GRU", "units": 2, "return_sequences": True}
    layer, params = make_layer("Bidirectional", {"layer": inner}, (4, 3))
    assert sorted(params) == [
        f"{direction}_{name}"
        for direction in ("backward", "forward")
        for name in ("bias", "kernel", "recurrent_kernel")
    ]
    forward = {name[len("forward_") :]: value for name, value in params.items() if name.startswith("forward_")}
    backward = {name[len("backward_") :]: value for name, value in params.items() if name.startswith("backward_")}
    x = np.random.default_rng(4).standard_normal((3, 4, 3))
    expected_forward = keras_cell("GRU", inner, forward, x)
    expected_backward = keras_cell("GRU", {**inner, "go_backwards": True}, backward, x)[:, ::-1]
    y, _ = layer.forward(params, x)
    np.testing.assert_allclose(y, np.concatenate([expected_forward, expected_backward], axis=-1), rtol=1e-12)
    assert y.shape == (3, 4, 4) == (3, *layer.output_shape((4, 3)))


def test_initial_weights_follow_keras():
    layer = REGISTRY["LSTM"].from_options({"units": 3})
    params = layer.init_params((5, 2), np.random.default_rng(0))
    assert {name: value.shape for name, value in params.items()} == {
        "kernel": (2, 12),
        "recurrent_kernel": (3, 12),
        "bias": (12,),
    }
    np.testing.assert_array_equal(params["bias"], np.r_[np.zeros(3), np.ones(3), np.zeros(6)])
    recurrent = params["recurrent_kernel"].astype(np.float64)
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(3), atol=1e-6)  # orthonormal rows
    no_forget_bias = REGISTRY["LSTM"].from_options({"units": 3, "unit_forget_bias": False})
    assert not no_forget_bias.init_params((5, 2), np.random.default_rng(0))["bias"].any()
    gru = REGISTRY["GRU"].from_options({"units": 3})
    assert gru.param_shapes((5, 2))["bias"] == (2, 9)
    assert REGISTRY["GRU"].from_options({"units": 3, "reset_after": False}).param_shapes((5, 2))["bias"] == (9,)


def test_the_input_projection_is_one_product_each_way(monkeypatch):
    calls = {"dense": 0, "dense_gradients": 0}
    for name in calls:
        original = getattr(ops, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(recurrent_module.ops, name, counted)
    layer, params = make_layer("LSTM", {"units": 2, "return_sequences": True}, (6, 3))
    y, cache = layer.forward(params, np.ones((2, 6, 3)), training=True)
    layer.backward(params, cache, np.ones_like(y))
    assert calls == {"dense": 1, "dense_gradients": 1}


def test_reruns_with_dropout_are_bit_identical():
    config = {"layer": {"type": "LSTM", "units": 3, "dropout": 0.5, "return_sequences": True}, "merge_mode": "mul"}
    layer, params = make_layer("Bidirectional", config, (4, 3), dtype=np.float32)
    x = np.random.default_rng(5).standard_normal((3, 4, 3)).astype(np.float32)
    results = []
    for _ in range(2):
        y, cache = layer.forward(params, x, training=True, rng=np.random.default_rng(9))
        dx, grads = layer.backward(params, cache, np.ones_like(y))
        results.append((y, dx, grads))
    (y1, dx1, grads1), (y2, dx2, grads2) = results
    assert y1.dtype == dx1.dtype == np.float32
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(dx1, dx2)
    for name in grads1:
        np.testing.assert_array_equal(grads1[name], grads2[name])
    inference, _ = layer.forward(params, x)
    assert not np.array_equal(inference, y1)  # dropout acted in training only


@pytest.mark.parametrize(
    "kind,config",
    [
        ("SimpleRNN", {"units": 3, "activation": "relu", "go_backwards": True, "return_sequences": True}),
        ("LSTM", {"units": 3, "activation": "softsign", "recurrent_activation": "hard_sigmoid"}),
        ("GRU", {"units": 3, "activation": "elu", "recurrent_activation": "sigmoid", "reset_after": False}),
        ("Bidirectional", {"layer": {"type": "LSTM", "units": 2, "activation": "leaky_relu"}, "merge_mode": "ave"}),
        ("Bidirectional", {"layer": {"type": "SimpleRNN", "units": 2, "activation": "softplus", "go_backwards": True}}),
    ],
)
def test_other_activations_export_to_the_ops_attributes(kind, config):
    """onnxruntime applies the ops' ``activations`` (and their alpha and beta); the ONNX reference evaluator,
    which the generic tests also run, knows only the default functions, so these run under onnxruntime alone."""
    layer, params = make_layer(kind, config, (5, 3), dtype=np.float32)
    model = onnx_of([(layer, params)], (5, 3))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(6).standard_normal((4, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(session.run(None, {"input": x})[0], layer.forward(params, x)[0], rtol=1e-4, atol=1e-5)


def test_a_recurrent_layer_applies_its_own_activation(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: rnn\nmodel:\n  input_shape: [6, 4]\n  layers:\n"
        "    - {type: SimpleRNN, units: 5, activation: relu}\n    - {type: Dense, units: 3, activation: softmax}\n"
        "compile: {optimizer: adam, loss: categorical_crossentropy}\n"
    )
    graph = infer_graph(load_spec(spec))
    assert [node.layer.type for node in graph.nodes] == ["SimpleRNN", "Dense", "Activation"]


@pytest.mark.parametrize(
    "kind,config",
    [
        ("LSTM", {"units": 2, "activation": "softsign", "recurrent_activation": "hard_sigmoid", "dropout": 0.3}),
        ("Bidirectional", {"layer": {"type": "GRU", "units": 2, "activation": "relu", "return_sequences": True}}),
    ],
)
def test_cells_pytorch_lacks_run_their_formula_in_pytorch(kind, config):
    require(importlib.util.find_spec("torch") is not None, "PyTorch (pip install -e '.[torch]')")
    from test_torch_lowering import BATCH, _compare_layer

    layer, params = make_layer(kind, config, (4, 3))
    _compare_layer(layer, params, [np.random.default_rng(2).standard_normal((BATCH, 4, 3))], (4, 3))


@pytest.mark.parametrize(
    "kind,config",
    [
        ("LSTM", {"units": 3, "return_sequences": True, "dropout": 0.2}),
        ("GRU", {"units": 3, "go_backwards": True}),
        ("GRU", {"units": 2, "reset_after": False, "return_sequences": True}),
        ("SimpleRNN", {"units": 3}),
    ],
)
def test_a_batch_split_across_the_cores_gives_the_same_step(kind, config, monkeypatch):
    """The time loop runs on slices of the batch (``ops.shards``) in parallel: any split computes what one
    slice computes, the recurrent gradients summed over the slices."""
    layer, params = make_layer(kind, config, (4, 3))
    x = np.random.default_rng(7).standard_normal((5, 4, 3))
    results = []
    for split in ([slice(0, 5)], [slice(0, 2), slice(2, 3), slice(3, 5)]):
        monkeypatch.setattr(recurrent_module.ops, "shards", lambda batch, work, _split=split: _split)
        y, cache = layer.forward(params, x, training=True, rng=np.random.default_rng(1))
        results.append((y, *layer.backward(params, cache, np.cos(y))))
    (y1, dx1, grads1), (y2, dx2, grads2) = results
    np.testing.assert_allclose(y2, y1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx2, dx1, rtol=1e-12, atol=1e-14)
    for name in grads1:
        np.testing.assert_allclose(grads2[name], grads1[name], rtol=1e-12, atol=1e-14)
