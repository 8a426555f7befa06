import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from specforge import api

ROOT = Path(__file__).resolve().parents[1]
SEED_SPEC = str(ROOT / "specs" / "mnist.yaml")
RUN_FILES = {
    "spec.yaml",
    "spec.resolved.json",
    "manifest.json",
    "preprocessing.json",
    "weights.npz",
    "checkpoint.npz",
    "checkpoint.json",
    "history.csv",
    "history.json",
    "metrics.json",
}


def environment():
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def specforge(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "specforge", *map(str, args)],
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The seed spec trained for one epoch on a tiny slice, in a fresh working directory."""
    cwd = tmp_path_factory.mktemp("work")
    result = specforge("train", SEED_SPEC, "--set", "fit.epochs=1", "--limit-train", 160, "--limit-test", 64, cwd=cwd)
    return cwd, result


def test_train_writes_every_file_of_the_run_and_prints_its_path(trained):
    cwd, result = trained
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Epoch 1/1"
    assert lines[1].startswith("1/5 [=====>........................] - ETA: ")  # a log sees the first batch
    assert lines[2].startswith("5/5 [==============================] - ") and " - val_accuracy: " in lines[2]
    assert lines[-3].startswith("test (64 examples) - loss: ")
    assert lines[-2] == "run: runs/mnist-cnn/1"
    assert lines[-1] == "latest: unchanged (a run on a slice of the data)"
    run_dir = cwd / "runs" / "mnist-cnn" / "1"
    assert {path.name for path in run_dir.iterdir()} >= RUN_FILES
    assert not (cwd / "runs" / "mnist-cnn" / "latest").exists()
    assert (run_dir / "spec.yaml").read_text() == Path(SEED_SPEC).read_text()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["overrides"] == ["fit.epochs=1"] and manifest["status"] == "completed"


def test_evaluate_prints_the_metrics_of_a_run(trained):
    cwd, _ = trained
    text = specforge("evaluate", "runs/mnist-cnn/1", "--limit", 64, cwd=cwd)
    assert text.returncode == 0, text.stderr
    metrics = json.loads((cwd / "runs" / "mnist-cnn" / "1" / "metrics.json").read_text())
    assert text.stdout.splitlines()[0] == (
        f"test (64 examples) - loss: {metrics['loss']:.4f} - accuracy: {metrics['accuracy']:.4f}"
    )
    as_json = json.loads(specforge("evaluate", "runs/mnist-cnn/1", "--limit", 64, "--json", cwd=cwd).stdout)
    assert {key: as_json[key] for key in metrics} == metrics
    train_split = json.loads(
        specforge("evaluate", "runs/mnist-cnn/1", "--split", "train", "--limit", 10, "--json", cwd=cwd).stdout
    )
    assert train_split["split"] == "train" and train_split["examples"] == 10


def test_run_errors_are_one_line_with_status_2(trained):
    cwd, _ = trained
    missing = specforge("evaluate", "runs/nothing/latest", cwd=cwd)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and missing.stderr.startswith("runs/nothing/latest: error: no run directory")
    unknown_split = specforge("evaluate", "runs/mnist-cnn/1", "--split", "validation2", cwd=cwd)
    assert unknown_split.returncode == 2 and "has no validation2 split" in unknown_split.stderr
    both = specforge("train", SEED_SPEC, "--resume", "runs/mnist-cnn/1", cwd=cwd)
    assert both.returncode == 2 and "not both" in both.stderr


def test_nan_loss_exits_with_status_2_naming_the_batch(tmp_path):
    result = specforge(
        "train",
        SEED_SPEC,
        "--set",
        "compile.optimizer={name: sgd, learning_rate: 1.0e+30}",
        "--limit-train",
        96,
        "--limit-test",
        32,
        "--out",
        tmp_path / "run",
        "--quiet",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    error = result.stderr.strip()
    assert "\n" not in error and "Traceback" not in error
    assert error.startswith("run: error: loss became ") and " at epoch 1, batch " in error
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "failed"


def test_ctrl_c_saves_and_resume_finishes_the_run(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "specforge",
            "train",
            SEED_SPEC,
            "--limit-train",
            "4000",
            "--limit-test",
            "32",
            "--set",
            "fit.epochs=1",
            "--out",
            str(out),
        ],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C's signal at its default, as a terminal starts a command: a process that ignores SIGINT (this
        # one, after some library set it so) starts children that ignore it, and Python then never raises
        # KeyboardInterrupt in them.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        # The epoch's first line is written once its checkpoint is saved and the batches begin: from then
        # on Ctrl-C interrupts the epoch, whichever batch it reaches.
        assert process.stdout.readline() == "Epoch 1/1\n"
        process.send_signal(signal.SIGINT)
        _stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert stderr.startswith("interrupted at epoch 1, batch ")
    assert stderr.strip().endswith("; resume with: specforge train --resume run")
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
    assert not (out / "weights.npz").exists()
    resumed = specforge("train", "--resume", "run", "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[-2] == "run: run"
    with np.load(out / "weights.npz") as weights:
        assert weights["dense/kernel"].shape == (18432, 10)


def test_data_info_and_show(tmp_path):
    info = specforge("data", "info", SEED_SPEC, "--json", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    splits = json.loads(info.stdout)["splits"]
    assert splits["train"]["count"] == 60000 and splits["test"]["class_counts"][7] == 1028
    text = specforge("data", "info", SEED_SPEC, cwd=tmp_path).stdout
    assert "train: 60000 images 28x28 uint8, values 0..255" in text
    shown = specforge("data", "show", SEED_SPEC, "--split", "test", "--count", 4, "--out", "four.png", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "wrote four.png"
    from PIL import Image

    with Image.open(tmp_path / "four.png") as image:
        assert image.format == "PNG"


def test_evaluate_reports_its_progress_batch_by_batch(trained):
    cwd, _ = trained
    calls = []
    results = api.evaluate(
        cwd / "runs" / "mnist-cnn" / "1",
        limit=70,
        batch_size=32,
        on_batch=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(32, 70), (64, 70), (70, 70)] and results["examples"] == 70
