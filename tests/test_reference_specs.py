"""The reference specs in specs/ train on a slice of MNIST.

Exporting every spec in specs/ is tested in tests/export/test_interface.py; here each reference spec runs
through ``train`` itself, with its own optimizer, callbacks and batch size, on 256 training images for two
epochs, and must learn: the training loss falls from the first epoch to the second and below chance's
ln(10), and the training accuracy rises above chance. Their full-run figures are in the README.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import REFERENCE_SPECS

from specforge import api
from specforge.training.progress import Silent

SPECS = Path(__file__).resolve().parents[1] / "specs"


@pytest.mark.parametrize("name", REFERENCE_SPECS)
def test_a_reference_spec_learns_on_a_slice(tmp_path, name):
    run = api.fit(
        api.load_spec(SPECS / f"{name}.yaml", ["fit.epochs=2", "fit.batch_size=32"]),
        out=tmp_path / name,
        progress=Silent(),
        limit_train=256,
        limit_test=128,
    )
    history = json.loads((run.path / "history.json").read_text())
    assert history["loss"][1] < history["loss"][0]
    assert history["loss"][1] < math.log(10)
    assert history["accuracy"][1] > 0.2
    assert run.metrics["loss"] == pytest.approx(history["val_loss"][1])
