"""The seed tutorial end to end: ``specforge train specs/mnist.yaml`` (3 epochs on 60,000 images).

Long (minutes): marked ``benchmark`` and deselected by default; run it with
``python -m pytest -m benchmark tests/test_seed_benchmark.py``.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from specforge import api

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.benchmark
def test_the_seed_tutorial_reaches_its_accuracy_and_reads_the_first_digits(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "specforge",
            "train",
            str(ROOT / "specs" / "mnist.yaml"),
            "--out",
            str(tmp_path / "run"),
            "--quiet",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    run = api.load_run(tmp_path / "run")
    assert run.metrics["examples"] == 10000
    assert run.metrics["accuracy"] >= 0.97
    test_images = api.load_data(run.spec()).test.images[:4]
    assert np.argmax(api.predict(run, test_images), axis=1).tolist() == [7, 2, 1, 0]
