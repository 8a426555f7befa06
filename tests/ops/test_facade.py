"""The ops facade: the only ops module a layer imports, naming every ops module in its docstring, and the
record a layer gets from a forward op handed back unchanged to its gradient op."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
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


def _type_checking_imports() -> dict[str, tuple[str, str]]:
    """What the facade's ``if TYPE_CHECKING:`` block imports: each name -> its ops module and its name there."""
    tree = ast.parse(Path(ops.__file__).read_text(encoding="utf-8"))
    (block,) = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    return {
        alias.asname or alias.name: (statement.module.removeprefix("specforge.ops."), alias.name)
        for statement in block.body
        if isinstance(statement, ast.ImportFrom) and statement.module
        for alias in statement.names
    }


def test_the_type_checker_sees_the_names_the_facade_loads():
    assert _type_checking_imports() == ops._EXPORTS
    assert sorted(ops._EXPORTS) == sorted(ops.__all__)


def test_a_name_is_its_module_s_own_object():
    for name, (module, attribute) in ops._EXPORTS.items():
        assert getattr(ops, name) is getattr(importlib.import_module(f"specforge.ops.{module}"), attribute), name


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'convolve'"):
        ops.convolve  # noqa: B018


def test_importing_the_facade_loads_no_ops_module():
    """The layer kinds import the facade, and ``specforge validate`` imports the layer kinds for their shape rules:
    the computations' modules are loaded when a name of theirs is first used."""
    probe = "import sys, specforge.ops; print(sorted(m for m in sys.modules if m.startswith('specforge.ops.')))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.split() == ["[]"]


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
