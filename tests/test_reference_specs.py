"""The reference specs in specs/ train on a slice of MNIST, and the text specs on a slice of the SMS Spam Collection.

Exporting every spec in specs/ is tested in tests/export/test_interface.py; here each reference spec runs
through ``train`` itself, with its own optimizer, callbacks and batch size, on 256 training images for two
epochs, and must learn: the training loss falls from the first epoch to the second and below chance's
ln(10), and the training accuracy rises above chance. The text specs train on 2,048 messages for four epochs
(the bidirectional LSTM, whose time loops make its steps the slowest, on 1,024 for three), the training loss must
fall, and they must do better on 256 test messages than answering the most frequent class. Their full-run figures are in the
README.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
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


#: The reference text specs: a table's text column of token ids (specs/data/sms_spam.csv).
TEXT_SPECS = ("sms_bag_of_embeddings", "sms_conv1d", "sms_transformer", "sms_bilstm")
#: Each spec's slice, training messages and epochs: the bidirectional LSTM's time loops make its steps the slowest.
TEXT_SLICES = {"sms_bilstm": (1024, 3)}


@pytest.mark.parametrize("name", TEXT_SPECS)
def test_a_reference_text_spec_learns_on_a_slice(tmp_path, name):
    messages, epochs = TEXT_SLICES.get(name, (2048, 4))
    spec = api.load_spec(SPECS / f"{name}.yaml", [f"fit.epochs={epochs}"])
    run = api.fit(spec, out=tmp_path / name, progress=Silent(), limit_train=messages, limit_test=256)
    history = json.loads((run.path / "history.json").read_text())
    assert len(history["loss"]) == epochs and history["loss"][-1] < history["loss"][0]
    test_labels = api.load_data(spec).test.labels[:256]
    most_frequent_share = np.bincount(test_labels).max() / len(test_labels)
    assert run.metrics["examples"] == 256
    assert run.metrics["accuracy"] > most_frequent_share + 0.03


def test_the_derived_sms_table_is_what_its_script_derives():
    """specs/data/sms_spam_features.csv is specs/data/derive_sms_features.py's output from specs/data/sms_spam.csv."""
    script = SPECS / "data" / "derive_sms_features.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, "sms_spam_features.csv: up to date\n"), done.stderr
