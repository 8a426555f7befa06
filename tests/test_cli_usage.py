"""Command-line mistakes read like every other user error: one line, exit status 2; --version."""

import subprocess
import sys

import pytest

import specforge
from tests.test_cli_train import ROOT, SEED_SPEC, environment


def specforge_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "specforge", *args],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["validate", SEED_SPEC, "--frobnicate"], "No such option: --frobnicate (usage: specforge validate --help)"),
        (
            ["export", "runs/x/latest", "--opset", "40"],
            "Invalid value for '--opset': 40 is not in the range 13<=x<=21. (usage: specforge export --help)",
        ),
        (
            ["valdate", SEED_SPEC],
            ("No such command 'valdate'. Did you mean 'validate', 'evaluate'? (usage: specforge --help)"),
        ),
        (["export"], "Missing argument 'run'. (usage: specforge export --help)"),
        (["train", SEED_SPEC, "--limit-train", "0"], "Invalid value for '--limit-train': 0 is not in the range x>=1."),
    ],
)
def test_usage_errors_are_one_line_with_status_2(args, message):
    result = specforge_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("specforge: error: ")
    assert message in lines[0]


def test_version_prints_the_package_version():
    result = specforge_cli("--version")
    assert (result.returncode, result.stdout) == (0, f"specforge {specforge.__version__}\n")


def test_help_still_shows_every_command():
    result = specforge_cli("--help")
    assert result.returncode == 0
    assert "--version" in result.stdout and "validate" in result.stdout
    bare = specforge_cli()
    assert "Usage: specforge" in bare.stdout


def _commands(group, path=()):
    """Every command under a click group, with the words that name it."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_help_keeps_bracketed_text_such_as_extras():
    """Help text is rich markup: an unescaped [plot] (any bracket that opens with a lowercase letter, #, / or @) is
    taken for a style tag and dropped from the help."""
    import re

    import typer

    from specforge.cli.commands import app

    checked = 0
    for path, command in _commands(typer.main.get_command(app)):
        texts = [command.help or ""] + [getattr(param, "help", None) or "" for param in command.params]
        tags = [match for text in texts for match in re.findall(r"\S*\\?\[[a-z#/@][^\[\]]*\]", text)]
        wanted = {tag.replace("\\[", "[") for tag in tags}
        if not wanted:
            continue
        shown = " ".join(specforge_cli(*path, "--help").stdout.split())
        for text in wanted:
            assert text in shown, (path, text)
            checked += 1
    assert checked >= 3
