"""The ops facade: the only ops module a layer imports, naming every ops module in its docstring, and the
record a layer gets from a forward op handed back unchanged to its gradient op."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_module_layout import MODULES, imports_of

from specforge import ops
from specforge.layers import REGISTRY

OPS_MODULES = sorted(path.stem for path in Path(ops.__file__).parent.glob("*.py") if path.stem != "__init__")


def test_layer_modules_import_no_ops_module_but_the_facade():
    offending = {
        module: sorted(name for name in imports_of(module) if name.startswith("specforge.ops."))
        for module in MODULES
        if module.startswith("specforge.layers")
    }
    assert {module: names for module, names in offending.items() if names} == {}
    assert "specforge.ops" in imports_of("specforge.layers.conv")


def test_the_ops_layer_imports_neither_the_step_planner_nor_the_option_kinds():
    """The planner (graph/) and the activations (options/) sit above the ops layer, which knows an activation
    only by what it needs of one (``ops.epilogue.ActivationFunction``)."""
    above = {
        module: sorted(
            name for name in imports_of(module) if name.startswith(("specforge.graph.dag", "specforge.options"))
        )
        for module in MODULES
        if module == "specforge.ops" or module.startswith("specforge.ops.")
    }
    assert {module: names for module, names in above.items() if names} == {}


def test_the_ops_layer_imports_no_layer_module():
    """The ops layer sits below the layer kinds: they call it, it knows them only by their contract."""
    offending = {
        module: sorted(name for name in imports_of(module) if name.startswith("specforge.layers"))
        for module in MODULES
        if module == "specforge.ops" or module.startswith("specforge.ops.")
    }
    assert {module: names for module, names in offending.items() if names} == {}


def test_the_docstring_names_every_ops_module():
    missing = [name for name in OPS_MODULES if f"``{name}``" not in ops.__doc__]
    assert missing == []


def test_every_exported_name_exists():
    assert all(hasattr(ops, name) for name in ops.__all__)
    assert not [name for name in ops.__all__ if name in OPS_MODULES]  # no export hides a module's name


@pytest.mark.parametrize(
    "kind, config, forward_op, gradient_op",
    [
        ("Conv2D", {"filters": 2, "kernel_size": 3}, "conv", "conv_gradients"),
        ("DepthwiseConv2D", {"kernel_size": 3}, "depthwise_conv", "conv_gradients"),
        ("Conv2DTranspose", {"filters": 2, "kernel_size": 3}, "conv_transpose", "conv_transpose_gradients"),
        ("Dense", {"units": 3}, "dense", "dense_gradients"),
    ],
)
def test_a_layer_hands_its_record_back_to_the_gradient_op(kind, config, forward_op, gradient_op, monkeypatch):
    shape = (5,) if kind == "Dense" else (5, 5, 2)
    layer = REGISTRY[kind].from_options(config)
    params = layer.init_params(shape, np.random.default_rng(0))
    records, handed_back = [], []
    forward, gradients = getattr(ops, forward_op), getattr(ops, gradient_op)

    def recording_forward(*args, **options):
        y, record = forward(*args, **options)
        records.append(record)
        return y, record

    def recording_gradients(record, *args, **options):
        handed_back.append(record)
        return gradients(record, *args, **options)

    monkeypatch.setattr(ops, forward_op, recording_forward)
    monkeypatch.setattr(ops, gradient_op, recording_gradients)
    y, cache = layer.forward(params, np.ones((2, *shape), np.float32), training=True)
    dx, grads = layer.backward(params, cache, np.ones_like(y))
    assert len(records) == 1 and len(handed_back) == 1 and handed_back[0] is records[0]
    assert sorted(grads) == sorted(params) and dx.shape == (2, *shape)
