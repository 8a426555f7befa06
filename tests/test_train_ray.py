"""``train --backend ray``: two data-parallel workers on a real local Ray (2 CPUs, no dashboard) train what one
process trains, into the same run directory, and a worker killed mid-epoch costs the run nothing but a restart
from the last checkpoint (here with weighted examples and a moving average of the weights; the models of several
inputs or outputs in tests/test_multi_io_backends.py); and the one-line errors (too many workers, no cluster, no
Ray)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from needs import need
from sweep.tiny import TINY

from specforge import api
from specforge.base.errors import RunError
from specforge.spec import spec_from_dict
from specforge.training.progress import Silent

#: TINY without its sweep, on a slice: a small MLP (no batch normalization, whose statistics would be each
#: worker's half of a batch).
SPEC = {key: value for key, value in TINY.items() if key != "sweep"}
LIMITS = {"limit_train": 256, "limit_test": 64}


@pytest.fixture
def local_ray(local_ray):
    """The shared local Ray (tests/conftest.py), which the runs join as they would a notebook's; with PyTorch."""
    need("torch")
    return local_ray


def _fit(tmp_path, name, overrides=(), **options):
    return api.fit(
        spec_from_dict(SPEC, list(overrides)), out=tmp_path / name, **{"progress": Silent(), **LIMITS, **options}
    )


class Messages(Silent):
    """The progress messages the driver shows."""

    def __init__(self):
        self.lines: list[str] = []

    def message(self, text):
        self.lines.append(text)


@contextlib.contextmanager
def at_most(seconds: int) -> Iterator[None]:
    """A TimeoutError in the test after ``seconds`` (SIGALRM): a run that hangs fails instead of waiting."""

    def expire(signum, frame):
        raise TimeoutError(f"the run did not finish in {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class KillAWorker(Messages):
    """Kills one Ray Train worker (SIGKILL) when the second epoch's first batch is reported."""

    def __init__(self):
        super().__init__()
        self.epoch, self.killed = 0, None

    def epoch_start(self, epoch, epochs, steps):
        self.epoch = epoch

    def batch_end(self, step, logs):
        if self.epoch == 1 and self.killed is None:
            self.killed = _train_worker_pid()
            os.kill(self.killed, signal.SIGKILL)


def _train_worker_pid() -> int:
    """A process whose title Ray set to one of Ray Train's workers."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"ray::RayTrainWorker"):
                return int(entry.name)
    raise AssertionError("no Ray Train worker process found")


def test_a_worker_killed_mid_epoch_costs_a_restart_from_the_last_checkpoint(local_ray, tmp_path):
    """Two workers weighing examples and averaging the weights, one killed in the second epoch, end where one
    process ends: the same history, validation on the averages, weights and averages."""
    overrides = [
        "fit.epochs=2",
        'fit.class_weight="balanced"',
        'compile.optimizer={"name": "adam", "use_ema": true, "ema_momentum": 0.9, "ema_overwrite_frequency": 5}',
    ]
    limits = {"limit_train": 1024, "limit_test": 64}
    one = _fit(tmp_path, "one", overrides, backend="torch", device="cpu", **limits)
    progress = KillAWorker()
    with at_most(420):  # Ray Train restarts the workers at most MAX_FAILURES times; this bounds a hang
        run = _fit(tmp_path, "killed", overrides, backend="ray", workers=2, progress=progress, **limits)
    assert progress.killed is not None
    assert (run.manifest["backend"], run.manifest["workers"], run.manifest["device"]) == ("ray", 2, "cpu")
    assert run.manifest["status"] == "completed" and run.manifest["epochs_completed"] == 2
    assert (run.manifest["worker_restarts"], run.manifest["restarted_from_epochs"]) == (1, [1])
    assert len(run.history["loss"]) == 2
    for name in ("loss", "val_loss"):  # validation on the averages
        np.testing.assert_allclose(run.history[name], one.history[name], rtol=1e-4, err_msg=name)
    with np.load(one.path / "checkpoint.npz") as first, np.load(run.path / "checkpoint.npz") as second:
        assert first.files == second.files and "ema/0" in first.files
        for key in first.files:
            if key.startswith(("weights/", "ema/")):
                np.testing.assert_allclose(second[key], first[key], rtol=1e-3, atol=1e-5, err_msg=key)
    assert "A worker failed; Ray Train started the workers again, from the checkpoint of epoch 1" in progress.lines
    assert progress.lines[-1].startswith(
        "1 worker failure(s) during training; each time it continued from the last checkpoint (epochs 1)"
    )


def test_more_workers_than_the_cluster_has_cpus_is_one_line_and_writes_nothing(local_ray, tmp_path):
    with pytest.raises(RunError) as caught:
        _fit(tmp_path, "three", backend="ray", workers=3)
    assert caught.value.format() == (
        "--workers 3: error: the Ray cluster has 2 CPUs and each worker takes one; "
        "give --workers 2 or fewer, or a larger cluster"
    )
    assert not (tmp_path / "three").exists()


def test_cuda_workers_on_a_cluster_without_gpus_is_one_line_and_writes_nothing(local_ray, tmp_path):
    with pytest.raises(RunError) as caught:
        _fit(tmp_path, "gpus", backend="ray", workers=2, device="cuda")
    assert caught.value.format() == (
        "--workers 2: error: the Ray cluster has 0 GPUs and each worker takes one; "
        "train on CPUs (--device cpu) or join a cluster with GPUs"
    )
    assert not (tmp_path / "gpus").exists()


def test_an_unreachable_cluster_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    ray = need("ray")
    need("torch")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as a fresh process, whatever ran before
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RunError) as caught:
        _fit(tmp_path, "run", backend="ray", address=f"127.0.0.1:{port}")
    line = caught.value.format()
    assert line.startswith(f"--address 127.0.0.1:{port}: error: no Ray cluster answers at 127.0.0.1:{port}")
    assert "\n" not in line and not (tmp_path / "run").exists()


def test_without_ray_one_line_names_the_install(tmp_path, monkeypatch):
    need("torch")
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RunError) as caught:
        _fit(tmp_path, "run", backend="ray")
    assert caught.value.format() == (
        "specforge train: error: --backend ray needs Ray; install it with: pip install 'specforge[ray]'"
    )
    assert not (tmp_path / "run").exists()


def test_without_pytorch_the_ray_backend_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(RunError) as caught:
        _fit(tmp_path, "run", backend="ray")
    assert caught.value.format() == (
        "specforge train: error: --backend ray needs PyTorch; install it with: pip install 'specforge[torch]'"
    )
    assert not (tmp_path / "run").exists()
