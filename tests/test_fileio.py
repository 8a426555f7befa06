"""Atomic writes: the old file survives a failed write, and new files get the usual permissions."""

import os

import pytest

from specforge.base.fileio import atomic_open, write_text


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = write_text(tmp_path / "weights.txt", "old")
    with pytest.raises(RuntimeError), atomic_open(path, "w") as handle:
        handle.write("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.txt"]


def test_new_files_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        path = write_text(tmp_path / "manifest.json", "{}")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644
