"""Hostile or broken spec files are refused with a located one-line error, not a hang or a traceback."""

import pytest

from specforge.base.errors import SpecError
from specforge.spec.reader import MAX_ALIASED_VALUES, read_document


def billion_laughs(levels: int = 9) -> str:
    """Each level is a list of nine aliases of the level before: 9**levels values from a few hundred bytes."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def error_of(path):
    with pytest.raises(SpecError) as error:
        read_document(path)
    (problem,) = error.value.problems
    return problem.format()


def test_exponential_aliases_are_refused_at_the_alias_that_crosses_the_bound(tmp_path):
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs())
    assert path.stat().st_size < 600
    # a3 is 9**4 = 6,561 values; the first *a3 brings the aliased values past 10,000.
    assert error_of(path) == (
        f"{path}:5:10: error: aliases expand to more than {MAX_ALIASED_VALUES:,} values by "
        "alias *a3; write the values out, or use fewer nested aliases"
    )


def test_a_few_shared_blocks_are_still_fine(tmp_path):
    path = tmp_path / "shared.yaml"
    path.write_text("base: &conv {type: Conv2D, filters: 8, kernel_size: 3}\nlayers: [*conv, *conv, *conv]\n")
    assert read_document(path).data["layers"][2] == {"type": "Conv2D", "filters": 8, "kernel_size": 3}


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("a: &x\n  b: *x\n")
    assert error_of(path) == (
        f"{path}:2:6: error: alias *x refers to a value that contains it; a spec cannot contain itself"
    )


def test_latin1_text_names_the_first_bad_byte(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: net\ndescription: réseau café\n".encode("latin-1"))
    assert error_of(path) == (
        f"{path}:2:15: error: byte 0xe9 is not UTF-8 text; a spec is a UTF-8 text file "
        "(save it as UTF-8, or check that this is the spec and not a binary file)"
    )


def test_utf8_before_the_bad_byte_counts_as_characters(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_bytes("name: née\n".encode() + "# ½\xff\n".encode("latin-1"))
    assert error_of(path).startswith(f"{path}:2:3: error: byte 0xbd is not UTF-8")


def test_a_binary_file_is_not_read_as_a_spec(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert error_of(path).startswith(f"{path}:1:1: error: byte 0x89 is not UTF-8 text")
