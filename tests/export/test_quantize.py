"""``specforge export RUN --quantize int8``: the int8 model, its accuracy gate, and what ``inspect`` says."""

from __future__ import annotations

import json
from collections import Counter

import onnx
from typer.testing import CliRunner

from specforge import api
from specforge.cli.commands import app
from specforge.export import run_export


def invoke(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def test_quantize_writes_an_int8_model_that_keeps_the_accuracy(run_copy):
    result = invoke("export", run_copy, "--quantize", "int8")
    assert result.exit_code == 0, result.output
    _parity, gate, model_line = result.stdout.splitlines()
    path = run_copy / "model.int8.onnx"
    assert model_line.startswith(f"model: {path} (opset 13, IR 7, ")
    assert not (run_copy / "model.onnx").exists()

    record = json.loads((run_copy / "export.json").read_text())["quantization"]
    assert record["passed"] and record["examples"] == 10000 and record["type"] == "int8"
    assert api.export(run_copy).path == run_copy / "model.onnx"
    float_accuracy = api.predict_onnx(run_copy / "model.onnx", data="mnist:test").accuracy
    int8_report = api.predict_onnx(path, data="mnist:test")
    assert record["float_accuracy"] == float_accuracy
    assert record["int8_accuracy"] == int8_report.accuracy
    assert abs(record["accuracy_change"]) <= 0.5
    assert record["int8_size"] == path.stat().st_size < record["float_size"]
    assert gate == (
        f"int8: 10000 test examples: accuracy {100 * float_accuracy:.2f}% float, "
        f"{100 * int8_report.accuracy:.2f}% int8 ({100 * (int8_report.accuracy - float_accuracy):+.2f} "
        f"points), classes agree on {record['classes_agree']}/10000; "
        f"{record['float_size'] / 1024:.1f} KiB -> {record['int8_size'] / 1024:.1f} KiB"
    )

    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    ops = Counter(node.op_type for node in model.graph.node)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0
    types = {tensor.name: tensor.data_type for tensor in model.graph.initializer}
    for kernel in ("conv2d_kernel", "dense_kernel"):
        assert kernel not in types
        assert types[f"{kernel}_quantized"] == onnx.TensorProto.INT8
    assert model.producer_name == "specforge"
    metadata = {p.key: p.value for p in model.metadata_props}
    assert json.loads(metadata["class_names"]) == [str(d) for d in range(10)]

    info = json.loads(invoke("inspect", path, "--json").stdout)
    assert info["quantized"]["type"] == "int8"
    assert info["quantized"]["int8_accuracy"] == int8_report.accuracy
    assert (
        f"quantized: int8 (test accuracy {100 * float_accuracy:.2f}% float, "
        f"{100 * int8_report.accuracy:.2f}% int8, on 10000 examples)"
    ) in invoke("inspect", path).stdout.splitlines()
    assert "quantized: no (float32)" in invoke("inspect", run_copy / "model.onnx").stdout.splitlines()


def test_the_gate_refuses_an_int8_model_that_loses_accuracy(run_copy, monkeypatch):
    """Calibrated on images a thousand times too dark, the int8 activations clip, and the gate says no."""
    real = run_export.quantization_data

    def too_dark(*args):
        calibration, inputs, labels = real(*args)
        return calibration / 1000, inputs, labels

    monkeypatch.setattr(run_export, "quantization_data", too_dark)
    result = invoke("export", run_copy, "--quantize", "int8", "--max-accuracy-drop", "0.5")
    assert result.exit_code == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{run_copy}: error: int8 quantization loses too much: 10000 test examples: accuracy ")
    assert "% float, " in line and " points), classes agree on " in line
    assert line.endswith(
        "more than --max-accuracy-drop 0.5 points, nothing was written (raise --max-accuracy-drop to accept it)"
    )
    assert sorted(p.name for p in run_copy.iterdir() if "onnx" in p.name or p.name == "export.json") == []


def test_web_with_quantize_puts_the_int8_model_on_the_page(run_copy, tmp_path):
    result = invoke("export", run_copy, "--quantize", "int8", "--web", tmp_path / "site")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "site" / "model.onnx").read_bytes() == (run_copy / "model.int8.onnx").read_bytes()
