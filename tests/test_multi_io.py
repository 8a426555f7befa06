"""Models of several named inputs (model.inputs, fed by a table's column groups) and several named outputs
(model.outputs, each with its own target, loss, metrics and loss weight): the graph's sources and sinks, the
gradient of the weighted sum of the losses, Keras' names in history, callbacks, evaluation, and the two
reference specs (specs/mnist_parity.yaml, specs/breast_cancer_two_inputs.yaml, specs/sms_text_and_table.yaml)
trained on slices."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from export.test_node import loadable
from export.test_readme_examples import link_node_modules, run_node

from specforge import api
from specforge.base.errors import DataError, ExportError, SpecError
from specforge.data import load_data
from specforge.data.feed import Feed, make_feed
from specforge.data.preprocessing import Preprocessing
from specforge.graph.build import build_graph
from specforge.graph.model import Model
from specforge.options import losses
from specforge.runs.directory import open_run
from specforge.spec import spec_from_dict
from specforge.training.progress import Silent

SPECS = Path(__file__).resolve().parents[1] / "specs"


def _two_output_spec(**compile_options) -> dict:
    return {
        "version": 1,
        "name": "two-heads",
        "data": {
            "source": "mnist",
            "preprocessing": {"reshape": [784], "rescale": "1/255", "labels": "sparse"},
            "targets": {"digit": {}, "parity": {"map": [0, 1] * 5}},
        },
        "model": {
            "input_shape": [784],
            "layers": [
                {"type": "Dense", "name": "hidden", "units": 8, "activation": "tanh"},
                {"type": "Dense", "name": "digit", "units": 10, "activation": "softmax", "inputs": "hidden"},
                {"type": "Dense", "name": "parity", "units": 1, "activation": "sigmoid", "inputs": "hidden"},
            ],
            "outputs": {
                "digit": {"layer": "digit", "loss": "sparse_categorical_crossentropy"},
                "parity": {"layer": "parity", "loss": "binary_crossentropy", "metrics": ["accuracy"]},
            },
        },
        "compile": {"optimizer": "adam", "metrics": ["accuracy"], **compile_options},
        "fit": {"epochs": 1, "batch_size": 32, "validation": "test", "seed": 0},
    }


def test_named_outputs_are_the_graphs_sinks_in_their_order():
    graph = build_graph(spec_from_dict(_two_output_spec()))
    assert [graph.nodes[index].source for index in graph.output_nodes] == ["digit", "parity"]
    assert [graph.nodes[index].output_shape for index in graph.output_nodes] == [(10,), (1,)]


def test_the_gradient_is_that_of_the_weighted_sum_of_the_output_losses():
    """Each output's loss on its own target, weighted by loss_weights: the gradient of the whole matches
    central finite differences of the weighted sum, computed from the outputs of an ordinary forward pass."""
    graph = build_graph(spec_from_dict(_two_output_spec(loss_weights={"parity": 0.25})))
    model = Model.initialize(graph, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 784)).astype(np.float64)
    digits = np.array([3, 4, 7, 0])
    parity = (digits % 2).astype(np.float64).reshape(-1, 1)
    each = [losses.create("sparse_categorical_crossentropy"), losses.create("binary_crossentropy")]
    targets = [digits, parity]
    weights = [1.0, 0.25]
    for params in model.params:
        for name in params:
            params[name] = params[name].astype(np.float64)
    model = Model(graph, model.params)

    def weighted(model: Model) -> float:
        outputs = model.outputs(x)
        return sum(w * loss.value(out, t) for w, loss, out, t in zip(weights, each, outputs, targets))

    values, outputs, grads, _ = model.gradients(x, targets, each, loss_weights=weights)
    assert len(values) == 2 and sum(w * v for w, v in zip(weights, values)) == pytest.approx(weighted(model))
    assert outputs[1].shape == (4, 1) and np.all((outputs[1] > 0) & (outputs[1] < 1))
    trainable = model.trainable_params()
    for param, grad in zip(trainable, grads):
        for flat_index in (0, param.size // 2, param.size - 1):
            index = np.unravel_index(flat_index, param.shape)
            saved = param[index]
            param[index] = saved + 1e-6
            up = weighted(model)
            param[index] = saved - 1e-6
            down = weighted(model)
            param[index] = saved
            assert grad[index] == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-7)


def test_history_and_test_metrics_name_each_output_as_keras_does(tmp_path):
    run = api.fit(spec_from_dict(_two_output_spec()), out=tmp_path / "run", progress=Silent(), limit_train=96)
    history = json.loads((run.path / "history.json").read_text())
    assert list(history) == [
        "loss",
        "digit_loss",
        "parity_loss",
        "digit_accuracy",
        "parity_accuracy",
        "val_loss",
        "val_digit_loss",
        "val_parity_loss",
        "val_digit_accuracy",
        "val_parity_accuracy",
    ]
    # the total is the sum of the output losses (both weigh 1 here)
    assert history["loss"][0] == pytest.approx(history["digit_loss"][0] + history["parity_loss"][0])
    assert history["val_loss"][0] == pytest.approx(history["val_digit_loss"][0] + history["val_parity_loss"][0])
    report = api.evaluate(run.path, limit=50)
    assert report["examples"] == 50
    assert {"digit_loss", "parity_loss", "digit_accuracy", "parity_accuracy"} <= set(report)


def test_loss_weights_weigh_the_total_that_history_reports(tmp_path):
    run = api.fit(
        spec_from_dict(_two_output_spec(loss_weights={"digit": 0.5, "parity": 2.0})),
        out=tmp_path / "run",
        progress=Silent(),
        limit_train=64,
        limit_test=32,
    )
    history = json.loads((run.path / "history.json").read_text())
    expected = 0.5 * history["val_digit_loss"][0] + 2.0 * history["val_parity_loss"][0]
    assert history["val_loss"][0] == pytest.approx(expected)


def test_a_callback_monitors_one_outputs_validation_metric(tmp_path):
    spec = _two_output_spec()
    spec["fit"]["callbacks"] = [{"type": "ModelCheckpoint", "monitor": "val_parity_accuracy", "mode": "max"}]
    run = api.fit(spec_from_dict(spec), out=tmp_path / "run", progress=Silent(), limit_train=64, limit_test=32)
    assert (run.path / "best.npz").is_file()


def test_a_monitor_naming_no_outputs_value_lists_the_names(tmp_path):
    spec = _two_output_spec()
    spec["fit"]["callbacks"] = [{"type": "EarlyStopping", "monitor": "val_parity_acc"}]
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(SpecError) as error:
        api.validate(path)
    assert str(error.value).endswith("val_digit_accuracy, val_parity_accuracy")


def test_a_feed_gives_each_input_its_columns_in_the_groups_order():
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    left, right = Feed((np.array([4, 0]), np.array([1, 2, 3, 5]))).split(x)
    np.testing.assert_array_equal(left, x[:, [4, 0]])
    np.testing.assert_array_equal(right, x[:, [1, 2, 3, 5]])
    assert Feed().split(x) is x


def test_two_table_inputs_take_their_column_groups(tmp_path):
    spec = api.load_spec(SPECS / "breast_cancer_two_inputs.yaml", ["fit.epochs=10"])
    graph = build_graph(spec)
    assert [source.name for source in graph.model_inputs] == ["mean", "worst"]
    assert [source.shape for source in graph.model_inputs] == [(10,), (10,)]
    run = api.fit(spec, out=tmp_path / "run", progress=Silent())
    history = json.loads((run.path / "history.json").read_text())
    assert history["loss"][-1] < history["loss"][0]
    assert run.metrics["accuracy"] > 0.8


def test_the_text_and_table_reference_spec_learns_exports_and_predicts_raw_rows(tmp_path):
    """specs/sms_text_and_table.yaml: the message's token ids through an Embedding beside five counts through a
    Dense layer, trained on a slice; its export takes raw rows (the message as a string) and predicts them as the
    run directory does."""
    spec = api.load_spec(SPECS / "sms_text_and_table.yaml", ["fit.epochs=3"])
    graph = build_graph(spec)
    assert [(source.name, source.shape) for source in graph.model_inputs] == [("text", (64,)), ("counts", (5,))]
    assert graph.input_dtypes == ["int64", "float32"]
    run = api.fit(spec, out=tmp_path / "run", progress=Silent(), limit_train=1024, limit_test=256)
    history = json.loads((run.path / "history.json").read_text())
    assert history["loss"][-1] < history["loss"][0]
    labels = api.load_data(spec).test.labels[:256]
    assert run.metrics["accuracy"] > np.bincount(labels).max() / len(labels) + 0.03
    result = api.export(run.path)
    assert result.parity.passed and result.parity.classes_agree == result.parity.examples
    lines = (SPECS / "data" / "sms_spam_features.csv").read_text(encoding="utf-8").splitlines()
    (tmp_path / "rows.csv").write_text("\n".join(lines[:1] + lines[1:40]) + "\n", encoding="utf-8")
    exported = api.predict_rows(result.path, tmp_path / "rows.csv")
    np.testing.assert_allclose(
        exported.outputs, api.predict_rows(run.path, tmp_path / "rows.csv").outputs, rtol=1e-4, atol=1e-5
    )
    assert len(exported.records()) == 39 and {record["name"] for record in exported.records()} <= {"ham", "spam"}


def test_the_two_output_reference_spec_learns_both_outputs_on_a_slice(tmp_path):
    run = api.fit(
        api.load_spec(SPECS / "mnist_parity.yaml", ["fit.epochs=2", "fit.batch_size=32"]),
        out=tmp_path / "run",
        progress=Silent(),
        limit_train=256,
        limit_test=128,
    )
    history = json.loads((run.path / "history.json").read_text())
    assert history["digit_loss"][1] < history["digit_loss"][0] < math.log(10) + 0.1
    assert history["parity_loss"][1] < history["parity_loss"][0]
    assert "val_parity_accuracy" in history and run.metrics["loss"] == pytest.approx(history["val_loss"][1])


def test_a_two_output_model_exports_one_named_onnx_output_per_model_output(tmp_path):
    """The export's outputs are the model's, by name, under the parity gate; serve gives both by name."""
    import onnxruntime as ort

    from specforge.predict.session import OnnxPredictor
    from specforge.serve.interface import ServedModel

    run = api.fit(
        spec_from_dict(_two_output_spec()), out=tmp_path / "run", progress=Silent(), limit_train=32, limit_test=32
    )
    result = api.export(run.path)
    assert result.parity.passed and result.parity.classes_agree == result.parity.examples
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    assert [item.name for item in session.get_outputs()] == ["digit", "parity"]
    raw = load_data(run.config, run.path, {"train": 8}).train.images[:8]
    got = session.run(["digit", "parity"], {"input": raw.reshape(8, 784).astype(np.float32)})
    steps = open_run(run.path).model
    expected = steps.outputs(raw.reshape(8, 784).astype(np.float32) / 255)
    for each_got, each_expected in zip(got, expected, strict=True):
        np.testing.assert_allclose(each_got, each_expected, rtol=1e-4, atol=1e-5)
    served = ServedModel(OnnxPredictor(result.path))
    assert served.output_names == ["digit", "parity"]
    assert [out.shape for out in served.run(["digit", "parity"], {"input": raw.reshape(8, 784)})] == [(8, 10), (8, 1)]


def test_logits_of_a_two_output_model_are_each_softmax_outputs_input(tmp_path):
    """--logits adds NAME_logits for each softmax output (digit's), none for a sigmoid one (parity's)."""
    import onnxruntime as ort

    run = api.fit(
        spec_from_dict(_two_output_spec()), out=tmp_path / "run", progress=Silent(), limit_train=32, limit_test=32
    )
    result = api.export(run.path, logits=True)
    assert result.parity.passed and result.outputs == ["digit", "parity", "digit_logits"]
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    raw = load_data(run.config, run.path, {"test": 8}).test.images[:8].reshape(8, 784).astype(np.float32)
    digit, logits = session.run(["digit", "digit_logits"], {"input": raw})
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(exp / exp.sum(axis=1, keepdims=True), digit, rtol=1e-5, atol=1e-6)


def test_int8_export_of_two_outputs_gates_each_outputs_accuracy(tmp_path):
    """--quantize int8 measures each output's accuracy on the test split against its own labels (parity's mapped),
    and records both; the gate fails when any one output drops too far."""
    from specforge.export.inspect import describe, format_description
    from specforge.export.quantize import OutputAccuracy, QuantizationResult

    run = api.fit(
        spec_from_dict(_two_output_spec()), out=tmp_path / "run", progress=Silent(), limit_train=256, limit_test=32
    )
    result = api.export(run.path, quantize="int8", max_accuracy_drop=100)
    gate = result.quantization
    assert gate is not None and gate.examples == 10_000 and list(gate.outputs) == ["digit", "parity"]
    report = api.evaluate(run.path)
    assert gate.outputs["digit"].float_accuracy == pytest.approx(report["digit_accuracy"], abs=1e-4)
    assert gate.outputs["parity"].float_accuracy == pytest.approx(report["parity_accuracy"], abs=1e-4)
    assert "digit: accuracy" in gate.summary() and "parity: accuracy" in gate.summary()
    recorded = json.loads((run.path / "export.json").read_text())["quantization"]["outputs"]
    assert set(recorded) == {"digit", "parity"}
    described = format_description(describe(result.path))
    digit, parity = gate.outputs["digit"], gate.outputs["parity"]
    assert (
        f"quantized: int8 (test accuracy digit {100 * digit.float_accuracy:.2f}% float, "
        f"{100 * digit.int8_accuracy:.2f}% int8; parity {100 * parity.float_accuracy:.2f}% float, "
        f"{100 * parity.int8_accuracy:.2f}% int8, on 10000 examples)"
    ) in described

    def gated(parity_int8: float) -> QuantizationResult:
        outputs = {"digit": OutputAccuracy(0.9, 0.9, 10), "parity": OutputAccuracy(0.8, parity_int8, 10)}
        return QuantizationResult("int8", 10, 0.9, 0.9, 10, 0.5, 100, 50, outputs=outputs)

    assert gated(0.797).passed and not gated(0.79).passed
    assert "more than --max-accuracy-drop 0.5 points for an output" in gated(0.79).failure()


def test_predict_shows_the_classes_of_the_output_it_is_given(tmp_path):
    """A model of several outputs predicts one output's classes at a time, by name, the same from its ONNX file
    and from its run directory: the digit's names are the data's, parity's (a mapped target) its class numbers,
    its one sigmoid unit read as two classes."""
    run = api.fit(
        spec_from_dict(_two_output_spec()), out=tmp_path / "run", progress=Silent(), limit_train=32, limit_test=32
    )
    exported = api.export(run.path).path
    for model in (exported, run.path):
        with pytest.raises(DataError) as unchosen:
            api.predict_onnx(model, data="mnist:test", limit=2)
        assert str(unchosen.value) == (
            f"{model}: error: the model has outputs 'digit', 'parity'; choose the one whose classes to show with "
            "--output-name digit"
        )
        with pytest.raises(DataError, match=r"no output 'odd'; its outputs: digit, parity"):
            api.predict_onnx(model, data="mnist:test", limit=2, output_name="odd")
    probabilities = {}
    for model in (exported, run.path):
        digits = api.predict_onnx(model, data="mnist:test", limit=8, output_name="digit", top_k=3)
        parity = api.predict_onnx(model, data="mnist:test", limit=8, output_name="parity", top_k=2)
        assert {name for p in digits.predictions for _, name, _ in p.top} <= set("0123456789")
        assert all(sorted(c for c, _, _ in p.top) == [0, 1] for p in parity.predictions)
        assert all(abs(sum(v for _, _, v in p.top) - 1) < 1e-5 for p in parity.predictions)
        assert [p.label for p in parity.predictions] == [d.label % 2 for d in digits.predictions]  # mapped labels
        probabilities[model] = [[v for _, _, v in p.top] for p in digits.predictions + parity.predictions]
    for onnx_values, numpy_values in zip(probabilities[exported], probabilities[run.path], strict=True):
        np.testing.assert_allclose(onnx_values, numpy_values, rtol=1e-4, atol=1e-5)


def test_a_resumed_run_of_two_outputs_ends_with_the_weights_of_one_never_stopped(tmp_path):
    spec = _two_output_spec()
    spec["fit"]["epochs"] = 2
    straight = api.fit(spec_from_dict(spec), out=tmp_path / "straight", progress=Silent(), limit_train=64)
    spec["fit"]["epochs"] = 1
    api.fit(spec_from_dict(spec), out=tmp_path / "stopped", progress=Silent(), limit_train=64)
    resumed = api.fit(resume=tmp_path / "stopped", overrides=["fit.epochs=2"], progress=Silent())
    with np.load(straight.path / "weights.npz") as a, np.load(resumed.path / "weights.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
    assert straight.history == resumed.history


def test_a_sweep_may_optimise_one_outputs_validation_metric(tmp_path):
    spec = _two_output_spec()
    spec["sweep"] = {
        "parameters": {"compile.optimizer.learning_rate": {"choice": [0.001, 0.01]}},
        "metric": "val_parity_accuracy",
        "trials": 2,
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    api.validate(path)
    spec["sweep"]["metric"] = "val_parity_acc"
    path.write_text(json.dumps(spec))
    with pytest.raises(SpecError, match="val_parity_accuracy"):
        api.validate(path)


def test_a_two_input_table_model_exports_taking_raw_rows_and_predicts_as_its_run(tmp_path):
    """The export of a table model of two inputs takes raw rows, one input per feature column as every table
    model's, and routes each column to its model input: the parity gate passes and predictions from the ONNX
    model and from the run directory agree."""
    import onnx

    run = api.fit(
        api.load_spec(SPECS / "breast_cancer_two_inputs.yaml", ["fit.epochs=2"]),
        out=tmp_path / "run",
        progress=Silent(),
    )
    result = api.export(run.path)
    assert result.parity.passed
    model = onnx.load(str(result.path))
    spec = api.load_spec(SPECS / "breast_cancer_two_inputs.yaml")
    features = [feature["column"] for feature in spec.config["data"]["features"]]
    assert [item.name for item in model.graph.input] == features
    rows = SPECS / "data" / "breast_cancer.csv"
    exported = api.predict_rows(result.path, rows, limit=20)
    from_run = api.predict_rows(run.path, rows, limit=20)
    assert exported.outputs.shape == (20, 2)
    np.testing.assert_allclose(exported.outputs, from_run.outputs, rtol=1e-4, atol=1e-5)


def _readme_block(heading: str, language: str) -> str:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    return re.search(rf"```{language}\n(.*?)```", text[start:], re.DOTALL).group(1)


@pytest.mark.skipif(not loadable("onnxruntime-node"), reason="node with onnxruntime-node is not available")
def test_the_readmes_node_example_reads_each_output_by_name(tmp_path):
    spec = _two_output_spec()
    spec["data"]["preprocessing"]["reshape"] = [28, 28, 1]
    spec["model"]["input_shape"] = [28, 28, 1]
    spec["model"]["layers"].insert(0, {"type": "Flatten"})
    run = api.fit(spec_from_dict(spec), out=tmp_path / "run", progress=Silent(), limit_train=64, limit_test=32)
    result = api.export(run.path)
    directory = tmp_path / "deployed"
    directory.mkdir()
    (directory / "model.onnx").write_bytes(result.path.read_bytes())
    digit = load_data(run.config, run.path, {"test": 1}).test.images[0]
    digit_scores, parity = open_run(run.path).model.outputs(digit.reshape(1, 28, 28, 1).astype(np.float32) / 255)
    expected = f"{int(digit_scores.argmax())} {'odd' if parity[0, 0] > 0.5 else 'even'}"
    link_node_modules(directory, "onnxruntime-node")
    script = (
        f"const pixels = {json.dumps(digit.ravel().tolist())};\n{_readme_block('### Several inputs and outputs', 'js')}"
    )
    assert run_node(directory, "example.mjs", script) == expected


def test_the_graph_picture_draws_each_named_input():
    from specforge.graph.picture import graph_dot

    dot = graph_dot(build_graph(api.load_spec(SPECS / "breast_cancer_two_inputs.yaml")), "two")
    assert '"mean" [label="mean\\n(10,)"' in dot and '"worst" [label="worst\\n(10,)"' in dot
    assert '"mean" -> "mean_branch";' in dot and '"input"' not in dot


def test_a_two_output_table_model_exports_taking_raw_rows_each_output_by_name(tmp_path):
    """A table model's outputs (the diagnosis and its map to the other class) export by name under the parity gate
    on each, the same as the run's numpy outputs on raw rows; predict of rows shows the output --output-name
    names, from the exported file and from the run directory alike, and without it refuses naming them."""
    import onnxruntime as ort
    import yaml

    from specforge.data.table.read import read_table
    from specforge.predict.session import OnnxPredictor
    from specforge.predict.table import each_numpy_output, rows_feed, table_inputs
    from specforge.serve.interface import ServedModel

    spec = yaml.safe_load((SPECS / "breast_cancer_two_inputs.yaml").read_text())
    spec["data"]["train"] = str(SPECS / "data" / "breast_cancer.csv")
    spec["data"]["targets"] = {"diagnosis": {}, "other": {"map": [1, 0]}}
    spec["model"]["layers"][-1] = {"type": "Dense", "name": "diagnosis", "units": 2, "activation": "softmax"}
    spec["model"]["layers"].append(
        {"type": "Dense", "name": "other", "units": 1, "activation": "sigmoid", "inputs": "concatenate"}
    )
    spec["model"]["outputs"] = {
        "diagnosis": {"layer": "diagnosis"},
        "other": {"layer": "other", "loss": "binary_crossentropy"},
    }
    spec["fit"]["epochs"] = 2
    run = api.fit(spec_from_dict(spec), out=tmp_path / "run", progress=Silent())
    result = api.export(run.path)
    assert result.parity.passed and result.outputs == ["diagnosis", "other"]
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["output_class_names"])["other"] == ["0", "1"]
    rows = read_table(SPECS / "data" / "breast_cancer.csv", "rows")
    got = session.run(["diagnosis", "other"], rows_feed(rows, table_inputs(metadata)))
    steps = open_run(run.path)
    pipeline = Preprocessing.from_dict(steps.preprocessing).pipeline
    expected = each_numpy_output(steps.graph, steps.weights(), pipeline, rows, make_feed(run.config["data"], pipeline))
    for mine, theirs in zip(got, expected, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)
    served = ServedModel(OnnxPredictor(result.path))
    assert served.output_names == ["diagnosis", "other"] and served.columns is not None
    cells = {column: rows.column(column).astype(np.float32).reshape(-1, 1) for column, _ in served.columns}
    for mine, theirs in zip(served.run(["diagnosis", "other"], cells), got, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-6)
    table_file = SPECS / "data" / "breast_cancer.csv"
    for model in (result.path, run.path):
        with pytest.raises(DataError, match="the model has outputs 'diagnosis', 'other'; choose the one whose"):
            api.predict_rows(model, table_file, limit=3)
        with pytest.raises(DataError, match="the model has no output 'parity'; its outputs: diagnosis, other"):
            api.predict_rows(model, table_file, limit=3, output_name="parity")
        diagnosis = api.predict_rows(model, table_file, limit=5, output_name="diagnosis")
        other = api.predict_rows(model, table_file, limit=5, output_name="other")
        assert diagnosis.names == pipeline.target.names and other.names == ["0", "1"]
        np.testing.assert_allclose(diagnosis.outputs, got[0][:5], rtol=1e-4, atol=1e-5)
        # one sigmoid unit: the probabilities of classes 0 and 1
        np.testing.assert_allclose(other.outputs, np.hstack([1 - got[1][:5], got[1][:5]]), rtol=1e-4, atol=1e-5)
        assert [record["class"] for record in other.records()] == [int(p > 0.5) for p in got[1][:5, 0]]


def test_logits_of_a_model_without_a_softmax_output_are_refused_naming_why():
    from specforge.export.onnx import export_graph

    spec = _two_output_spec()
    spec["model"]["layers"][1] = {**spec["model"]["layers"][1], "units": 1, "activation": "sigmoid"}
    spec["model"]["outputs"]["digit"]["loss"] = "binary_crossentropy"
    spec["data"]["targets"]["digit"] = {"map": [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]}
    graph = build_graph(spec_from_dict(spec))
    model = Model.initialize(graph, np.random.default_rng(0))
    with pytest.raises(ExportError, match="--logits needs an output whose activation is softmax, and no output"):
        export_graph(graph, model.params, logits=True)
