"""The progress bar fits the terminal it draws on: a wider line would wrap and leave a line per redraw."""

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

from specforge.training.progress import fit_lines
from tests.test_cli_train import SEED_SPEC, environment

ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TRAINING = {"loss": 0.2345, "accuracy": 0.9456}
EPOCH = {**TRAINING, "val_loss": 0.0893, "val_accuracy": 0.97331}


def run_in_terminal(args, cwd, columns):
    """Output of ``specforge ARGS`` run on a pseudo-terminal ``columns`` wide, as the terminal received it."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {key: value for key, value in environment().items() if key not in ("COLUMNS", "LINES")}
    process = subprocess.Popen(
        [sys.executable, "-m", "specforge", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert process.wait(timeout=300) == 0, b"".join(chunks).decode()
    return b"".join(chunks).decode()


def test_training_in_an_80_column_terminal_never_wraps(tmp_path):
    text = run_in_terminal(
        [
            "train",
            SEED_SPEC,
            "--set",
            "fit.epochs=2",
            "--limit-train",
            "640",
            "--limit-test",
            "64",
            "--out",
            str(tmp_path / "run"),
        ],
        tmp_path,
        80,
    )
    segments = [ESCAPES.sub("", part) for part in re.split(r"[\r\n]", text)]
    assert max(map(len, segments)) < 80, max(segments, key=len)
    bars = [part for part in segments if re.match(r"\s*\d+/20 \[", part)]
    assert len(bars) >= 2  # the bar was drawn, in place, during each epoch
    assert all("loss: " in part for part in bars)
    finished = "\n".join(part for part in segments if part.startswith("20/20") or re.match(r"\s+- ", part))
    for name in EPOCH:  # the epoch's record keeps every value, continued on the next line
        assert f" - {name}: " in finished


def test_a_terminal_of_unknown_width_gets_80_columns(tmp_path):
    text = run_in_terminal(
        [
            "train",
            SEED_SPEC,
            "--set",
            "fit.epochs=1",
            "--limit-train",
            "640",
            "--limit-test",
            "64",
            "--out",
            str(tmp_path / "run"),
        ],
        tmp_path,
        0,
    )
    segments = [ESCAPES.sub("", part) for part in re.split(r"[\r\n]", text)]
    bars = [part for part in segments if re.match(r"\s*\d+/20 \[", part)]
    assert bars and all("loss: " in part and len(part) < 80 for part in bars), segments[:5]


def test_the_bar_shrinks_before_values_go():
    (line,) = fit_lines(" 500/1875", 500, 1875, "ETA: 30s", TRAINING, 80, keep_values=False)
    assert len(line) == 79
    assert line.endswith(" - ETA: 30s - loss: 0.2345 - accuracy: 0.9456")
    assert re.search(r"\[=+>\.+\]", line)
    (wide,) = fit_lines(" 500/1875", 500, 1875, "ETA: 30s", TRAINING, 200, keep_values=False)
    assert "[" + "=" * 7 + ">" + "." * 22 + "]" in wide


def test_a_narrow_terminal_drops_the_bar_then_values_from_the_end():
    (line,) = fit_lines(" 500/1875", 500, 1875, "ETA: 30s", TRAINING, 40, keep_values=False)
    assert line == " 500/1875 - ETA: 30s - loss: 0.2345"
    assert fit_lines(" 500/1875", 500, 1875, "ETA: 30s", TRAINING, 12, keep_values=False) == [" 500/1875 -"]


def test_the_epoch_line_continues_instead_of_losing_values():
    lines = fit_lines("1875/1875", 1875, 1875, "41s 22ms/step", EPOCH, 60, keep_values=True)
    assert all(len(line) < 60 for line in lines)

    assert (
        "".join(line.strip() for line in lines).replace(" ", "")
        == "1875/1875-41s22ms/step-loss:0.2345-accuracy:0.9456-val_loss:0.0893-val_accuracy:0.9733"
    )
