"""The Ray backend for real: a local Ray instance (2 CPUs, no dashboard) through a 2-trial sweep, and the
one-line errors without Ray or without a cluster."""

from __future__ import annotations

import json
import socket
import sys

import pytest

from specforge import api
from specforge.runs import directory as runs
from specforge.base.errors import RunError
from specforge.sweep.trial import COMPLETE

from .tiny import LIMITS, need, write_spec


def test_a_two_trial_sweep_on_a_local_ray(tmp_path, monkeypatch):
    need("ray")
    need("optuna")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    result = api.sweep(write_spec(tmp_path), backend="ray", jobs=2, **LIMITS)
    assert result.sweep_dir.resolve() == tmp_path / "runs" / "tiny-mlp" / "sweeps" / "1"
    assert sorted(trial.number for trial in result.trials) == [0, 1]
    assert [trial.state for trial in result.trials] == [COMPLETE, COMPLETE]
    for trial in result.trials:
        run = runs.open_run(trial.run)
        assert run.path.parent.resolve() == result.sweep_dir.resolve() / "trials" and len(trial.values) == 2
        assert run.config["model"]["layers"][1]["units"] == trial.params["model.layers[1].units"]
        assert all(pool["num_threads"] == 1 for pool in run.manifest["blas"])  # 2 CPUs, 2 trials: one each
        assert json.loads((run.path / "history.json").read_text())["val_accuracy"] == trial.values
    assert result.best is result.trials[0] and result.trials[0].value >= result.trials[1].value
    best, _ = api.validate(result.best_spec)
    assert best.config["model"]["layers"][1]["units"] == result.best.params["model.layers[1].units"]
    assert json.loads((result.sweep_dir / "results.json").read_text())["best"]["number"] == result.best.number


def test_without_ray_one_line_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RunError) as caught:
        api.sweep(write_spec(tmp_path), backend="ray", root=tmp_path / "runs")
    assert caught.value.format() == ("specforge sweep: error: --backend ray needs Ray; install it with: "
                                     "pip install 'specforge[ray]'")
    assert not (tmp_path / "runs").exists()


def test_an_unreachable_cluster_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    need("ray")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RunError) as caught:
        api.sweep(write_spec(tmp_path), backend="ray", address=f"127.0.0.1:{port}", root=tmp_path / "runs")
    line = caught.value.format()
    assert line.startswith(f"--address 127.0.0.1:{port}: error: no Ray cluster answers at 127.0.0.1:{port}")
    assert "\n" not in line and not (tmp_path / "runs").exists()
