"""``specforge export`` and ``specforge inspect`` on the command line: what they print, and their errors."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import onnx
from typer.testing import CliRunner

from export.test_parity import scaled_output
from specforge.cli.commands import app


def invoke(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def test_export_prints_the_parity_and_the_path(run_copy):
    result = invoke("export", run_copy, "--onnx")
    assert result.exit_code == 0, result.output
    parity, model = result.stdout.splitlines()
    assert parity.startswith("parity: 256 examples of mnist test[0:256]: max abs difference ")
    assert parity.endswith(" (rtol 0.0001, atol 1e-05), classes agree on 256/256")
    size = (run_copy / "model.onnx").stat().st_size
    assert model == f"model: {run_copy / 'model.onnx'} (opset 13, IR 7, {size / 1024:.1f} KiB)"


def test_export_options(run_copy, tmp_path):
    result = invoke("export", run_copy, "--opset", "21", "--logits", "--no-preprocessing", "-o", tmp_path / "m.onnx")
    assert result.exit_code == 0, result.output
    model = onnx.load(str(tmp_path / "m.onnx"))
    assert (model.ir_version, model.opset_import[0].version) == (10, 21)
    assert [o.name for o in model.graph.output] == ["probabilities", "logits"]
    assert {p.key: p.value for p in model.metadata_props}["preprocessing_in_graph"] == "false"


def test_export_errors_are_one_line(run_copy, tmp_path, monkeypatch):
    assert invoke("export", run_copy, "--opset", "12").exit_code == 2
    missing = invoke("export", tmp_path / "nowhere")
    assert missing.exit_code == 2 and len(missing.stderr.splitlines()) == 1
    assert missing.stderr.startswith(f"{tmp_path / 'nowhere'}: error: ")
    scaled_output(monkeypatch, "Conv2D")
    broken = invoke("export", run_copy)
    assert broken.exit_code == 2 and broken.stdout == ""
    (line,) = broken.stderr.splitlines()
    assert "parity check failed" in line and "'conv2d' (Conv2D)" in line and line.endswith("nothing was written")
    assert not (run_copy / "model.onnx").exists()


def test_inspect(run_copy):
    assert invoke("export", run_copy).exit_code == 0
    path = run_copy / "model.onnx"
    model = onnx.load(str(path))
    result = invoke("inspect", path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"file: {path} ({path.stat().st_size / 1024:.1f} KiB)"
    assert "producer: specforge 0.1.0" in lines
    assert "IR version: 7; opset: ai.onnx 13" in lines
    assert any(line.startswith("  input: float32 [N, 28, 28, 1]") for line in lines)
    assert any(line.startswith("  probabilities: float32 [N, 10]") for line in lines)
    assert any(line.split() == ["spec_name", "small-cnn"] for line in lines)

    info = json.loads(invoke("inspect", path, "--json").stdout)
    assert info["ops"] == dict(Counter(node.op_type for node in model.graph.node))
    assert info["nodes"] == len(model.graph.node)
    assert info["metadata"] == {p.key: p.value for p in model.metadata_props}
    assert info["inputs"] == [
        {"name": "input", "type": "float32", "shape": ["N", 28, 28, 1], "doc": model.graph.input[0].doc_string}
    ]
    assert info["size"] == path.stat().st_size


def test_inspect_counts_parameters_as_the_summary_does(run_copy, tmp_path):
    """The summary counts the model's weights, moving statistics included; the file's initializers also hold the
    preprocessing's constants and a shape, and the batch normalization folded into one scale and shift."""
    from specforge import api

    assert invoke("export", run_copy).exit_code == 0
    path = run_copy / "model.onnx"
    _, graph = api.validate(run_copy / "spec.yaml")
    stored = sum(np.prod(tensor.dims, dtype=int) for tensor in onnx.load(str(path)).graph.initializer)
    assert stored != graph.total_params
    lines = invoke("inspect", path).stdout.splitlines()
    assert any(
        line.endswith(f"parameters: {graph.total_params:,} (the model's weights, as validate counts them)")
        for line in lines
    ), lines
    assert json.loads(invoke("inspect", path, "--json").stdout)["parameters"] == graph.total_params

    foreign = onnx.load(str(path))
    del foreign.metadata_props[:]
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    counted = sum(
        np.prod(tensor.dims, dtype=int)
        for tensor in foreign.graph.initializer
        if tensor.data_type != onnx.TensorProto.INT64
    )
    info = json.loads(invoke("inspect", tmp_path / "foreign.onnx", "--json").stdout)
    assert (info["parameters"], info["parameters_counted"]) == (counted, "initializers")


def test_inspect_refuses_what_is_not_a_model(tmp_path):
    (tmp_path / "x.onnx").write_bytes(b"\x00garbage")
    result = invoke("inspect", tmp_path / "x.onnx")
    assert result.exit_code == 2 and "cannot load as an ONNX model" in result.stderr
    for missing in (tmp_path / "nowhere.onnx", tmp_path):
        result = invoke("inspect", missing)
        assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
        assert "no such file" in result.stderr or "is a directory, not an ONNX file" in result.stderr


def test_external_data_outside_the_models_folder_is_refused_as_predict_refuses_it(run_copy, tmp_path):
    """An initializer whose external data names ../weights.bin: inspect, like predict (and serve, through the same
    model loading), refuses it in one line instead of reading a file outside the model's folder."""
    assert invoke("export", run_copy).exit_code == 0
    model = onnx.load(str(run_copy / "model.onnx"))
    folder = tmp_path / "model"
    folder.mkdir()
    onnx.save_model(model, str(folder / "model.onnx"), save_as_external_data=True, location="weights.bin")
    (tmp_path / "weights.bin").write_bytes((folder / "weights.bin").read_bytes())
    outside = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    for tensor in outside.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../weights.bin"
    onnx.save(outside, str(folder / "outside.onnx"))
    assert invoke("inspect", folder / "model.onnx").exit_code == 0
    for command in ("inspect", "predict"):
        result = invoke(command, folder / "outside.onnx", *(["--data", "mnist:test"] if command == "predict" else []))
        assert result.exit_code == 2 and result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"{folder / 'outside.onnx'}: error: cannot load as an ONNX model (")
        assert "../weights.bin" in line and line.endswith("); give a file written by specforge export")
