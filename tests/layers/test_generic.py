"""Tests every registered layer kind on each of its examples: shapes, gradients, schema and ONNX export.

A kind is covered the moment it is registered; its own test file only adds what is specific to it.
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
from helpers import (
    CASES,
    FUSING_CASES,
    check_gradients,
    check_onnx_parity,
    example_input,
    make_layer,
    onnx_of,
    run_onnx,
)
from jsonschema import Draft7Validator

from specforge.base.errors import ExportError
from specforge.graph.plan import plan_steps
from specforge.layers import REGISTRY, Layer
from specforge.options.activations import ACTIVATIONS

KINDS = (
    "Conv2D",
    "DepthwiseConv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "ZeroPadding2D",
    "Dense",
    "Flatten",
    "Reshape",
    "Dropout",
    "BatchNormalization",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "Softmax",
    "Conv1D",
    "MaxPooling1D",
    "AveragePooling1D",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "SeparableConv2D",
    "Conv2DTranspose",
    "UpSampling2D",
    "Cropping2D",
    "SpatialDropout2D",
    "LayerNormalization",
)
BATCH = 3
FUSABLE = sorted(name for name, function in ACTIVATIONS.items() if function.output_suffices and name != "linear")


# -- the generic tests ---------------------------------------------------------------------------
def test_every_kind_is_registered():
    assert set(KINDS) <= set(REGISTRY), f"missing: {sorted(set(KINDS) - set(REGISTRY))}"


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_kind_is_documented(kind):
    cls = REGISTRY[kind]
    assert cls.examples, f"{kind} has no example"
    assert cls.description
    for prop, schema in cls.schema.items():
        assert schema.get("description"), f"{kind}.{prop} has no description"
        if prop not in cls.required:
            assert "default" in schema, f"optional {kind}.{prop} has no default"


@pytest.mark.parametrize("kind,config,shape", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_shape_matches_forward(kind, config, shape, dtype):
    layer, params = make_layer(kind, config, shape, dtype=np.float32)
    x = example_input(kind, shape, BATCH, 3, dtype)
    expected = layer.output_shape(shape)
    for training in (False, True):
        y, _ = layer.forward(params, x, training=training, rng=np.random.default_rng(0))
        assert y.shape == (BATCH, *expected)
        assert y.dtype == np.result_type(*(a for a in (x, *params.values()) if np.issubdtype(a.dtype, np.floating)))


@pytest.mark.parametrize("kind,config,shape", CASES)
def test_gradients(kind, config, shape):
    _, params = make_layer(kind, config, shape)
    check_gradients(kind, config, params, example_input(kind, shape, BATCH, 4))


@pytest.mark.parametrize(
    "kind,config,shape,activation",
    [(*case.values, None) for case in CASES] + [(*case.values, "relu") for case in FUSING_CASES],
)
def test_float32_step_equals_float64_step(kind, config, shape, activation):
    """Training runs in float32 and may take other kernels than the float64 the gradient checks see
    (onnxruntime's convolutions): both give the same forward and backward, up to float32 rounding."""
    _, params64 = make_layer(kind, config, shape)
    fused = ACTIVATIONS[activation]() if activation else None
    x64 = example_input(kind, shape, BATCH, 12)
    takes_ids = np.issubdtype(x64.dtype, np.integer)
    results = []
    for dtype in (np.float64, np.float32):
        params = {name: value.astype(dtype) for name, value in params64.items()}
        layer = REGISTRY[kind].from_options(config)  # a fresh one: a seeded dropout draws the same mask again
        y, cache = layer.forward(
            params,
            x64 if takes_ids else x64.astype(dtype),
            training=True,
            rng=np.random.default_rng(0),
            activation=fused,
        )
        dy = np.random.default_rng(13).standard_normal(y.shape).astype(dtype)
        dx, grads = layer.backward(params, cache, dy)
        assert y.dtype == dtype and all(grad.dtype == dtype for grad in grads.values())
        assert dx is None if takes_ids else dx.dtype == dtype
        results.append((y, dx, grads))
    (y64, dx64, grads64), (y32, dx32, grads32) = results
    pairs = [(y64, y32), *([] if takes_ids else [(dx64, dx32)]), *((grads64[name], grads32[name]) for name in grads64)]
    for expected, actual in pairs:
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(expected).max())))


@pytest.mark.parametrize("kind,config,shape", CASES)
def test_backward_without_dx(kind, config, shape):
    layer, params = make_layer(kind, config, shape)
    x = example_input(kind, shape, BATCH, 5)
    y, cache = layer.forward(params, x, training=True, rng=np.random.default_rng(0))
    dy = np.ones_like(y)
    _, grads = layer.backward(params, cache, dy)
    dx, grads_only = layer.backward(params, cache, dy, need_dx=False)
    assert dx is None
    assert sorted(grads_only) == sorted(grads)
    for name in grads:
        np.testing.assert_allclose(grads_only[name], grads[name])


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_kind_takes_the_same_forward_arguments(kind):
    """The same arguments, and the keyword ``mask`` exactly for a kind that takes masks (``Layer.masking``)."""
    takes_masks = REGISTRY[kind].masking == "take"
    expected = [*inspect.signature(Layer.forward).parameters, *(["mask"] if takes_masks else [])]
    assert list(inspect.signature(REGISTRY[kind].forward).parameters) == expected
    assert ("mask" in inspect.signature(REGISTRY[kind].to_onnx).parameters) == takes_masks


@pytest.mark.parametrize("kind,config,shape", FUSING_CASES)
@pytest.mark.parametrize("activation", FUSABLE)
def test_fused_step_equals_the_two_nodes(kind, config, shape, activation):
    """A layer run with the activation after it fused computes what the two nodes compute in turn."""
    layer, params = make_layer(kind, config, shape)
    node = REGISTRY["Activation"].from_options({"activation": activation})
    (step,) = plan_steps([layer, node])
    assert step.activation is not None
    rng = np.random.default_rng(6)
    x = rng.standard_normal((BATCH, *shape))
    z, layer_cache = layer.forward(params, x, training=True)
    y, node_cache = node.forward({}, z, training=True)
    fused_y, cache = step.forward(params, x, training=True)
    np.testing.assert_allclose(fused_y, y, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dz, _ = node.backward({}, node_cache, dy)
    dx, grads = layer.backward(params, layer_cache, dz)
    fused_dx, fused_grads = step.backward(params, cache, dy)
    np.testing.assert_allclose(fused_dx, dx, rtol=1e-12, atol=1e-12)
    for name in grads:
        np.testing.assert_allclose(fused_grads[name], grads[name], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind,config,shape", CASES)
@pytest.mark.parametrize("training", [False, True])
def test_forward_leaves_the_parameters_alone(kind, config, shape, training):
    """State (moving statistics) comes back through ``new_state``, for non-trainable parameters only."""
    layer, params = make_layer(kind, config, shape)
    before = {name: value.copy() for name, value in params.items()}
    x = example_input(kind, shape, BATCH, 5)
    _, cache = layer.forward(params, x, training=training, rng=np.random.default_rng(0))
    for name, value in before.items():
        np.testing.assert_array_equal(params[name], value)
    state = layer.new_state(cache)
    assert set(state) == (set(layer.non_trainable) if training else set())
    for name, value in state.items():
        assert value.shape == params[name].shape


@pytest.mark.parametrize("kind,config,shape", CASES)
def test_param_counts(kind, config, shape):
    layer, params = make_layer(kind, config, shape)
    assert {name: value.shape for name, value in params.items()} == layer.param_shapes(shape)
    assert layer.count_params(shape) == sum(value.size for value in params.values())
    assert all(value.dtype == np.float32 for value in layer.init_params(shape, np.random.default_rng(0)).values())


@pytest.mark.parametrize("kind,config,shape", CASES)
def test_schema_round_trip(kind, config, shape):
    schema = REGISTRY[kind].json_schema()
    schema = json.loads(json.dumps(schema))
    Draft7Validator.check_schema(schema)
    validator = Draft7Validator(schema)
    item = {"type": kind, **config}
    validator.validate(item)
    assert not validator.is_valid({**item, "no_such_option": 1})
    for required in REGISTRY[kind].required:
        assert not validator.is_valid({key: value for key, value in item.items() if key != required})


@pytest.mark.parametrize("kind,config,shape", CASES)
def test_onnx_matches_numpy(kind, config, shape):
    layer, params = make_layer(kind, config, shape, dtype=np.float32)
    check_onnx_parity([(layer, params)], shape, example_input(kind, shape, BATCH, 6, np.float32))


# -- graph assembly ------------------------------------------------------------------------------
def _steps(*layers: tuple[str, dict], input_shape: tuple) -> list:
    rng = np.random.default_rng(7)
    steps, shape = [], input_shape
    for kind, config in layers:
        layer = REGISTRY[kind].from_options(config)
        steps.append((layer, layer.init_params(shape, rng)))
        shape = layer.output_shape(shape)
    return steps


def _dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("opset,ir_version", [(13, 7), (14, 7), (15, 8), (17, 8), (18, 8), (19, 9), (21, 10)])
def test_model_interface_and_versions(opset, ir_version):
    steps = _steps(
        ("Conv2D", {"filters": 2, "kernel_size": 2}), ("Activation", {"activation": "softmax"}), input_shape=(4, 3, 1)
    )
    model = onnx_of(steps, (4, 3, 1), opset=opset)
    assert model.ir_version == ir_version
    assert [(o.domain, o.version) for o in model.opset_import] == [("", opset)]
    (graph_input,), (graph_output,) = model.graph.input, model.graph.output
    assert (graph_input.name, _dims(graph_input)) == ("input", ["N", 4, 3, 1])
    assert (graph_output.name, _dims(graph_output)) == ("output", ["N", 3, 2, 2])
    assert graph_input.type.tensor_type.elem_type == graph_output.type.tensor_type.elem_type == 1  # FLOAT
    assert {init.name for init in model.graph.initializer} >= {"conv2d_kernel", "conv2d_bias"}
    x = np.random.default_rng(8).standard_normal((5, 4, 3, 1)).astype(np.float32)
    check_onnx_parity(steps, (4, 3, 1), x)


def test_unsupported_opset_is_an_export_error():
    with pytest.raises(ExportError, match="opset=12"):
        onnx_of(_steps(("Flatten", {}), input_shape=(2, 2, 1)), (2, 2, 1), opset=12)


@pytest.mark.parametrize("layers", [[("Dropout", {"rate": 0.5})], [("Activation", {"activation": "linear"})], []])
def test_graph_without_nodes_gets_an_identity(layers):
    steps = _steps(*layers, input_shape=(3, 2))
    model = onnx_of(steps, (3, 2), output_name="scores")
    assert [node.op_type for node in model.graph.node] == ["Identity"]
    x = np.random.default_rng(9).standard_normal((4, 3, 2)).astype(np.float32)
    for got in run_onnx(model, x):
        np.testing.assert_array_equal(got, x)


def test_layers_named_like_the_graph_tensors():
    steps = [(REGISTRY["Dense"].from_options({"units": 2}, name=name), {}) for name in ("input", "output")]
    for (layer, params), shape in zip(steps, [(3,), (2,)]):
        params.update(layer.init_params(shape, np.random.default_rng(0)))
    x = np.random.default_rng(10).standard_normal((4, 3)).astype(np.float32)
    check_onnx_parity(steps, (3,), x)


def test_no_transposes_between_convolutions():
    steps = _steps(
        ("Conv2D", {"filters": 2, "kernel_size": 2}),
        ("ReLU", {}),
        ("BatchNormalization", {}),
        ("Conv2D", {"filters": 3, "kernel_size": 2}),
        ("Activation", {"activation": "gelu"}),
        ("Flatten", {}),
        ("Dense", {"units": 2}),
        input_shape=(5, 5, 1),
    )
    model = onnx_of(steps, (5, 5, 1))
    # the one-channel input is reshaped to NCHW (the same bytes); the Dense takes the channels-first
    # flattening with its rows permuted to match
    assert [node.op_type for node in model.graph.node].count("Transpose") == 0
    x = np.random.default_rng(11).standard_normal((2, 5, 5, 1)).astype(np.float32)
    check_onnx_parity(steps, (5, 5, 1), x)


def test_no_transposes_between_sequence_layers():
    steps = _steps(
        ("Conv1D", {"filters": 4, "kernel_size": 3, "padding": "same"}),
        ("BatchNormalization", {}),
        ("ReLU", {}),
        ("MaxPooling1D", {}),
        ("Conv1D", {"filters": 5, "kernel_size": 2}),
        ("LayerNormalization", {}),
        ("AveragePooling1D", {"pool_size": 2}),
        ("Flatten", {}),
        input_shape=(9, 3),
    )
    model = onnx_of(steps, (9, 3))
    ops = [node.op_type for node in model.graph.node]
    # into the image form before the first Conv1D, out of it for the LayerNormalization and back, out for the Flatten
    assert ops.count("Transpose") == 4
    check_onnx_parity(steps, (9, 3), np.random.default_rng(13).standard_normal((2, 9, 3)).astype(np.float32))


@pytest.mark.parametrize(
    "after_flatten",
    [
        ("Dense", {"units": 3, "use_bias": False}),
        ("Dropout", {"rate": 0.5}),
        ("BatchNormalization", {}),
        ("Reshape", {"target_shape": [6, 3]}),
    ],
)
def test_a_flatten_feeding_anything_but_a_product_keeps_the_keras_order(after_flatten):
    steps = _steps(("Conv2D", {"filters": 2, "kernel_size": 2}), ("Flatten", {}), after_flatten, input_shape=(4, 4, 1))
    check_onnx_parity(steps, (4, 4, 1), np.random.default_rng(12).standard_normal((2, 4, 4, 1)).astype(np.float32))


def _producers(model) -> dict[str, str]:
    return {output: node.op_type for node in model.graph.node for output in node.output}


def test_outputs_are_named_by_the_nodes_that_make_them():
    steps = _steps(
        ("Conv2D", {"filters": 2, "kernel_size": 2}),
        ("Flatten", {}),
        ("Dense", {"units": 3}),
        ("Activation", {"activation": "softmax"}),
        input_shape=(4, 3, 1),
    )
    producers = _producers(onnx_of(steps, (4, 3, 1), logits=True))
    assert (producers["output"], producers["logits"]) == ("Softmax", "Gemm")
    assert "Identity" not in producers.values()
    image_out = onnx_of(_steps(("Conv2D", {"filters": 2, "kernel_size": 2}), input_shape=(4, 3, 1)), (4, 3, 1))
    assert _producers(image_out)["output"] == "Transpose"


def test_a_conversion_that_hints_another_node_with_the_layer_name_is_refused():
    class Doubled(REGISTRY["Dense"]):
        def to_onnx(self, builder, params, input_name):
            out = super().to_onnx(builder, params, input_name)
            return builder.node("Add", [out, out], f"{self.name}_doubled")

    layer = Doubled.from_options({"units": 2}, name="doubled")
    steps = [(layer, layer.init_params((3,), np.random.default_rng(0)))]
    with pytest.raises(ExportError, match=r"'doubled' .*hinted with the layer's name"):
        onnx_of(steps, (3,))
