"""Regenerate the schema file from the registry and the README's spec reference from the schema."""

from pathlib import Path

from specforge.base.fileio import write_text
from specforge.spec.reference import readme_with_reference
from specforge.spec.schema import SCHEMA_FILE, build_schema, schema_text

schema = build_schema()
write_text(SCHEMA_FILE, schema_text(schema))
readme = Path(__file__).resolve().parents[2] / "README.md"
write_text(readme, readme_with_reference(readme.read_text(encoding="utf-8"), schema))
print(f"wrote {SCHEMA_FILE} and {readme}")
