"""The PyTorch lowering (specforge.training.torch, each kind's ``to_torch``) is the same model as the numpy
backend's, so that the PyTorch backend trains what numpy trains and benchmarks/compare.py measures one
model on both sides.

- every layer kind in the registry has a lowering, and on each of its examples its module gives the numpy
  kind's output, input gradients and parameter gradients (float64, so that a disagreement cannot hide in
  rounding); BatchNormalization moves its statistics as numpy does; dropout draws numpy's masks when told to;
- every spec in specs/: the lowered forward equals numpy's in float32, and so do the gradients of a training
  batch; one training step from the same weights and batch, with the spec's loss and optimizer, gives the
  same loss and the same weights afterwards (float64: Adam's first step is about the sign of each
  gradient, and a gradient that is zero but for rounding would flip it);
- every optimizer and loss kind against its PyTorch counterpart, and the lowering's torch.onnx export.
Inputs are random values of the model's input shape: no data set is read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import CASES, SEVERAL_IO_SPECS, example_input, make_layer
from needs import require

from specforge.api import build_graph, load_spec
from specforge.graph.dag import Node, input_node
from specforge.graph.model import Model
from specforge.layers import REGISTRY
from specforge.layers.base import Layer
from specforge.options import losses, optimizers
from specforge.training.evaluate import labels_and_targets
from specforge.training.heads import create_heads

try:
    import torch
except ImportError:  # the torch extra is not installed
    torch = None
else:
    from specforge.layers.torch.layout import to_numpy, to_torch
    from specforge.training.torch.losses import takes_classes, torch_loss
    from specforge.training.torch.network import TorchNetwork
    from specforge.training.torch.optimizers import clip_gradients, torch_optimizer
    from specforge.training.torch.step import TorchStep

SPECS = sorted(
    path for path in (Path(__file__).resolve().parents[1] / "specs").glob("*.yaml") if path.stem not in SEVERAL_IO_SPECS
)
SEED_SPEC = Path(__file__).resolve().parents[1] / "specs" / "mnist.yaml"
MERGE_CASES = [
    pytest.param(kind, config, shapes, id=f"{kind}-{i}")
    for kind, cls in REGISTRY.items()
    if cls.merges
    for i, (config, shapes) in enumerate(cls.examples)
]
BATCH = 4


@pytest.fixture(autouse=True)
def _needs_torch():
    require(torch is not None, "PyTorch (pip install -e '.[torch]')")


def _model(path: Path, dtype=np.float32) -> tuple[Model, dict]:
    """The spec's model with fresh weights of ``dtype``, and the spec's config."""
    spec = load_spec(path)
    model = Model.initialize(build_graph(spec), np.random.default_rng(0))
    return Model(
        model.graph, [{name: value.astype(dtype) for name, value in params.items()} for params in model.params]
    ), spec.config


def _inputs(model: Model, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """A random batch of the model's input: values, or ids below the input_dim of a model of token ids."""
    shape = (BATCH, *model.graph.input_shape)
    if np.issubdtype(np.dtype(model.graph.input_dtype), np.integer):
        return rng.integers(0, model.graph.nodes[0].layer.config["input_dim"], size=shape)
    return rng.standard_normal(shape).astype(dtype)


def _each_input(model: Model, position: int, rng: np.random.Generator) -> np.ndarray:
    """A random batch of one of several model inputs: float64 values, or ids below the input_dim of the
    Embeddings taking an input of token ids."""
    shape = (BATCH, *model.graph.model_inputs[position].shape)
    takers = [node.layer for node in model.graph.nodes if input_node(position) in node.inputs]
    if all(layer.type == "Embedding" for layer in takers):
        return rng.integers(0, min(layer.config["input_dim"] for layer in takers), size=shape)
    return rng.standard_normal(shape)


def _batch(model: Model, loss, dtype=np.float32):
    """Random inputs, class labels and the targets specforge's loss takes for them."""
    rng = np.random.default_rng(1)
    x = _inputs(model, rng, dtype)
    units = model.graph.output_shape[-1]
    labels, targets = labels_and_targets(loss, rng.integers(0, max(units, 2), size=BATCH), units)
    return x, labels, (targets.astype(dtype) if targets.dtype.kind == "f" else targets)


def _assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float, what: str) -> None:
    """Equal within ``rtol`` of the expected array's largest magnitude."""
    scale = max(float(np.abs(expected).max()), 1e-12)
    assert actual.shape == expected.shape, what
    assert float(np.abs(actual - expected).max()) <= rtol * scale, what


# -- layer kinds ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_layer_kind_has_its_pytorch_lowering(kind):
    cls = REGISTRY[kind]
    assert cls.to_torch is not Layer.to_torch, f"{kind} has no to_torch"
    assert cls.examples, f"{kind} has no examples to check its lowering on"


def test_a_kind_without_a_lowering_is_named(monkeypatch):
    model, _ = _model(SEED_SPEC)
    monkeypatch.setattr(REGISTRY["Conv2D"], "to_torch", Layer.to_torch)
    with pytest.raises(NotImplementedError, match="the Conv2D layer has no PyTorch lowering"):
        TorchNetwork(model.graph, model.params)


def _compare_layer(layer, params: dict, xs: list[np.ndarray], input_shape) -> None:
    """Forward (inference and training) and backward of ``layer`` in specforge and in its PyTorch module."""
    out_shape = layer.output_shape(input_shape)
    node = Node(layer, input_shape, out_shape, tuple(range(len(xs))) if layer.merges else (-1,))
    module = layer.to_torch(node, {name: value.copy() for name, value in params.items()}).double()
    for training in (False, True):
        module.train(training)
        specforge_x = xs if layer.merges else xs[0]
        y, cache = layer.forward(params, specforge_x, training=training, rng=np.random.default_rng(3))
        torch_xs = [to_torch(x).requires_grad_(x.dtype.kind == "f") for x in xs]
        if hasattr(module, "numpy_masks"):
            module.numpy_masks(np.random.default_rng(3))
        torch_y = module(torch_xs if layer.merges else torch_xs[0])
        _assert_close(to_numpy(torch_y), y, 1e-10, f"{layer.type} forward, training={training}")
        for name, value in layer.new_state(cache).items():
            _assert_close(module.specforge_params()[name], value, 1e-10, f"{layer.type} {name}")
        dy = np.random.default_rng(4).standard_normal(y.shape)
        dx, grads = layer.backward(params, cache, dy.copy())
        if torch_y.requires_grad:  # not a fixed table (SinePositionEncoding's), which nothing flows back through
            torch_y.backward(to_torch(dy))
        for torch_x, expected in zip(torch_xs, dx if layer.merges else [dx]):
            if expected is None:  # a kind of ids has no input gradient
                assert not torch_x.requires_grad, layer.type
                continue
            # an input whose values the output does not depend on (a position layer's) gets no gradient
            got = torch.zeros_like(torch_x) if torch_x.grad is None else torch_x.grad
            _assert_close(to_numpy(got), expected, 1e-10, f"{layer.type} input gradient")
        torch_grads = module.specforge_gradients()
        assert set(torch_grads) == set(grads)
        for name, value in grads.items():
            _assert_close(torch_grads[name], value, 1e-10, f"{layer.type} {name} gradient")
        module.zero_grad()


@pytest.mark.parametrize("kind,config,shape", CASES)
def test_a_layer_kind_computes_in_pytorch_what_it_computes_in_specforge(kind, config, shape):
    layer, params = make_layer(kind, config, shape)
    _compare_layer(layer, params, [example_input(kind, shape, BATCH, 2)], shape)


@pytest.mark.parametrize("kind,config,shapes", MERGE_CASES)
def test_a_merge_kind_computes_in_pytorch_what_it_computes_in_specforge(kind, config, shapes):
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((BATCH, *shape)) for shape in shapes]
    if kind in ("Maximum", "Minimum"):
        xs[1][0] = xs[0][0]  # ties go to the first input
    layer, params = make_layer(kind, config, shapes)
    _compare_layer(layer, params, xs, tuple(shapes))


# -- the specs -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", SPECS, ids=[path.stem for path in SPECS])
def test_the_lowering_of_a_spec_gives_its_outputs_and_gradients(path):
    model, config = _model(path)
    loss = losses.create(config["compile"]["loss"])
    x, labels, targets = _batch(model, loss)
    network = TorchNetwork(model.graph, model.params).eval()
    with torch.no_grad():
        _assert_close(to_numpy(network(to_torch(x))), model.forward(x), 1e-4, "forward")
    trainer = TorchStep(network, loss, config["compile"]["optimizer"])
    network.train().numpy_masks(np.random.default_rng(5))
    trainer.loss(network(to_torch(x), trainer.skipped), trainer.targets(labels, targets)).backward()
    grads = model.gradients(x, targets, loss, np.random.default_rng(5))[2]
    torch_grads = [params[name] for params in network.specforge_gradients() for name in params]
    assert len(torch_grads) == len(grads)
    for index, (actual, expected) in enumerate(zip(torch_grads, grads)):
        _assert_close(actual, expected, 1e-4, f"gradient {index}")


@pytest.mark.parametrize("path", SPECS, ids=[path.stem for path in SPECS])
def test_one_training_step_in_pytorch_is_numpys(path):
    model, config = _model(path, np.float64)
    loss = losses.create(config["compile"]["loss"])
    x, labels, targets = _batch(model, loss, np.float64)
    network = TorchNetwork(model.graph, model.params).double()
    trainer = TorchStep(network, loss, config["compile"]["optimizer"])
    network.numpy_masks(np.random.default_rng(5))
    value = float(trainer.step(to_torch(x), trainer.targets(labels, targets))[0])
    expected = model.train_step(
        x, targets, loss, optimizers.create(config["compile"]["optimizer"]), np.random.default_rng(5)
    )[0]
    assert value == pytest.approx(expected, rel=1e-9)
    for node, actual, params in zip(model.graph.nodes, network.specforge_params(), model.params):
        for name, expected_value in params.items():
            _assert_close(actual[name], expected_value, 1e-7, f"{node.layer.name}/{name}")


def _one_or_all(items: list):
    """What a model takes or gives for ``items``, one per input or output: the item itself when there is one."""
    return items if len(items) > 1 else items[0]


@pytest.mark.parametrize("name", SEVERAL_IO_SPECS)
def test_one_training_step_of_several_inputs_or_outputs_in_pytorch_is_numpys(name):
    """Each input takes its own tensor, each output gives its loss, and the step is that of the weighted total
    (compile.loss_weights), as numpy's."""
    model, config = _model(SEED_SPEC.with_name(f"{name}.yaml"), np.float64)
    rng = np.random.default_rng(1)
    x = [_each_input(model, position, rng) for position in range(len(model.graph.model_inputs))]
    heads = create_heads(config, model.graph)
    pairs = [head.labels_and_targets(rng.integers(0, 2, size=BATCH)) for head in heads]
    labels = [each for each, _ in pairs]
    targets = [each.astype(np.float64) if each.dtype.kind == "f" else each for _, each in pairs]
    each_loss = _one_or_all([head.loss for head in heads])
    weights = [head.weight for head in heads]
    network = TorchNetwork(model.graph, model.params).double()
    trainer = TorchStep(network, each_loss, config["compile"]["optimizer"], loss_weights=weights)
    values = trainer.step(
        _one_or_all([to_torch(each) for each in x]), trainer.targets(_one_or_all(labels), _one_or_all(targets))
    )[0]
    expected = model.train_step(
        _one_or_all(x),
        _one_or_all(targets),
        each_loss,
        optimizers.create(config["compile"]["optimizer"]),
        None,
        weights,
    )[0]
    # PyTorch's targets are float32 (parity's 0 and 1 exactly), which binary cross-entropy on logits keeps
    assert [float(value) for value in np.atleast_1d(values)] == pytest.approx(np.atleast_1d(expected), rel=1e-7)
    for node, actual, params in zip(model.graph.nodes, network.specforge_params(), model.params):
        for param, expected_value in params.items():
            _assert_close(actual[param], expected_value, 1e-7, f"{node.layer.name}/{param}")


@pytest.mark.parametrize("path", SPECS, ids=[path.stem for path in SPECS])
def test_the_torch_onnx_export_of_the_lowering_gives_the_specs_outputs(path):
    from benchmarks.torch_onnx import torch_onnx
    from specforge.predict.session import make_session

    model, _ = _model(path)
    x = _inputs(model, np.random.default_rng(1))
    session = make_session(torch_onnx(TorchNetwork(model.graph, model.params)), threads=1)
    _assert_close(
        to_numpy(torch.from_numpy(session.run(None, {"input": to_torch(x).numpy()})[0])),
        model.forward(x),
        1e-4,
        "torch.onnx export",
    )


# -- optimizers and losses --------------------------------------------------------------------------------
OPTIMIZER_CASES = [
    pytest.param(example, id=str(example))
    for cls in optimizers.OPTIMIZERS.values()
    for example in [cls.name, *cls.examples]
]


@pytest.mark.parametrize("spec_value", OPTIMIZER_CASES)
def test_an_optimizer_takes_keras_steps_in_pytorch(spec_value):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    start = [value.copy() for value in params]
    torch_params = [torch.tensor(value, requires_grad=True) for value in params]
    ours, theirs = optimizers.create(optimizers.resolve(spec_value)), torch_optimizer(spec_value, torch_params)
    for _ in range(4):
        # gradients from large to far below epsilon, where Keras' and PyTorch's epsilon differ most
        grads = [rng.standard_normal(value.shape) * 10.0 ** -rng.integers(0, 9, value.shape) for value in params]
        for param, grad in zip(torch_params, grads):
            param.grad = torch.tensor(grad)
        options = optimizers.resolve(spec_value)
        clip_gradients(torch_params, options["clipnorm"], options["clipvalue"])
        theirs.step()
        ours.step(params, [grad.copy() for grad in grads])
        # PyTorch keeps Nadam's momentum product in float32: the steps agree to about 1e-8
        for param, torch_param, first in zip(params, torch_params, start):
            np.testing.assert_allclose(torch_param.detach().numpy() - first, param - first, rtol=1e-6, atol=1e-15)


def _loss_modes(loss) -> list[bool]:
    """``from_logits`` values a valid spec trains ``loss`` with: on logits where it fuses an activation, on
    outputs where the last activation may be another (or any)."""
    fused = [True] if loss.fused_activation else []
    others = loss.output_activations is None or set(loss.output_activations) - {loss.fused_activation}
    return fused + ([False] if others else [])


LOSS_CASES = [
    pytest.param(example, from_logits, id=f"{example}-{'logits' if from_logits else 'outputs'}")
    for loss in losses.LOSSES.values()
    for example in [loss.name, *loss.examples]
    for from_logits in _loss_modes(loss)
]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("spec_value,from_logits", LOSS_CASES)
def test_a_loss_has_its_value_and_gradient_in_pytorch(spec_value, from_logits, weighted):
    loss = losses.create(spec_value)
    rng = np.random.default_rng(0)
    weights = np.array([1.0, 0.0, 2.0, 0.5, 3.0, 1.5]) if weighted else None
    loss.weights = weights
    logits = rng.standard_normal((6, 3))
    outputs = logits if from_logits else 1 / (1 + np.exp(-logits))
    labels, targets = labels_and_targets(loss, rng.integers(0, 3, size=6), 3)
    if targets.dtype.kind == "f":
        targets = targets.astype(np.float64)
    value, grad = loss.value_and_grad(outputs, targets, from_logits=from_logits)
    torch_outputs = torch.tensor(outputs, requires_grad=True)
    torch_targets = torch.tensor(labels) if takes_classes(loss, from_logits) else torch.tensor(targets)
    torch_weights = None if weights is None else torch.tensor(weights)
    torch_value = torch_loss(loss, from_logits)(torch_outputs, torch_targets, torch_weights)
    torch_value.backward()
    assert torch_value.item() == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(torch_outputs.grad.numpy(), grad, rtol=1e-10, atol=1e-15)


# -- masks -----------------------------------------------------------------------------------------------------
#: rows of ids, 0 the padding: trailing, leading, in the middle, none, all
PADDED_IDS = np.array([[3, 4, 5, 0, 0, 0], [0, 0, 2, 1, 5, 0], [2, 0, 3, 0, 0, 4], [1, 2, 3, 4, 5, 1], [0] * 6])
MASKED_HEADS = [
    ("LSTM", {"units": 2, "return_sequences": True, "go_backwards": True}),
    ("GRU", {"units": 2}),
    ("SimpleRNN", {"units": 2, "return_sequences": True}),
    ("Bidirectional", {"layer": {"type": "LSTM", "units": 2, "return_sequences": True}}),
    ("Bidirectional", {"layer": {"type": "GRU", "units": 2, "go_backwards": True}, "merge_mode": "ave"}),
    ("GlobalAveragePooling1D", {}),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 2, "use_causal_mask": True}),
]


@pytest.mark.parametrize(
    ("kind", "config"), MASKED_HEADS, ids=[f"{kind}-{i}" for i, (kind, _) in enumerate(MASKED_HEADS)]
)
def test_a_masked_model_computes_in_pytorch_what_it_computes_in_specforge(kind, config):
    from specforge.graph.dag import Graph

    layers = [
        REGISTRY["Embedding"].from_options({"input_dim": 6, "output_dim": 3, "mask_zero": True}),
        REGISTRY["Dense"].from_options({"units": 3}),
        REGISTRY[kind].from_options(config),
    ]
    model = Model.initialize(Graph.chain((6,), layers), np.random.default_rng(0))
    model = Model(model.graph, [{name: value.astype(np.float64) for name, value in p.items()} for p in model.params])
    network = TorchNetwork(model.graph, model.params).double()
    out, expected = network(to_torch(PADDED_IDS)), model.forward(PADDED_IDS)
    _assert_close(to_numpy(out.detach()), expected, 1e-9, "forward")
    w = np.random.default_rng(2).standard_normal(expected.shape)
    ((out - to_torch(w)) ** 2).mean().backward()
    grads = model.gradients(PADDED_IDS, w, losses.create("mean_squared_error"))[2]
    torch_grads = [params[name] for params in network.specforge_gradients() for name in params]
    for index, (actual, expected) in enumerate(zip(torch_grads, grads)):
        _assert_close(actual, expected, 1e-9, f"gradient {index}")
