"""What a user looks up is in the README: every preprocessing key, the image-folder layout, predict's npz rule."""

from pathlib import Path

from specforge.data.inputs import NPZ_KEYS
from specforge.data.schema import PREPROCESSING_SCHEMA

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(title)
    return README[start : README.index("\n#", start + 1)]


def test_the_reference_lists_every_preprocessing_key():
    table = _section("#### `data.preprocessing`")
    for key in PREPROCESSING_SCHEMA["properties"]:
        assert f"| `{key}` |" in table


def test_the_reference_states_the_image_folder_layout():
    data = _section("### `data`")
    train_row = next(line for line in data.splitlines() if line.startswith("| `train` |"))
    assert "image_folder: a directory with one sub-folder per class" in train_row
    assert "csv: a CSV file" in train_row
    assert "table: a CSV file with a header row, JSON lines (.jsonl, .ndjson) or Parquet" in train_row


def test_the_npz_rule_of_predict_is_written_down_in_its_order():
    rule = ", ".join(f"`{key}`" for key in NPZ_KEYS)
    assert (
        f"an `.npz` archive holding one array gives that array, else the first of the arrays named {rule}"
        in " ".join(README.split())
    )
