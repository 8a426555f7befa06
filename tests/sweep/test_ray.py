"""The Ray backend for real: a local Ray instance (2 CPUs, no dashboard) through a 2-trial sweep, the sweep command
starting its own local Ray (killed and rerun), and the one-line errors without Ray or without a cluster."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from needs import need
from typer.testing import CliRunner

from specforge import api
from specforge.base.errors import RunError
from specforge.cli.commands import app
from specforge.runs import directory as runs
from specforge.sweep.trial import COMPLETE
from tests.test_cli_train import environment

from .tiny import LIMITS, write_spec


def test_a_two_trial_sweep_on_a_local_ray(local_ray, tmp_path, monkeypatch):
    need("optuna")
    monkeypatch.chdir(tmp_path)
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


def test_torch_trials_on_a_local_ray_take_the_resources_the_sweep_asks_for(local_ray, tmp_path, monkeypatch):
    need("optuna")
    need("torch")
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, fit={"backend": "torch", "epochs": 1}, sweep={"resources": {"cpu": 1}, "trials": 1})
    result = api.sweep(spec, backend="ray", jobs=1, **LIMITS)  # by default the trial would take both CPUs
    [trial] = result.trials
    assert trial.state == COMPLETE
    manifest = runs.open_run(trial.run).manifest
    assert (manifest["backend"], manifest["device"], manifest["device_request"]) == ("torch", "cpu", "cpu")
    assert json.loads((Path(trial.run) / "outcome.json").read_text())["resources"] == {"CPU": 1.0}


def test_a_gpu_share_on_a_cluster_without_gpus_is_one_located_line_and_writes_nothing(local_ray, tmp_path, monkeypatch):
    need("optuna")
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, fit={"backend": "torch"}, sweep={"resources": {"cpu": 1, "gpu": 0.25}})
    shown = CliRunner().invoke(app, ["sweep", str(spec), "--backend", "ray"])
    line = next(number for number, text in enumerate(spec.read_text().splitlines(), 1) if "gpu:" in text)
    assert shown.exit_code == 2 and shown.stdout == ""
    assert shown.stderr.splitlines()[-1] == (
        f"{spec}:{line}:10: error: sweep.resources.gpu: each trial asks for 0.25 GPU and the Ray cluster has 0; "
        "set sweep.resources.gpu: 0 to train the trials on CPUs, or join a cluster with GPUs (--address)"
    )
    assert "Traceback" not in shown.stderr and not (tmp_path / "runs").exists()


def test_without_ray_one_line_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RunError) as caught:
        api.sweep(write_spec(tmp_path), backend="ray", root=tmp_path / "runs")
    assert caught.value.format() == (
        "specforge sweep: error: --backend ray needs Ray; install it with: pip install 'specforge[ray]'"
    )
    assert not (tmp_path / "runs").exists()


def test_an_unreachable_cluster_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    ray = need("ray")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as a fresh process, whatever ran before
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RunError) as caught:
        api.sweep(write_spec(tmp_path), backend="ray", address=f"127.0.0.1:{port}", root=tmp_path / "runs")
    line = caught.value.format()
    assert line.startswith(f"--address 127.0.0.1:{port}: error: no Ray cluster answers at 127.0.0.1:{port}")
    assert "\n" not in line and not (tmp_path / "runs").exists()


def test_an_address_whose_port_is_not_a_number_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    ray = need("ray")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as a fresh process, whatever ran before
    with pytest.raises(RunError) as caught:
        api.sweep(write_spec(tmp_path), backend="ray", address="127.0.0.1:head", root=tmp_path / "runs")
    assert caught.value.format() == (
        "--address 127.0.0.1:head: error: no Ray cluster answers at 127.0.0.1:head "
        "(invalid literal for int() with base 10: 'head'); start one with "
        "`ray start --head` or give its HOST:PORT"
    )
    assert not (tmp_path / "runs").exists()


def test_a_sweep_killed_mid_run_resumes_on_rerun(tmp_path):
    """The sweep process killed while its second trial trains: the same command restores Tune's experiment
    (Tuner.restore) in the same sweep directory, keeps the finished trial as it is, continues the second trial's
    run from its checkpoint and runs the third."""
    need("ray")
    need("optuna")
    spec = write_spec(tmp_path, fit={"epochs": 3}, sweep={"trials": 3})
    command = [
        sys.executable,
        "-m",
        "specforge",
        "sweep",
        str(spec),
        "--backend",
        "ray",
        "--jobs",
        "1",
        "--limit-train",
        "3000",
        "--limit-test",
        "300",
        "--json",
    ]
    env = {key: value for key, value in environment().items() if key != "RAY_ADDRESS"}
    trials = tmp_path / "runs" / "tiny-mlp" / "sweeps" / "1" / "trials"
    first = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.time() + 240
        while time.time() < deadline and first.poll() is None and not _training_second_trial(trials):
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):  # what the killed sweep's local Ray left running
            os.killpg(first.pid, signal.SIGKILL)
    assert _training_second_trial(trials), "the sweep was not killed while its second trial trained"
    assert not (trials.parent / "results.json").exists()
    finished = (trials / "0" / "weights.npz").read_bytes()
    second_started = runs.read_json(trials / "1" / runs.MANIFEST)["created"]
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    payload = json.loads(again.stdout)
    assert payload["sweep"] == "runs/tiny-mlp/sweeps/1"
    assert not (trials.parent.parent / "2").exists()
    by_number = {trial["number"]: trial for trial in payload["trials"]}
    assert sorted(by_number) == [0, 1, 2] and {trial["state"] for trial in by_number.values()} == {COMPLETE}
    assert all(len(trial["values"]) == 3 for trial in by_number.values())
    assert (trials / "0" / "weights.npz").read_bytes() == finished  # not trained again
    second = runs.read_json(trials / "1" / runs.MANIFEST)
    assert (second["created"], second["status"], second["epochs_completed"]) == (second_started, "completed", 3)
    assert json.loads((trials / "1" / "history.json").read_text())["val_accuracy"] == by_number[1]["values"]


def _training_second_trial(trials) -> bool:
    """Whether the first trial has finished and the second has checkpointed an epoch but not finished."""
    state = trials / "1" / runs.CHECKPOINT_STATE
    try:
        return (
            (trials / "0" / "outcome.json").exists()
            and json.loads(state.read_text())["epoch"] >= 1
            and runs.read_json(trials / "1" / runs.MANIFEST)["status"] == "running"
        )
    except (FileNotFoundError, json.JSONDecodeError, RunError):
        return False
