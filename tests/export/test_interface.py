"""The exported classifier's interface: names, shapes, versions, preprocessing, logits, metadata, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import onnx_of
from onnx.reference import ReferenceEvaluator

import specforge
from export.models import SPEC_FILES, export_spec, small_spec, trained_model
from specforge.base.errors import ExportError
from specforge.export.onnx import export_graph
from specforge.export.run_export import export_classifier, parity_batch
from specforge.graph.dag import infer_graph
from specforge.layers.base import Layer
from specforge.spec import load_spec, spec_from_dict

METADATA_KEYS = {
    "spec_name",
    "spec_sha256",
    "class_names",
    "input_name",
    "input_shape",
    "input_layout",
    "input_range",
    "image_shape",
    "outputs",
    "preprocessing",
    "preprocessing_in_graph",
    "test_accuracy",
    "test_metrics",
    "specforge_version",
    "parameters",
}


def dims(value: onnx.ValueInfoProto) -> list:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def run(model: onnx.ModelProto, x: np.ndarray, outputs=None) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(outputs, {"input": x})


@pytest.fixture(scope="module")
def small():
    """The small CNN after two training steps, exported with logits and in-graph preprocessing."""
    return export_spec(small_spec(), logits=True)


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_every_example_spec_exports(path):
    spec = load_spec(path)
    model, parity, numpy_model, dataset, _ = export_spec(spec)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    assert (model.ir_version, model.opset_import[0].version) == (7, 13)
    assert parity.passed and parity.examples >= 256 and parity.classes_agree == parity.examples
    (model_input,) = model.graph.input
    assert model_input.name == "input"
    assert model_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims(model_input) == ["N", *spec.config["model"]["input_shape"]]
    assert [(o.name, dims(o)) for o in model.graph.output] == [("probabilities", ["N", 10])]
    assert not {"Dropout", "BatchNormalization"} & {node.op_type for node in model.graph.node}
    # Raw test images in, the numpy forward of the preprocessed images out, on examples the gate did not see.
    raw = dataset.test.images[300:340]
    expected = numpy_model.forward(dataset.preprocessing.images(raw))
    got = run(model, raw.reshape(len(raw), *numpy_model.graph.input_shape).astype(np.float32))[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    meta = {prop.key: prop.value for prop in model.metadata_props}
    assert set(meta) >= METADATA_KEYS
    assert meta["input_range"] == "0-255 raw pixels"
    assert json.loads(meta["preprocessing"]) == dataset.preprocessing.to_dict()


def test_logits_are_the_final_softmax_input(small):
    model, _, numpy_model, dataset, raw = small
    assert [(o.name, dims(o)) for o in model.graph.output] == [("probabilities", ["N", 10]), ("logits", ["N", 10])]
    probabilities, logits = run(model, raw[:64, ..., None].astype(np.float32))
    x = dataset.preprocessing.images(raw[:64])
    np.testing.assert_allclose(
        logits, numpy_model.forward(x, until=len(numpy_model.graph.nodes) - 1), rtol=1e-4, atol=1e-4
    )
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probabilities, exp / exp.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_logits_need_a_final_softmax():
    config = json.loads(json.dumps(small_spec().config))
    config["model"]["layers"][-1]["activation"] = "sigmoid"
    graph = infer_graph(spec_from_dict(config))
    with pytest.raises(ExportError, match=r"--logits needs a model whose last activation is softmax.*'sigmoid'"):
        export_graph(graph, graph.init_params(np.random.default_rng(0)), logits=True)


def test_preprocessing_left_out():
    model, parity, numpy_model, dataset, raw = export_spec(small_spec(), in_graph=False)
    assert parity.passed
    meta = {prop.key: prop.value for prop in model.metadata_props}
    assert meta["preprocessing_in_graph"] == "false"
    assert json.loads(meta["preprocessing"]) == dataset.preprocessing.to_dict()
    x = dataset.preprocessing.images(raw[:32])
    np.testing.assert_allclose(run(model, x)[0], numpy_model.forward(x), rtol=1e-4, atol=1e-5)
    low, high = (0 - 0.13) / 0.31, (1 - 0.13) / 0.31
    assert meta["input_range"] == f"{low:.4g} to {high:.4g} (0-255 raw pixels after the preprocessing)"
    assert not [t.name for t in model.graph.initializer if t.name.startswith("preprocess")]


def test_preprocessing_in_the_graph_comes_first(small):
    model, *_ = small
    first, second = model.graph.node[:2]
    assert (first.op_type, first.input[0], second.op_type) == ("Mul", "input", "Add")
    scale = onnx.numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == first.input[1]))
    np.testing.assert_allclose(scale, [1 / 255 / 0.31], rtol=1e-6)


def test_metadata_and_docs(small):
    model, _parity, _, _dataset, _ = small
    spec = small_spec()
    meta = {prop.key: prop.value for prop in model.metadata_props}
    assert meta["spec_name"] == "small-cnn"
    assert meta["spec_sha256"] == spec.sha256()
    assert json.loads(meta["class_names"]) == [str(i) for i in range(10)]
    assert (meta["input_layout"], meta["input_range"]) == ("NHWC", "0-255 raw pixels")
    assert json.loads(meta["input_shape"]) == ["N", 28, 28, 1]
    assert json.loads(meta["image_shape"]) == [28, 28]
    assert json.loads(meta["outputs"]) == ["probabilities", "logits"]
    assert meta["preprocessing_in_graph"] == "true"
    assert float(meta["test_accuracy"]) == 0.875
    assert json.loads(meta["test_metrics"]) == {"loss": 0.5, "accuracy": 0.875}
    assert meta["specforge_version"] == specforge.__version__
    assert (model.producer_name, model.producer_version) == ("specforge", specforge.__version__)
    assert int(meta["parameters"]) == infer_graph(spec).total_params
    assert "small-cnn" in model.graph.doc_string
    assert model.graph.input[0].doc_string and all(output.doc_string for output in model.graph.output)


@pytest.mark.parametrize(
    "description, title",
    [
        ("Three epochs (of 1024 images).", "small-cnn: Three epochs (of 1024 images). Input 'input'"),
        ("Three epochs", "small-cnn: Three epochs. Input 'input'"),
        ("Why not?", "small-cnn: Why not? Input 'input'"),
        ("", "small-cnn. Input 'input'"),
    ],
)
def test_the_doc_string_ends_the_description_with_one_stop(description, title):
    numpy_model, dataset = trained_model(small_spec(), steps=0)
    raw, data = parity_batch(small_spec().config, numpy_model.graph.input_shape, Path("."))
    model, _ = export_classifier(
        numpy_model.graph,
        numpy_model.params,
        dataset.preprocessing,
        raw,
        spec_name="small-cnn",
        spec_sha256="0",
        data=data,
        description=description,
    )
    assert model.graph.doc_string.startswith(title)


@pytest.mark.parametrize("opset", [12, 22])
def test_opsets_outside_13_to_21_are_refused(opset):
    numpy_model, _ = trained_model(small_spec(), steps=0)
    with pytest.raises(ExportError, match=f"opset={opset}; use an opset from 13 to 21"):
        export_graph(numpy_model.graph, numpy_model.params, opset=opset)


def test_batch_normalization_in_inference_form_with_its_epsilon():
    """Against the formula, worked independently of the layer's code: (x - mean) / sqrt(var + eps) * gamma + beta."""
    from specforge.layers import REGISTRY

    layer = REGISTRY["BatchNormalization"].from_options({"epsilon": 0.5})
    rng = np.random.default_rng(0)
    params = {
        "gamma": rng.uniform(0.5, 2, 3),
        "beta": rng.normal(size=3),
        "moving_mean": rng.normal(size=3),
        "moving_variance": rng.uniform(0.1, 2, 3),
    }
    params = {name: value.astype(np.float32) for name, value in params.items()}
    x = rng.normal(size=(4, 2, 5, 3)).astype(np.float32)
    expected = (x - params["moving_mean"]) / np.sqrt(params["moving_variance"] + 0.5) * params["gamma"] + params["beta"]
    model = onnx_of([(layer, params)], (2, 5, 3))
    for got in (run(model, x)[0], ReferenceEvaluator(model).run(None, {"input": x})[0]):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


class Squash(Layer, register=False):
    """A layer kind without an ONNX conversion (``register=False``: no registry ever sees it)."""

    type = "Squash"
    description = "The identity, with no ONNX conversion."

    def output_shape(self, input_shape):
        return input_shape


def test_a_layer_without_conversion_is_refused_by_name():
    with pytest.raises(ExportError, match=r"layer 'squash_1' \(Squash\) has no ONNX conversion"):
        onnx_of([(Squash({"name": "squash_1"}), {})], (3,))
