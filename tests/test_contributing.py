"""CONTRIBUTING.md stays true: the commands it gives exist, the files it names exist, and its layout table
names every module of the package."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "specforge"
TEXT = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
COMMANDS = [
    line.split("#")[0].strip()
    for block in re.findall(r"```bash\n(.*?)```", TEXT, re.DOTALL)
    for line in block.splitlines()
    if line.strip()
]
QUOTED = re.findall(r"`([^`\s]+)`", TEXT)


def test_the_guide_gives_commands():
    assert "python -m specforge.spec" in COMMANDS and "bash .ci/run" in COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_names_something_that_exists(command):
    words = command.split()
    if words[:2] == ["python", "-m"]:
        assert importlib.util.find_spec(f"{words[2]}.__main__") or importlib.util.find_spec(words[2])
    elif words[0] in ("python", "bash"):
        assert (REPO / words[1]).is_file()
    else:
        assert words[0] in ("pip", "npm")


@pytest.mark.parametrize("path", sorted({q for q in QUOTED if "/" in q and not q.startswith("-")}))
def test_every_path_it_names_exists(path):
    assert (REPO / path).exists() or (PACKAGE / path).exists(), path


def test_the_layout_names_every_module_of_the_package():
    named = {q.rstrip("/") for q in QUOTED}
    modules = {path.stem for path in PACKAGE.glob("*.py") if not path.name.startswith("__")}
    packages = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert {f"{name}.py" for name in modules} | packages <= named
