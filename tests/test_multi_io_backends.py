"""Models of several inputs or outputs on the PyTorch and Ray backends: the two reference specs
(specs/mnist_parity.yaml, two outputs; specs/breast_cancer_two_inputs.yaml, two inputs) take the numpy
backend's first steps on PyTorch, each output's loss and the weighted total (compile.loss_weights), under the
names numpy's history gives them; and two Ray Train workers, each given its share of every input's rows, train
what one PyTorch process trains: the same history, metrics and weights, each epoch's checkpoint reported through Ray
into the run directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from needs import need
from test_train_ray import local_ray  # noqa: F401 (a fixture)
from test_train_torch import Losses

from specforge import api
from specforge.training.progress import Silent

SPECS = Path(__file__).resolve().parents[1] / "specs"
#: each spec's slice: the rows trained on and tested on, and its overrides (an epoch of 4 or 5 steps)
SLICES = {
    "mnist_parity": ({"limit_train": 128, "limit_test": 64}, ["fit.epochs=1", "fit.batch_size=32"]),
    "breast_cancer_two_inputs": ({"limit_train": 160, "limit_test": 64}, ["fit.epochs=1"]),
}


class EveryLoss(Losses):
    """Every running value of each batch of the first epoch."""

    def batch_end(self, step, logs):
        if self.epoch == 0:
            self.values.append(dict(logs))


def _fit(tmp_path: Path, name: str, backend: str, progress=None, **options) -> api.Run:
    limits, overrides = SLICES[name]
    return api.fit(
        api.load_spec(SPECS / f"{name}.yaml", overrides),
        out=tmp_path / backend,
        progress=progress or Silent(),
        backend=backend,
        **limits,
        **options,
    )


@pytest.mark.parametrize("name", sorted(SLICES))
def test_the_torch_backend_takes_numpys_first_steps_on_several_inputs_or_outputs(tmp_path, name):
    need("torch")
    logged = {}
    runs = {}
    for backend, options in (("numpy", {}), ("torch", {"device": "cpu"})):
        progress = EveryLoss()
        runs[backend] = _fit(tmp_path, name, backend, progress, **options)
        logged[backend] = progress.values
    assert list(runs["torch"].history) == list(runs["numpy"].history)
    assert len(logged["torch"]) == len(logged["numpy"]) >= 4
    for torch_logs, numpy_logs in zip(logged["torch"], logged["numpy"]):
        assert list(torch_logs) == list(numpy_logs)
        for key in (key for key in numpy_logs if key.endswith("loss")):
            assert torch_logs[key] == pytest.approx(numpy_logs[key], rel=1e-4), key
    assert runs["torch"].manifest["backend"] == "torch"


def test_the_torch_backend_weighs_each_outputs_loss_in_the_total(tmp_path):
    """mnist_parity weighs parity 0.5: the running total is digit_loss + 0.5 parity_loss, as numpy's."""
    need("torch")
    progress = EveryLoss()
    _fit(tmp_path, "mnist_parity", "torch", progress, device="cpu")
    assert [set(logs) for logs in progress.values[:1]] == [
        {"loss", "digit_loss", "parity_loss", "digit_accuracy", "parity_accuracy"}
    ]
    for logs in progress.values:
        assert logs["loss"] == pytest.approx(logs["digit_loss"] + 0.5 * logs["parity_loss"], rel=1e-6)


@pytest.mark.parametrize("name", sorted(SLICES))
def test_two_ray_workers_train_several_inputs_or_outputs_as_one_process(local_ray, tmp_path, name):  # noqa: F811
    one = _fit(tmp_path / "one", name, "torch", device="cpu")
    two = _fit(tmp_path / "two", name, "ray", workers=2)
    assert (two.manifest["backend"], two.manifest["workers"], two.manifest["device"]) == ("ray", 2, "cpu")
    assert two.manifest["status"] == "completed" and two.manifest["epochs_completed"] == 1
    assert list(two.history) == list(one.history)
    for key in (key for key in one.history if key.endswith("loss")):
        np.testing.assert_allclose(two.history[key], one.history[key], rtol=1e-4, err_msg=key)
    assert set(two.metrics) == set(one.metrics)
    for key in (key for key in one.metrics if key.endswith("accuracy")):
        assert abs(two.metrics[key] - one.metrics[key]) <= 0.005, key
    with np.load(one.path / "weights.npz") as first, np.load(two.path / "weights.npz") as second:
        assert first.files == second.files
        for key in first.files:
            np.testing.assert_allclose(second[key], first[key], rtol=1e-3, atol=1e-5, err_msg=key)
    reported = sorted((two.path / "ray-1").glob("checkpoint_*/checkpoint.npz"))
    assert reported, "no checkpoint reported through Ray into the run directory"
