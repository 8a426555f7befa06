"""The package's layering: the math below (layers, ops, activations) never reaches up to the exporter."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import specforge

ROOT = Path(specforge.__file__).parent
BELOW_THE_EXPORTER = sorted(
    [
        *ROOT.glob("layers/*.py"),
        *ROOT.glob("ops/*.py"),
        ROOT / "options" / "activations.py",
        ROOT / "base" / "layout.py",
    ]
)


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


@pytest.mark.parametrize("path", BELOW_THE_EXPORTER, ids=lambda path: str(path.relative_to(ROOT)))
def test_does_not_import_the_exporter(path):
    assert not {module for module in imported_modules(path) if module.startswith("specforge.export")}
