"""The command's last resort, in real processes: a reader that went away (``specforge runs | head -1``) ends
the command quietly, and an exception specforge did not expect is one line saying it is a bug, naming the file
that holds its traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.test_cli_train import ROOT, SEED_SPEC, environment, specforge

TINY_SPEC = """\
version: 1
name: tiny-mlp
data: {source: mnist, preprocessing: {reshape: [784], rescale: 0.00392156862745098}}
model: {input_shape: [784], layers: [{type: Dense, units: 10, activation: softmax}]}
compile: {optimizer: adam, loss: categorical_crossentropy}
fit: {epochs: 1, seed: 3}
"""


def closed_pipe(*args, cwd) -> subprocess.CompletedProcess:
    """``specforge ARGS`` with its standard output a pipe whose reader is gone before the command writes
    (as ``| head -1`` leaves it once head has its line)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "specforge", *map(str, args)],
        cwd=cwd,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()
    stderr = process.stderr.read()
    process.stderr.close()
    return subprocess.CompletedProcess(process.args, process.wait(timeout=120), None, stderr)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A working directory holding one finished run, for ``specforge runs`` to list."""
    cwd = tmp_path_factory.mktemp("work")
    (cwd / "tiny.yaml").write_text(TINY_SPEC)
    trained = specforge("train", "tiny.yaml", "--limit-train", 64, "--limit-test", 32, "--quiet", cwd=cwd)
    assert trained.returncode == 0, trained.stderr
    assert "tiny-mlp" in specforge("runs", cwd=cwd).stdout
    return cwd


@pytest.mark.parametrize(
    "args",
    [
        ("validate", SEED_SPEC),
        ("validate", SEED_SPEC, "--json"),
        ("schema",),
        ("--help",),
        ("runs",),
        ("runs", "--json"),
    ],
    ids=" ".join,
)
def test_a_closed_pipe_ends_the_command_quietly(work, args):
    result = closed_pipe(*args, cwd=work)
    assert result.stderr == ""
    assert result.returncode == 1


def test_an_unexpected_exception_is_one_line_naming_the_traceback_file(tmp_path):
    crash = (
        "import sys\n"
        "from specforge import spec_api\n"
        "def fail(*args, **kwargs):\n"
        "    raise ZeroDivisionError('a slip\\nover two lines')\n"
        "spec_api.validate = fail\n"
        "from specforge.cli.commands import main\n"
        "main(sys.argv[1:])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", crash, "validate", SEED_SPEC],
        cwd=ROOT,
        env={**environment(), "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "specforge: internal error: ZeroDivisionError: a slip over two lines; this is a bug "
        "in specforge, please report it with the traceback written to "
    )
    written = [path for path in tmp_path.iterdir() if path.name.startswith("specforge-bug-")]
    assert len(written) == 1 and lines[0].endswith(str(written[0]))
    traceback = written[0].read_text()
    assert traceback.startswith("Traceback (most recent call last):")
    assert "in fail" in traceback and traceback.rstrip().endswith("ZeroDivisionError: a slip\nover two lines")
