"""``train --backend torch``: the same run as the numpy backend (initial weights, the first steps' losses,
accuracy after an epoch), in the same run directory (weights, history, manifest, checkpoints, exact
resume, callbacks), read by export, predict and ``runs`` unchanged; and its one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from needs import require
from test_train import SMALL, StopAt, assert_same_weights, train, weights_of
from typer.testing import CliRunner

from specforge import api
from specforge.base.errors import RunError
from specforge.cli.commands import app
from specforge.runs import directory as runs
from specforge.spec import spec_from_dict
from specforge.training.progress import Silent

#: SMALL without its dropout (PyTorch draws its masks from its own generator, so only a model without
#: dropout takes the same steps on both backends) and without the convolution's bias: batch normalization
#: cancels it, so its gradient is zero but for rounding, and Adam steps by the sign of that rounding.
DETERMINED = {
    **SMALL,
    "model": {
        **SMALL["model"],
        "layers": [
            {**layer, "use_bias": False} if layer["type"] == "Conv2D" else layer
            for layer in SMALL["model"]["layers"]
            if layer["type"] != "Dropout"
        ],
    },
}


@pytest.fixture(autouse=True)
def _needs_torch():
    require(sys.modules.get("torch") is not None or _importable("torch"), "PyTorch (pip install -e '.[torch]')")


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


class Losses(Silent):
    """The running loss after each batch of the first epoch."""

    def __init__(self):
        self.values: list[float] = []
        self.epoch = 0

    def epoch_start(self, epoch, epochs, steps):
        self.epoch = epoch

    def batch_end(self, step, logs):
        if self.epoch == 0:
            self.values.append(logs["loss"])


#: DETERMINED with weighted examples (Keras' balanced class weights) and a moving average of the weights that
#: overwrites them at step 7 of the epoch's 10; without callbacks, so that the saved weights are the averages
#: (EarlyStopping's restore_best_weights restores the raw ones, as in Keras).
WEIGHTED = {
    **DETERMINED,
    "compile": {
        **DETERMINED["compile"],
        "optimizer": {
            "name": "adam",
            "learning_rate": 0.003,
            "use_ema": True,
            "ema_momentum": 0.9,
            "ema_overwrite_frequency": 7,
        },
    },
    "fit": {**DETERMINED["fit"], "class_weight": "balanced", "callbacks": []},
}


def _train_both(root: Path, spec: dict, overrides=("fit.epochs=1",)) -> dict:
    """``spec`` trained on both backends: ``{backend: (run, first epoch's running losses)}``."""
    trained = {}
    for backend in ("numpy", "torch"):
        losses = Losses()
        run = train(
            root,
            f"{spec['name']}/{backend}",
            spec,
            list(overrides),
            progress=losses,
            backend=backend,
            **({"device": "cpu"} if backend == "torch" else {}),
        )
        trained[backend] = (run, losses.values)
    return trained


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """DETERMINED trained for one epoch on both backends."""
    return _train_both(tmp_path_factory.mktemp("pair"), DETERMINED)


@pytest.fixture(scope="module")
def weighted_pair(tmp_path_factory):
    """WEIGHTED trained for one epoch on both backends."""
    return _train_both(tmp_path_factory.mktemp("weighted"), WEIGHTED)


def test_both_backends_start_from_the_same_weights(tmp_path):
    from specforge.training import loop
    from specforge.training.torch.backend import torch_steps_factory

    setup = loop._setup(spec_from_dict(DETERMINED), tmp_path, {"train": 32, "test": 32})
    numpy_trainer = loop.Trainer(setup, tmp_path, Silent())
    torch_trainer = loop.Trainer(setup, tmp_path, Silent(), backend=torch_steps_factory("cpu"))
    lowered = torch_trainer.steps.network.specforge_params()
    for node, expected, actual in zip(setup.graph.nodes, numpy_trainer.model.params, lowered):
        assert expected.keys() == actual.keys()
        for name in expected:
            np.testing.assert_array_equal(actual[name], expected[name], err_msg=f"{node.layer.name}/{name}")


def test_the_first_steps_losses_agree(pair):
    numpy_losses, torch_losses = pair["numpy"][1], pair["torch"][1]
    assert len(numpy_losses) == len(torch_losses) == 10
    np.testing.assert_allclose(torch_losses[:5], numpy_losses[:5], rtol=1e-4)


def test_after_an_epoch_the_test_accuracies_are_within_half_a_point(pair):
    numpy_run, torch_run = pair["numpy"][0], pair["torch"][0]
    assert abs(torch_run.metrics["accuracy"] - numpy_run.metrics["accuracy"]) <= 0.005
    numpy_weights, torch_weights = weights_of(numpy_run.path), weights_of(torch_run.path)
    assert numpy_weights.keys() == torch_weights.keys()
    for key in numpy_weights:
        np.testing.assert_allclose(torch_weights[key], numpy_weights[key], rtol=1e-3, atol=1e-4, err_msg=key)


def test_a_torch_run_directory_is_a_run_directory(pair):
    run = pair["torch"][0]
    names = {path.name for path in run.path.iterdir()}
    assert {
        "weights.npz",
        "best.npz",
        "checkpoint.npz",
        "history.json",
        "history.csv",
        "metrics.json",
        "manifest.json",
        "spec.yaml",
        "spec.resolved.json",
        "preprocessing.json",
    } <= names
    manifest = run.manifest
    assert (manifest["backend"], manifest["device"], manifest["device_request"]) == ("torch", "cpu", "cpu")
    assert manifest["torch"].startswith("2.") and manifest["status"] == "completed"
    assert list(run.history) == ["loss", "accuracy", "top_k_accuracy", "val_loss", "val_accuracy", "val_top_k_accuracy"]
    assert json.loads((run.path / "checkpoint.json").read_text())["epoch"] == 1
    listed = {Path(record.path).name: record for record in api.runs("small", root=run.path.parent.parent)}
    assert listed["torch"].status == "completed" and listed["torch"].epochs_completed == 1
    assert listed["torch"].test["accuracy"] == run.metrics["accuracy"]


def test_export_and_predict_read_a_torch_run_unchanged(pair, tmp_path):
    run = pair["torch"][0]
    result = api.export(run.path, output=tmp_path / "model.onnx")
    assert result.parity.passed
    data = api.load_data(run.spec()).test
    images = data.images[:16]
    want = run.model.forward(data.preprocessing.images(images)).argmax(axis=1)
    assert list(api.predict(run.path, images).argmax(axis=1)) == list(want)
    report = api.predict_onnx(tmp_path / "model.onnx", data="mnist:test", limit=16)
    assert [p.predicted for p in report.predictions] == list(want)


def test_a_resumed_torch_run_ends_with_the_weights_of_one_never_stopped(tmp_path):
    straight = train(tmp_path, "straight", SMALL, ["fit.epochs=2"], backend="torch", device="cpu")
    with pytest.raises(api.TrainingInterrupted):
        train(tmp_path, "stopped", SMALL, ["fit.epochs=2"], progress=StopAt(2, 3), backend="torch", device="cpu")
    resumed = api.fit(resume=tmp_path / "stopped", progress=Silent())
    assert resumed.manifest["backend"] == "torch"
    assert_same_weights(straight.path, resumed.path)
    assert straight.history == resumed.history


def test_the_spec_can_name_the_backend(tmp_path):
    run = train(
        tmp_path,
        "from-spec",
        {**DETERMINED, "fit": {**DETERMINED["fit"], "backend": "torch"}},
        ["fit.epochs=1"],
        device="cpu",
    )
    assert run.manifest["backend"] == "torch"


# -- bad input ---------------------------------------------------------------------------------------
def _cli_train(tmp_path, *options):
    spec = tmp_path / "small.yaml"
    spec.write_text(json.dumps(SMALL), encoding="utf-8")
    return CliRunner().invoke(
        app, ["train", str(spec), "--out", str(tmp_path / "run"), "--limit-train", "32", "--limit-test", "32", *options]
    )


def test_without_pytorch_one_line_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    result = _cli_train(tmp_path, "--backend", "torch")
    assert result.exit_code == 2
    assert result.output == (
        "specforge train: error: --backend torch needs PyTorch; install it with: pip install 'specforge[torch]'\n"
    )
    assert not (tmp_path / "run").exists()


def test_cuda_without_a_gpu_is_one_line(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as here; a GPU machine runs the test too
    result = _cli_train(tmp_path, "--backend", "torch", "--device", "cuda")
    assert result.exit_code == 2
    assert result.output.startswith("--device cuda: error: PyTorch sees no CUDA GPU here")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "options,message",
    [
        (["--device", "cpu"], "--device cpu: error: the numpy backend trains on this machine's CPU"),
        (["--backend", "torch", "--workers", "2"], "--workers 2: error: --workers is for --backend ray"),
        (["--backend", "jax"], "--backend jax: error: no backend 'jax'; the backends: numpy, torch, ray"),
        (
            ["--backend", "torch", "--device", "tpu"],
            "--device tpu: error: no device 'tpu'; give one of cpu, cuda, auto",
        ),
    ],
)
def test_options_that_do_not_fit_the_backend_are_one_line(tmp_path, options, message):
    result = _cli_train(tmp_path, *options)
    assert result.exit_code == 2
    assert result.output.startswith(message) and result.output.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_a_run_resumes_on_the_backend_it_started_with(tmp_path):
    with pytest.raises(api.TrainingInterrupted):
        train(tmp_path, "stopped", DETERMINED, ["fit.epochs=1"], progress=StopAt(1, 2))
    with pytest.raises(RunError) as caught:
        api.fit(resume=tmp_path / "stopped", backend="torch", progress=Silent())
    assert caught.value.format() == (
        "--backend torch: error: the run was trained with the numpy backend and resumes on it; leave out --backend"
    )


def test_validate_imports_no_pytorch(tmp_path):
    import subprocess

    spec = tmp_path / "small.yaml"
    spec.write_text(json.dumps({**SMALL, "fit": {**SMALL["fit"], "backend": "torch"}}), encoding="utf-8")
    code = (
        "import sys; from specforge.cli.commands import main; sys.argv = ['specforge', 'validate', sys.argv[1]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules, 'ray' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "False False", result.stderr


@pytest.mark.parametrize("environment,policy", [({}, "PASSIVE"), ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE")])
def test_openmp_threads_sleep_unless_the_environment_says_and_the_cpu_runs_deterministic_algorithms(
    environment, policy
):
    import os
    import subprocess

    code = (
        "import os, sys; from specforge.training.torch import require_torch; torch = require_torch()\n"
        "from specforge.training.torch.backend import deterministic_algorithms; deterministic_algorithms()\n"
        "print(os.environ['OMP_WAIT_POLICY'], torch.are_deterministic_algorithms_enabled(), "
        "'torch._inductor' in sys.modules)"
    )
    inherited = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    result = subprocess.run(
        [sys.executable, "-c", code], env={**inherited, **environment}, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.split() == [policy, "True", "False"], result.stderr


# -- weighted examples and the moving average of the weights ----------------------------------------
def _checkpoint_averages(run) -> dict[str, np.ndarray]:
    with np.load(run.path / "checkpoint.npz") as checkpoint:
        return {key: checkpoint[key] for key in checkpoint.files if key.startswith("ema/")}


def test_weighted_examples_and_the_moving_average_train_as_on_numpy(weighted_pair):
    (numpy_run, numpy_losses), (torch_run, torch_losses) = weighted_pair["numpy"], weighted_pair["torch"]
    assert len(numpy_losses) == len(torch_losses) == 10
    np.testing.assert_allclose(torch_losses[:5], numpy_losses[:5], rtol=1e-4)
    # validation runs on the averages, and the saved weights are the averages (the overwrite at step 7 included)
    np.testing.assert_allclose(torch_run.history["val_loss"], numpy_run.history["val_loss"], rtol=1e-4)
    numpy_weights, torch_weights = weights_of(numpy_run.path), weights_of(torch_run.path)
    for key in numpy_weights:
        np.testing.assert_allclose(torch_weights[key], numpy_weights[key], rtol=1e-3, atol=1e-5, err_msg=key)
    numpy_averages, torch_averages = _checkpoint_averages(numpy_run), _checkpoint_averages(torch_run)
    assert sorted(torch_averages) == sorted(numpy_averages) == ["ema/0", "ema/1", "ema/2", "ema/3", "ema/4"]
    for key in numpy_averages:
        np.testing.assert_allclose(torch_averages[key], numpy_averages[key], rtol=1e-3, atol=1e-5, err_msg=key)
    np.testing.assert_array_equal(torch_weights["dense/kernel"], torch_averages["ema/3"])


def test_a_resumed_weighted_torch_run_ends_with_the_weights_of_one_never_stopped(tmp_path):
    straight = train(tmp_path, "straight", WEIGHTED, ["fit.epochs=2"], backend="torch", device="cpu")
    with pytest.raises(api.TrainingInterrupted):
        train(tmp_path, "stopped", WEIGHTED, ["fit.epochs=2"], progress=StopAt(2, 3), backend="torch", device="cpu")
    api.fit(resume=tmp_path / "stopped", progress=Silent())
    assert_same_weights(straight.path, tmp_path / "stopped")
    assert straight.history == runs.open_run(tmp_path / "stopped").history


def test_example_weights_from_a_table_column_train_as_on_numpy(tmp_path):
    from test_training_options import _table_run, _table_spec

    spec = _table_spec(tmp_path, ["1", "0", "2", "0.5", "3"], sample_weight="w")
    numpy_run = _table_run(tmp_path, "numpy", spec)
    torch_run = _table_run(tmp_path, "torch", {**spec, "fit": {**spec["fit"], "backend": "torch"}})
    assert torch_run.manifest["backend"] == "torch"
    np.testing.assert_allclose(torch_run.history["loss"], numpy_run.history["loss"], rtol=1e-5)
    numpy_weights, torch_weights = weights_of(numpy_run.path), weights_of(torch_run.path)
    for key in numpy_weights:
        np.testing.assert_allclose(torch_weights[key], numpy_weights[key], rtol=1e-5, atol=1e-6, err_msg=key)
