"""The parity gate, and exporting a trained run directory: what is written, and what a broken export writes
(nothing)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import pytest

from export.models import SPEC_FILES, export_spec, small_spec
from specforge.base.errors import ExportError
from specforge.export import onnx as onnx_export
from specforge.export.run_export import export_run
from specforge.layers import REGISTRY
from specforge.spec import load_spec


def scaled_output(monkeypatch, kind: str, factor: float = 1.01) -> None:
    """Make ``kind``'s conversion multiply its output by ``factor``: a deliberately wrong export."""
    original = REGISTRY[kind].to_onnx

    def broken(self, builder, params, input_name):
        name, self.name = self.name, f"{self.name}_unscaled"
        try:
            out = original(self, builder, params, input_name)
        finally:
            self.name = name
        factor_name = builder.initializer(np.asarray(factor, np.float32), f"{name}_factor")
        return builder.node("Mul", [out, factor_name], name)

    monkeypatch.setattr(REGISTRY[kind], "to_onnx", broken)


def test_export_run_writes_the_model_and_its_record(run_copy):
    result = export_run(run_copy)
    path = run_copy / "model.onnx"
    assert result.path == path and path.is_file()
    data = path.read_bytes()
    record = json.loads((run_copy / "export.json").read_text())
    assert record["sha256"] == hashlib.sha256(data).hexdigest() == result.sha256
    assert record["size"] == len(data)
    assert (record["opset"], record["ir_version"], record["outputs"]) == (13, 7, ["probabilities"])
    parity = record["parity"]
    assert parity["passed"] and parity["examples"] == 256 and parity["classes_agree"] == 256
    assert parity["data"] == "mnist test[0:256]"
    assert 0 <= parity["max_abs_diff"] <= 1e-5 + 1e-4
    model = onnx.load(str(path))
    meta = {prop.key: prop.value for prop in model.metadata_props}
    metrics = json.loads((run_copy / "metrics.json").read_text())
    assert float(meta["test_accuracy"]) == metrics["accuracy"]
    assert not [p.name for p in run_copy.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_export_run_options(run_copy, tmp_path):
    target = tmp_path / "out" / "digits.onnx"
    result = export_run(run_copy, opset=17, logits=True, preprocessing=False, output=target)
    assert result.path == target and target.is_file() and not (run_copy / "model.onnx").exists()
    model = onnx.load(str(target))
    assert (model.ir_version, model.opset_import[0].version) == (8, 17)
    assert [o.name for o in model.graph.output] == ["probabilities", "logits"]
    assert json.loads((run_copy / "export.json").read_text())["preprocessing_in_graph"] is False


@pytest.mark.parametrize(
    "kind,named",
    [
        ("Conv2D", "'conv2d' (Conv2D)"),
        ("BatchNormalization", "'batch_normalization' (BatchNormalization)"),
        ("Dense", "'dense' (Dense)"),
    ],
)
def test_a_broken_layer_is_named_and_nothing_is_written(run_copy, monkeypatch, kind, named):
    scaled_output(monkeypatch, kind)
    before = sorted(p.name for p in run_copy.iterdir())
    with pytest.raises(ExportError) as caught:
        export_run(run_copy)
    message = caught.value.format()
    assert f"the first layer whose ONNX output differs from the numpy forward is {named}" in message
    assert "parity check failed on 256 examples of mnist test[0:256]" in message
    assert message.endswith("nothing was written")
    assert sorted(p.name for p in run_copy.iterdir()) == before


def test_broken_preprocessing_is_named(run_copy, monkeypatch):
    original = onnx_export._preprocess

    def shifted(builder, name, shape, preprocessing):
        out = builder.node(
            "Add",
            [original(builder, name, shape, preprocessing), builder.initializer(np.asarray(0.5, np.float32), "shift")],
            "shifted",
        )
        builder.shapes[out] = shape
        return out

    monkeypatch.setattr(onnx_export, "_preprocess", shifted)
    with pytest.raises(ExportError, match=r"first layer whose ONNX output differs .* is the preprocessing"):
        export_run(run_copy)
    assert not (run_copy / "model.onnx").exists()


def test_the_search_is_not_fooled_by_large_raw_pixel_activations(monkeypatch):
    """The seed works on raw 0-255 pixels: its convolutions' outputs are in the hundreds, where float32
    rounding exceeds the absolute tolerance; the gate still names the layer that is really wrong."""
    scaled_output(monkeypatch, "Dense", factor=1.001)
    seed = load_spec(SPEC_FILES[[p.stem for p in SPEC_FILES].index("mnist")])
    with pytest.raises(ExportError, match=r"differs from the numpy forward is 'dense' \(Dense\)"):
        export_spec(seed)


def test_the_gate_result_is_reported():
    _, parity, *_ = export_spec(small_spec())
    assert parity.passed and parity.first_mismatch is None
    assert parity.summary() == (
        f"256 examples of mnist test[0:256]: max abs difference {parity.max_abs_diff:.3g} "
        "(rtol 0.0001, atol 1e-05), classes agree on 256/256"
    )
