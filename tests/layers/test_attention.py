"""MultiHeadAttention against the formula written head by head, and against PyTorch's multi-head attention;
Keras' weight layouts and defaults; the key defaulting to the value; the causal mask; dropout; the key bias;
its inputs in a graph. The generic tests of kinds of several inputs are in tests/layers/test_merge.py."""

from __future__ import annotations

import numpy as np
import pytest
from needs import require

from specforge.graph.dag import infer_graph
from specforge.layers import REGISTRY
from specforge.spec import spec_from_dict

Attention = REGISTRY["MultiHeadAttention"]


def _params(layer, shapes, seed=0):
    rng = np.random.default_rng(seed)
    return {
        name: value.astype(np.float64) + 0.2 * rng.standard_normal(value.shape)
        for name, value in layer.init_params(shapes, rng).items()
    }


def _inputs(shapes, seed=1, batch=2):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch, *shape)) for shape in shapes]


def head_by_head(config: dict, params: dict, query, value, key) -> np.ndarray:
    """The attention as its documentation writes it, one example and one head at a time."""
    heads, key_dim = config["num_heads"], config["key_dim"]
    out = []
    for n in range(len(query)):
        total = params["output_bias"].copy() if "output_bias" in params else 0.0
        for h in range(heads):

            def project(x, role, n=n, h=h):
                y = x[n] @ params[f"{role}_kernel"][:, h]
                return y + params[f"{role}_bias"][h] if f"{role}_bias" in params else y

            q, k, v = project(query, "query"), project(key, "key"), project(value, "value")
            scores = q @ k.T / np.sqrt(key_dim)
            if config.get("use_causal_mask"):
                t, s = np.indices(scores.shape)
                scores = np.where(s <= t, scores, -np.inf)
            weights = np.exp(scores - scores.max(axis=1, keepdims=True))
            weights /= weights.sum(axis=1, keepdims=True)
            total = total + (weights @ v) @ params["output_kernel"][h]
        out.append(total)
    return np.stack(out)


@pytest.mark.parametrize(
    "config,shapes",
    [(config, shapes) for config, shapes in Attention.examples if not config.get("dropout")],
)
def test_the_output_is_the_formula_head_by_head(config, shapes):
    layer = Attention.from_options(config)
    params = _params(layer, shapes)
    xs = _inputs(shapes)
    query, value = xs[0], xs[1] if len(xs) > 1 else xs[0]
    key = xs[2] if len(xs) > 2 else value
    y, _ = layer.forward(params, xs)
    np.testing.assert_allclose(y, head_by_head(layer.config, params, query, value, key), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_the_output_is_pytorchs_multi_head_attention(causal):
    """torch.nn.functional.multi_head_attention_forward with the same projections (its in-projection weights are
    the transposed Keras kernels, its heads the kernels' middle axis)."""
    torch = _torch()
    from torch.nn import functional

    layer = Attention.from_options({"num_heads": 2, "key_dim": 4, "use_causal_mask": causal})
    shapes = [(5, 8)]
    params = _params(layer, shapes)
    (x,) = _inputs(shapes)
    y, _ = layer.forward(params, [x])

    def matrix(name):
        return torch.from_numpy(params[name].reshape(params[name].shape[0], -1).T.copy())

    def vector(name):
        return torch.from_numpy(params[name].reshape(-1).copy())

    sequence = torch.from_numpy(x.transpose(1, 0, 2).copy())  # (steps, batch, features)
    mask = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1) if causal else None
    expected, _ = functional.multi_head_attention_forward(
        sequence,
        sequence,
        sequence,
        8,
        2,
        None,
        torch.cat([vector("query_bias"), vector("key_bias"), vector("value_bias")]),
        None,
        None,
        False,
        0.0,
        torch.from_numpy(params["output_kernel"].reshape(8, 8).T.copy()),
        vector("output_bias"),
        training=False,
        need_weights=False,
        attn_mask=mask,
        use_separate_proj_weight=True,
        q_proj_weight=matrix("query_kernel"),
        k_proj_weight=matrix("key_kernel"),
        v_proj_weight=matrix("value_kernel"),
    )
    np.testing.assert_allclose(y, expected.numpy().transpose(1, 0, 2), rtol=1e-10, atol=1e-12)


def _torch():
    try:
        import torch
    except ImportError:  # the torch extra is not installed
        torch = None
    require(torch is not None, "PyTorch (pip install -e '.[torch]')")
    return torch


def test_keras_weight_layouts_defaults_and_count():
    """Keras' MultiHeadAttention(num_heads=4, key_dim=16) on 64 features: 16,640 weights in these layouts."""
    layer = Attention.from_options({"num_heads": 4, "key_dim": 16})
    assert layer.config["value_dim"] is None and layer.config["dropout"] == 0.0 and layer.config["use_bias"]
    assert layer.config["kernel_initializer"] == "glorot_uniform" and layer.config["bias_initializer"] == "zeros"
    assert layer.param_shapes([(28, 64)]) == {
        "query_kernel": (64, 4, 16),
        "query_bias": (4, 16),
        "key_kernel": (64, 4, 16),
        "key_bias": (4, 16),
        "value_kernel": (64, 4, 16),
        "value_bias": (4, 16),
        "output_kernel": (4, 16, 64),
        "output_bias": (64,),
    }
    assert layer.count_params([(28, 64)]) == 16_640
    other = Attention.from_options({"num_heads": 2, "key_dim": 3, "value_dim": 5, "output_shape": 7, "use_bias": False})
    assert other.param_shapes([(4, 6), (9, 6), (9, 2)]) == {
        "query_kernel": (6, 2, 3),
        "key_kernel": (2, 2, 3),
        "value_kernel": (6, 2, 5),
        "output_kernel": (2, 5, 7),
    }
    assert other.output_shape([(4, 6), (9, 6), (9, 2)]) == (4, 7)
    params = layer.init_params([(28, 64)], np.random.default_rng(0))
    limit = np.sqrt(6 / (64 * 4 + 64 * 16))  # Keras' fans of a (64, 4, 16) kernel: 64 * 4 in, 64 * 16 out
    assert 0.9 * limit < np.abs(params["query_kernel"]).max() <= limit
    assert not params["query_bias"].any()


def test_the_key_is_the_value_when_not_given():
    layer = Attention.from_options({"inputs": ["q", "v"], "num_heads": 2, "key_dim": 3})
    shapes = [(3, 4), (5, 4)]
    params = _params(layer, shapes)
    query, value = _inputs(shapes)
    y, cache = layer.forward(params, [query, value])
    y3, cache3 = layer.forward(params, [query, value, value])
    np.testing.assert_array_equal(y, y3)
    dy = np.random.default_rng(2).standard_normal(y.shape)
    (dq, dv), _ = layer.backward(params, cache, dy)
    (dq3, dv3, dk3), _ = layer.backward(params, cache3, dy)
    np.testing.assert_allclose(dq, dq3, rtol=1e-12)
    np.testing.assert_allclose(dv, dv3 + dk3, rtol=1e-12)


def test_the_causal_mask_hides_later_steps():
    layer = Attention.from_options({"num_heads": 2, "key_dim": 3, "use_causal_mask": True})
    params = _params(layer, [(6, 4)])
    (x,) = _inputs([(6, 4)])
    y, _ = layer.forward(params, [x])
    changed = x.copy()
    changed[:, 4:] += 10.0
    y_changed, _ = layer.forward(params, [changed])
    np.testing.assert_allclose(y_changed[:, :4], y[:, :4], rtol=1e-12)
    assert not np.allclose(y_changed[:, 4:], y[:, 4:])


def test_dropout_only_in_training_and_from_the_generator():
    layer = Attention.from_options({"num_heads": 2, "key_dim": 3, "dropout": 0.5})
    params = _params(layer, [(6, 4)])
    (x,) = _inputs([(6, 4)])
    inference, _ = layer.forward(params, [x], training=False, rng=np.random.default_rng(0))
    no_dropout, _ = Attention.from_options({"num_heads": 2, "key_dim": 3}).forward(params, [x])
    np.testing.assert_array_equal(inference, no_dropout)
    first, _ = layer.forward(params, [x], training=True, rng=np.random.default_rng(0))
    again, _ = layer.forward(params, [x], training=True, rng=np.random.default_rng(0))
    other, _ = layer.forward(params, [x], training=True, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, inference) and not np.allclose(first, other)


def test_the_key_bias_changes_nothing_and_its_gradient_is_zero():
    layer = Attention.from_options({"num_heads": 2, "key_dim": 3, "use_causal_mask": True})
    params = _params(layer, [(5, 4)])
    (x,) = _inputs([(5, 4)])
    y, cache = layer.forward(params, [x])
    shifted, _ = layer.forward({**params, "key_bias": params["key_bias"] + 3.0}, [x])
    np.testing.assert_allclose(shifted, y, rtol=1e-10, atol=1e-12)
    _, grads = layer.backward(params, cache, np.ones_like(y))
    assert not grads["key_bias"].any() and grads["query_bias"].any()


def _graph(layers, input_shape=(6, 4)):
    model = {"input_shape": list(input_shape), "layers": layers}
    return infer_graph(
        spec_from_dict({"version": 1, "name": "attention", "model": model, "compile": {"loss": "mean_squared_error"}})
    )


def test_in_a_graph_one_input_is_self_attention_and_two_or_three_name_query_value_key():
    graph = _graph(
        [
            {"type": "Dense", "name": "memory", "units": 4},
            {"type": "MultiHeadAttention", "name": "self", "num_heads": 2, "key_dim": 2},
            {"type": "MultiHeadAttention", "name": "named", "inputs": "memory", "num_heads": 1, "key_dim": 2},
            {"type": "MultiHeadAttention", "name": "cross", "inputs": ["self", "named"], "num_heads": 1, "key_dim": 2},
            {
                "type": "MultiHeadAttention",
                "name": "all",
                "inputs": ["cross", "named", "input"],
                "num_heads": 1,
                "key_dim": 2,
                "output_shape": 3,
            },
        ]
    )
    nodes = {node.layer.name: node for node in graph.nodes}
    assert nodes["self"].input_shape == ((6, 4),) and nodes["self"].output_shape == (6, 4)
    assert [graph.source_of(index) for index in nodes["cross"].inputs] == ["self", "named"]
    assert nodes["all"].output_shape == (6, 3)


def test_a_seed_gives_the_layer_its_own_masks():
    config = {"num_heads": 2, "key_dim": 3, "dropout": 0.5, "seed": 3}
    params = _params(Attention.from_options(config), [(6, 4)])
    (x,) = _inputs([(6, 4)])
    first, _ = Attention.from_options(config).forward(params, [x], training=True, rng=np.random.default_rng(0))
    again, _ = Attention.from_options(config).forward(params, [x], training=True, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(first, again)
    other, _ = Attention.from_options({**config, "seed": 4}).forward(
        params, [x], training=True, rng=np.random.default_rng(0)
    )
    assert not np.allclose(first, other)
