"""The README's section on graphs and blocks is true: its worked example is specs/residual.yaml, its error
lines are ones the invalid-spec corpus checks, its summary excerpt is what validate prints."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from spec.test_invalid_specs import EXPECTED

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("\n## Graphs and blocks\n") : README.index("\n## Editor support\n")]


def blocks_of(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", SECTION, re.DOTALL)


def test_the_worked_example_is_the_residual_spec():
    spec = yaml.safe_load((ROOT / "specs" / "residual.yaml").read_text(encoding="utf-8"))
    example = yaml.safe_load(blocks_of("yaml")[1])
    for block in spec["blocks"].values():
        block.pop("description", None)
    assert example == {"blocks": spec["blocks"], "model": spec["model"]}


def test_the_error_lines_are_checked_by_the_corpus():
    corpus = {line.split(": error: ", 1)[1] for lines in EXPECTED.values() for line in lines}
    shown = [line for line in SECTION.splitlines() if ": error: " in line]
    assert len(shown) == 3
    for line in shown:
        assert line.split(": error: ", 1)[1] in corpus
