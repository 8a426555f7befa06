"""A run whose weights.npz or checkpoint.npz was cut short or changed on disk: every command that reads it
(train --resume, export, evaluate, predict RUN) says so in one line naming the file and the command that
trains the spec again, exits with status 2 and writes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from specforge.base.errors import RunError
from specforge.graph.model import read_npz
from tests.test_cli_last_resort import TINY_SPEC
from tests.test_cli_train import specforge

RETRAIN = "train the spec again: specforge train tiny.yaml --set fit.epochs=2 --limit-train 64 --limit-test 32"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("work")
    (cwd / "tiny.yaml").write_text(TINY_SPEC)
    result = specforge(
        "train",
        "tiny.yaml",
        "--set",
        "fit.epochs=2",
        "--limit-train",
        64,
        "--limit-test",
        32,
        "--out",
        "trained",
        "--quiet",
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    np.save(cwd / "digit.npy", np.zeros((28, 28), np.uint8))
    return cwd


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def cut(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


CASES = [
    (command, "weights.npz", keep)
    for command in ("export RUN", "evaluate RUN", "predict RUN digit.npy")
    for keep in (0, 3, 1000, -1)
]
CASES += [("train --resume RUN --set fit.epochs=3", "checkpoint.npz", keep) for keep in (0, 200, -22)]


@pytest.mark.parametrize("command, file, keep", CASES)
def test_a_cut_short_file_is_one_line_naming_it(trained, tmp_path, command, file, keep):
    run = tmp_path / "run"
    shutil.copytree(trained / "trained", run)
    cut(run / file, keep)
    before = snapshot(run)
    args = [
        str(run) if part == "RUN" else str(trained / part) if part.endswith(".npy") else part
        for part in command.split()
    ]
    result = specforge(*args, cwd=trained)
    assert result.returncode == 2 and result.stdout == ""
    remedy = f"the run cannot continue from it; {RETRAIN}" if file == "checkpoint.npz" else RETRAIN
    assert result.stderr == (
        f"{run / file}: error: cut short or not an .npz archive (no zip directory at its end); {remedy}\n"
    )
    assert snapshot(run) == before


def test_a_changed_byte_is_named_with_the_damaged_member(trained, tmp_path):
    damaged = bytearray((trained / "trained" / "weights.npz").read_bytes())
    damaged[200] ^= 0xFF
    path = tmp_path / "weights.npz"
    path.write_bytes(bytes(damaged))
    with pytest.raises(RunError) as caught:
        read_npz(path, lambda: "write it again")
    assert caught.value.format() == (
        f"{path}: error: a damaged .npz archive (Bad CRC-32 for file 'dense/kernel.npy'); write it again"
    )
