"""The Python API in a notebook: fit returns the run with its history, graph and model as attributes, the
summary prints as validate's does, and reprs are one short line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from specforge import api
from specforge.cli.summary import print_summary

SEED_SPEC = Path(__file__).resolve().parents[1] / "specs" / "mnist.yaml"


def test_fit_returns_the_run_with_its_history_graph_and_model(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = api.fit(SEED_SPEC, overrides=["fit.epochs=1"], root="runs", quiet=True, limit_train=64, limit_test=32)
    assert run.history == json.loads((run.path / "history.json").read_text())
    assert len(run.history["loss"]) == 1 and "val_accuracy" in run.history
    assert run.graph.total_params == 203_434
    images = np.zeros((2, 28, 28, 1), np.float32)
    np.testing.assert_array_equal(run.model.predict(images, 2), run.load_model("weights.npz").predict(images, 2))
    for value in (run, run.graph, run.model, run.spec()):
        assert len(repr(value)) < 120 and "\n" not in repr(value)
    assert repr(run).startswith("Run('runs/mnist-cnn/1', mnist-cnn, completed, test loss ")
    capsys.readouterr()
    text = run.summary()
    assert capsys.readouterr().out == ""  # a run knows no screen: the summary is returned, not printed
    api_spec, api_graph = api.validate(SEED_SPEC)
    print_summary(api_spec, api_graph)
    expected = capsys.readouterr().out
    assert text.splitlines()[1:-1] == expected.splitlines()[1:-1]  # the title and the file line name the run


def test_a_run_directory_predicts_without_exporting_first(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from specforge.cli.commands import app
    from specforge.data.mnist import load_mnist
    from specforge.training.evaluate import predict_run

    monkeypatch.chdir(tmp_path)
    run = api.fit(SEED_SPEC, overrides=["fit.epochs=1"], root="runs", quiet=True, limit_train=64, limit_test=32)
    report = api.predict_onnx(run.path, data="mnist:test", limit=6)
    want = predict_run(run, load_mnist().splits["test"].images[:6])
    assert [p.predicted for p in report.predictions] == list(want.argmax(axis=1))
    np.testing.assert_allclose([p.top[0][2] for p in report.predictions], want.max(axis=1), rtol=1e-6)
    assert not (run.path / "model.onnx").exists()
    result = CliRunner().invoke(app, ["predict", "runs/mnist-cnn/1", "--data", "mnist:test", "--limit", "6"])
    assert result.exit_code == 0, result.output
    assert len([line for line in result.output.splitlines() if line.startswith("test[")]) == 6
    Path("rows.csv").write_text("a,b\n1,2\n")
    result = CliRunner().invoke(app, ["predict", "runs/mnist-cnn/1", "rows.csv"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "rows.csv: error: this model takes images or arrays, not table rows; give PNG/JPEG images or .npy/.npz arrays"
    )
