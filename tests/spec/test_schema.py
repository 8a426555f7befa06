"""The schema file: valid draft-07, generated from the registry, documented, strict, and in the README."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from specforge.spec.reference import readme_with_reference
from specforge.spec.schema import SCHEMA_FILE, build_schema, load_schema, schema_text

ROOT = Path(__file__).resolve().parents[2]


def test_schema_is_valid_draft_07():
    schema = load_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    Draft7Validator.check_schema(schema)


def test_schema_file_is_not_stale():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(build_schema()), (
        "regenerate with: python -m specforge.spec"
    )


def test_top_level_schemas_dir_holds_the_same_file():
    assert (ROOT / "schemas" / "specforge.schema.json").read_text(encoding="utf-8") == SCHEMA_FILE.read_text()


def test_readme_reference_is_generated_from_the_schema():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme == readme_with_reference(readme, load_schema()), "regenerate with: python -m specforge.spec"


def _properties(node, path="$"):
    """Every (path, property schema) in the schema, through branches, items and definitions."""
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            if isinstance(prop, dict):
                yield f"{path}.{name}", prop
        for key, child in node.items():
            yield from _properties(child, f"{path}/{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _properties(child, f"{path}[{index}]")


def test_every_property_has_a_description():
    # A branch may set only the default of an option that the section documents once.
    missing = [
        path
        for path, prop in _properties(load_schema())
        if "description" not in prop and "$ref" not in prop and "/if" not in path and set(prop) != {"default"}
    ]
    assert not missing


def test_every_object_rejects_unknown_keys():
    """Each object is closed itself, or through the branch that its discriminator (type, source) picks."""
    schema = load_schema()

    def closed(node):
        if "$ref" in node:
            node = schema["definitions"]["layers"][node["$ref"].rsplit("/", 1)[1]]
        if node.get("additionalProperties") is False:
            return True
        branches = [branch["then"] for branch in node.get("allOf", []) if "then" in branch]
        return bool(branches) and all(closed(branch) for branch in branches)

    def objects(node, path="$"):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                yield path, node
            for key, child in node.items():
                if key != "if":
                    yield from objects(child, f"{path}/{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from objects(child, f"{path}[{index}]")

    # a block use's other keys are the block's arguments, checked against its params when the model is built
    # (tests/spec/test_blocks.py)
    assert [path for path, node in objects(schema) if not closed(node)] == ["$/definitions/block_use"]


@pytest.mark.parametrize("spec", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_specs_point_editors_at_the_schema(spec):
    first = spec.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/specforge.schema.json"


def test_cli_schema_prints_the_installed_schema():
    result = subprocess.run([sys.executable, "-m", "specforge", "schema"], capture_output=True, text=True)
    assert result.returncode == 0
    assert json.loads(result.stdout) == load_schema()
