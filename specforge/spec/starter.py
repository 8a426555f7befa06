"""``specforge init``: write a commented starter spec that a user edits instead of an empty file.

The templates are the files in ``starters/``: commented starters (cnn, mlp, lenet) and links to the
reference specs in the repository's ``specs/`` (sequence, mobilenet, ...), which the package ships as copies.
A template's ``$schema`` line and top-level ``name:`` are rewritten for the new spec, and ``{name}`` in its
comments becomes the model's name.
"""

from __future__ import annotations

import re
from pathlib import Path

from specforge.base.errors import SpecError
from specforge.base.fileio import write_text
from specforge.base.registry import NAME_PATTERN
from specforge.spec.schema import write_schema_copy

STARTERS_DIR = Path(__file__).resolve().parent / "starters"
#: Where a new spec's schema copy goes, relative to the spec: the path its ``$schema`` line names.
SCHEMA_DIR = "schemas"
TEMPLATES = tuple(sorted(path.stem for path in STARTERS_DIR.glob("*.yaml")))
_NAME = re.compile(NAME_PATTERN)
_SCHEMA_LINE = re.compile(r"^(# yaml-language-server: \$schema=).*$", re.MULTILINE)
_NAME_LINE = re.compile(r"^name: .*$", re.MULTILINE)


def render_template(name: str, template: str, schema: str) -> str:
    """The starter spec ``template`` for a model called ``name``, pointing editors at the schema file ``schema``
    (a path relative to the spec)."""
    if template not in TEMPLATES:
        raise SpecError(f"unknown template {template!r}; use one of: {', '.join(TEMPLATES)}", file="--template")
    if not _NAME.match(name):
        raise SpecError(
            f"model name {name!r} may hold only letters, digits, '.', '_' and '-', starting with a letter or digit",
            file="NAME",
        )
    text = (STARTERS_DIR / f"{template}.yaml").read_text(encoding="utf-8")
    text = _SCHEMA_LINE.sub(lambda line: line[1] + schema, text, count=1)
    return _NAME_LINE.sub(f"name: {name}", text, count=1).replace("{name}", name)


def write_template(name: str, template: str, directory: Path, *, force: bool = False) -> Path:
    """Write ``directory/NAME.yaml`` and the schema its ``$schema`` line names, ``directory/schemas/``;
    refuses to overwrite the spec unless ``force``."""
    path = Path(directory) / f"{name}.yaml"
    if path.exists() and not force:
        raise SpecError("file exists; pick another NAME or pass --force to overwrite it", file=str(path))
    schema = write_schema_copy(Path(directory) / SCHEMA_DIR)
    return write_text(path, render_template(name, template, schema.relative_to(directory).as_posix()))
