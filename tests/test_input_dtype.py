"""A model input of another dtype than float32, end to end, with no special case outside the kind: a kind
that takes integer ids (defined and registered here only, as an Embedding would be in the package) gives
its graph an int64 input, gets int64 batches, trains, runs the generic layer tests and exports an int64
ONNX input that onnxruntime runs as numpy does."""

from __future__ import annotations

import layers.test_generic as generic
import numpy as np
import onnx
import pytest
from helpers import IDS

from specforge.base.errors import DataError, ShapeError
from specforge.data.batches import iterate_batches
from specforge.data.preprocessing import Preprocessing
from specforge.data.splits import make_split
from specforge.export.onnx import graph_to_onnx
from specforge.graph.dag import Graph
from specforge.graph.model import Model
from specforge.layers import REGISTRY
from specforge.layers.base import Layer
from specforge.options import losses, optimizers
from specforge.predict.session import make_session


class Lookup(Layer, register=False):
    """Row ``i`` of a learned ``(ids, units)`` table for each id ``i``: ``(steps,)`` ids to ``(steps, units)``."""

    type = "TestLookup"
    description = "A learned vector per integer id."
    schema = {
        "ids": {"type": "integer", "minimum": 1, "description": "How many ids."},
        "units": {"type": "integer", "minimum": 1, "description": "Values per id."},
    }
    required = ("ids", "units")
    examples = [({"ids": IDS, "units": 2}, (4,))]
    input_dtype = "int"

    def output_shape(self, input_shape):
        return (*input_shape, self.config["units"])

    def param_shapes(self, input_shape):
        return {"table": (self.config["ids"], self.config["units"])}

    def init_params(self, input_shape, rng):
        return {"table": rng.standard_normal(self.param_shapes(input_shape)["table"]).astype(np.float32)}

    def forward(self, params, x, training=False, rng=None, activation=None):
        return params["table"][x], x

    def backward(self, params, cache, dy, need_dx=True):
        table = np.zeros_like(params["table"], dtype=dy.dtype)
        np.add.at(table, cache, dy)
        return None, {"table": table}

    def to_onnx(self, builder, params, input_name):
        table = builder.initializer(params["table"].astype(np.float32), f"{self.name}_table")
        return builder.node("Gather", [table, input_name], self.name, axis=0)


@pytest.fixture
def lookup_kind():
    REGISTRY.register(Lookup)
    yield Lookup
    del REGISTRY._entries[Lookup.type]


def ids_model(seed: int = 0) -> Model:
    layers = [
        Lookup.from_options({"ids": 5, "units": 3}),
        REGISTRY["Flatten"].from_options({}),
        REGISTRY["Dense"].from_options({"units": 2}),
        REGISTRY["Activation"].from_options({"activation": "softmax"}),
    ]
    return Model.initialize(Graph.chain((4,), layers), np.random.default_rng(seed))


def test_the_graph_input_takes_the_dtype_its_first_kind_declares(lookup_kind):
    assert ids_model().graph.input_dtype == "int64"
    assert Graph.chain((4,), [REGISTRY["Dense"].from_options({"units": 2})]).input_dtype == "float32"
    assert Graph((3,)).input_dtype == "float32"


def test_ids_from_another_layer_are_refused(lookup_kind):
    graph = Graph.chain(
        (4,), [REGISTRY["Activation"].from_options({"activation": "relu"}), Lookup.from_options({"ids": 5, "units": 3})]
    )
    with pytest.raises(ShapeError, match="TestLookup takes int ids, which only the model's input holds"):
        graph.input_dtype  # noqa: B018


def test_batches_of_ids_are_int64_and_kept_as_they_are():
    ids = np.random.default_rng(0).integers(0, 5, (10, 4)).astype(np.uint8)
    split = make_split("train", ids, np.arange(10) % 2, "ids.npy")
    steps = Preprocessing((4,), 2, ("a", "b"), labels_encoding="sparse", input_dtype="int64")
    batches = list(iterate_batches(split, 4, shuffle=False, preprocessing=steps))
    assert [x.dtype for x, _ in batches] == [np.int64] * 3
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), ids)
    float_steps = Preprocessing((4,), 2, ("a", "b"), rescale=0.5, labels_encoding="sparse")
    x, _ = next(iterate_batches(split, 4, shuffle=False, preprocessing=float_steps))
    assert x.dtype == np.float32 and (x == ids[:4] * np.float32(0.5)).all()


def test_the_input_dtype_is_saved_with_the_preprocessing():
    steps = Preprocessing((4,), 2, ("a", "b"), input_dtype="int64")
    assert Preprocessing.from_dict(steps.to_dict()) == steps
    older = {key: value for key, value in steps.to_dict().items() if key != "input_dtype"}
    assert Preprocessing.from_dict(older).input_dtype == "float32"


def test_ids_are_not_rescaled():
    with pytest.raises(DataError, match="ids, which are not rescaled or normalized"):
        Preprocessing((4,), 2, ("a", "b"), rescale=0.5, input_dtype="int64")


def test_a_model_of_ids_trains(lookup_kind):
    model = ids_model()
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 5, (16, 4)), rng.integers(0, 2, 16)
    loss, optimizer = losses.create("sparse_categorical_crossentropy"), optimizers.create(optimizers.resolve("adam"))
    table = model.params[0]["table"].copy()
    first, _ = model.train_step(x, y, loss, optimizer)
    for _ in range(20):
        last, _ = model.train_step(x, y, loss, optimizer)
    assert last < first
    unused = sorted(set(range(5)) - set(x.ravel()))
    np.testing.assert_array_equal(model.params[0]["table"][unused], table[unused])  # ids never seen: no gradient


def test_the_export_takes_int64_ids_and_matches_numpy(lookup_kind):
    model = ids_model()
    onnx_model = graph_to_onnx(model.graph, model.params)
    (model_input,) = onnx_model.graph.input
    assert model_input.type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert "int64" in model_input.doc_string
    x = np.random.default_rng(2).integers(0, 5, (6, 4))
    got = make_session(onnx_model.SerializeToString()).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, model.predict(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "check",
    [
        generic.test_gradients,
        generic.test_backward_without_dx,
        generic.test_onnx_matches_numpy,
        generic.test_param_counts,
        generic.test_schema_round_trip,
        generic.test_kind_is_documented,
    ],
)
def test_the_generic_layer_tests_take_a_kind_of_ids(lookup_kind, check):
    config, shape = Lookup.examples[0]
    if check is generic.test_kind_is_documented:
        check(Lookup.type)
    else:
        check(Lookup.type, config, shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_generic_shape_and_dtype_tests_take_a_kind_of_ids(lookup_kind, dtype):
    config, shape = Lookup.examples[0]
    generic.test_output_shape_matches_forward(Lookup.type, config, shape, dtype)
    generic.test_float32_step_equals_float64_step(Lookup.type, config, shape, None)
    generic.test_forward_leaves_the_parameters_alone(Lookup.type, config, shape, True)
