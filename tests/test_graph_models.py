"""Models that branch and merge: named layers, inputs, the output, training over the DAG."""

from __future__ import annotations

import numpy as np
import pytest

from specforge.api import build_graph
from specforge.base.errors import ShapeError, SpecError
from specforge.graph.dag import INPUT_NODE
from specforge.graph.model import Model
from specforge.options import losses, optimizers
from specforge.spec import spec_from_dict

RESIDUAL = [
    {"type": "Conv2D", "name": "stem", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
    {"type": "Conv2D", "name": "conv_a", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "tanh"},
    {"type": "BatchNormalization", "name": "bn"},
    {"type": "Add", "name": "add", "inputs": ["bn", "stem"]},
    {"type": "Conv2D", "name": "wide", "inputs": "stem", "filters": 2, "kernel_size": 1},
    {"type": "Concatenate", "inputs": ["add", "wide", "input"]},
    {"type": "GlobalAveragePooling2D"},
    {"type": "Dense", "units": 3, "activation": "softmax"},
]


def make_spec(layers, input_shape=(5, 4, 2), output=None, loss="categorical_crossentropy"):
    model = {"input_shape": list(input_shape), "layers": layers}
    if output:
        model["output"] = output
    return spec_from_dict(
        {
            "version": 1,
            "name": "graph",
            "data": {"source": "npz", "path": "x.npz", "num_classes": 3},
            "model": model,
            "compile": {"optimizer": "adam", "loss": loss},
        }
    )


def residual_model(dtype=np.float64, seed=0):
    graph = build_graph(make_spec(RESIDUAL))
    model = Model.initialize(graph, np.random.default_rng(seed))
    return Model(graph, [{name: value.astype(dtype) for name, value in params.items()} for params in model.params])


def batch(dtype=np.float64, n=6, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5, 4, 2)).astype(dtype), np.eye(3, dtype=dtype)[rng.integers(0, 3, n)]


def test_nodes_name_their_inputs_in_topological_order():
    graph = build_graph(make_spec(RESIDUAL))
    names = [node.layer.name for node in graph.nodes]
    index = {name: position for position, name in enumerate(names)}
    assert graph.nodes[index["add"]].inputs == (index["bn"], index["stem_relu"])
    assert graph.nodes[index["concatenate"]].inputs == (index["add"], index["wide"], INPUT_NODE)
    assert graph.nodes[index["concatenate"]].output_shape == (5, 4, 4 + 2 + 2)
    assert all(source < position for position, node in enumerate(graph.nodes) for source in node.inputs)
    rows = {row.name: row.connected_to for row in graph.summary()}
    assert (
        rows["add"] == ["bn", "stem"] and rows["stem"] == ["input"] and rows["concatenate"] == ["add", "wide", "input"]
    )


def test_gradients_over_the_graph_equal_finite_differences():
    model = residual_model()
    x, y = batch()
    loss = losses.create("categorical_crossentropy")
    value, _, grads, _ = model.gradients(x, y, loss)

    def loss_now() -> float:
        return loss.value(model.forward(x, training=True), y, from_logits=False)

    assert value == pytest.approx(loss_now(), rel=1e-9)
    for param, grad in zip(model.trainable_params(), grads):
        numeric = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            saved = param[index]
            param[index] = saved + 1e-6
            up = loss_now()
            param[index] = saved - 1e-6
            down = loss_now()
            param[index] = saved
            numeric[index] = (up - down) / 2e-6
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)


def test_training_over_a_graph_is_bit_identical_when_rerun():
    finals = []
    for _ in range(2):
        model = residual_model(np.float32)
        x, y = batch(np.float32, n=8)
        optimizer = optimizers.create(optimizers.resolve({"name": "adam", "learning_rate": 0.01}))
        for _ in range(3):
            model.train_step(x, y, losses.create("categorical_crossentropy"), optimizer)
        finals.append(model.weight_arrays())
    assert finals[0].keys() == finals[1].keys()
    for key in finals[0]:
        assert np.array_equal(finals[0][key], finals[1][key]), key


def test_the_output_can_be_any_layer_and_unused_layers_are_left_out_with_a_warning():
    layers = [
        {"type": "Flatten", "name": "flat"},
        {"type": "Dense", "units": 3, "name": "head"},
        {"type": "Dense", "units": 5, "name": "probe", "inputs": "flat"},
    ]
    graph = build_graph(make_spec(layers, output="head", loss="mean_squared_error"))
    assert [node.layer.name for node in graph.nodes] == ["flat", "head"]
    (warning,) = graph.warnings
    assert warning.format().split(": ", 1)[1] == (
        "warning: model.layers[2]: nothing takes the output of 'probe', "
        "so it is left out of the model; use it in another "
        "layer's inputs or remove it"
    )


def test_a_chain_keeps_its_order_and_default_names():
    graph = build_graph(
        make_spec(
            [
                {"type": "Conv2D", "filters": 2, "kernel_size": 3, "activation": "relu"},
                {"type": "Conv2D", "filters": 2, "kernel_size": 1, "name": "conv2d_1"},
                {"type": "Conv2D", "filters": 2, "kernel_size": 1},
                {"type": "Flatten"},
                {"type": "Dense", "units": 3},
            ],
            loss="mean_squared_error",
        )
    )
    assert [node.layer.name for node in graph.nodes] == [
        "conv2d",
        "conv2d_relu",
        "conv2d_1",
        "conv2d_2",
        "flatten",
        "dense",
    ]
    assert [node.inputs for node in graph.nodes] == [(INPUT_NODE,), (0,), (1,), (2,), (3,), (4,)]


@pytest.mark.parametrize(
    "layers,output,error,message",
    [
        (
            [{"type": "Flatten", "inputs": "inptu"}, {"type": "Dense", "units": 3}],
            None,
            SpecError,
            "model.layers[0].inputs: no layer is named 'inptu'; did you mean 'input'?",
        ),
        (
            [
                {"type": "Flatten", "name": "a", "inputs": "b"},
                {"type": "Dense", "units": 3, "name": "b", "inputs": "a"},
            ],
            None,
            SpecError,
            (
                "model.layers[0].inputs: the layers 'a' -> 'b' -> 'a' form a cycle; a layer cannot take its "
                "input from a layer that depends on it"
            ),
        ),
        (
            [{"type": "Flatten"}, {"type": "Dense", "units": 3}],
            "dens",
            SpecError,
            "model.output: no layer is named 'dens'; did you mean 'dense'?",
        ),
        (
            [{"type": "Flatten", "name": "x"}, {"type": "Dense", "units": 3, "name": "x"}],
            None,
            SpecError,
            "model.layers[1].name: the name 'x' is already taken by model.layers[0]; layer names are unique",
        ),
        (
            [
                {"type": "Conv2D", "filters": 2, "kernel_size": 1, "name": "c"},
                {"type": "Flatten", "inputs": ["c"]},
                {"type": "Dense", "units": 3},
                {"type": "Add", "inputs": ["dense", "c"]},
            ],
            None,
            ShapeError,
            "model.layers[3]: Add got (3,) from 'dense' and (5, 4, 2) from 'c'; Add needs inputs of one shape",
        ),
    ],
)
def test_graph_mistakes_are_located(layers, output, error, message):
    with pytest.raises(error) as raised:
        build_graph(make_spec(layers, output=output, loss="mean_squared_error"))
    assert [problem.format().split(": error: ", 1)[1] for problem in raised.value.problems] == [message]


def test_validate_prints_the_warning_and_succeeds(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = tmp_path / "probe.yaml"
    spec.write_text(
        "version: 1\nname: probe\ndata: {source: npz, path: x.npz}\n"
        "model:\n  input_shape: [4]\n  output: head\n  layers:\n"
        "    - {type: Dense, units: 3, name: head}\n"
        "    - {type: Dense, units: 2, name: probe, inputs: input}\n"
        "compile: {loss: mean_squared_error}\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", "specforge", "validate", str(spec), "--no-data"],  # x.npz is absent
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        (
            f"{spec}:9:7: warning: model.layers[1]: nothing takes the output of 'probe', so it is left out of the "
            "model; use it in another layer's inputs or remove it"
        )
    ]
