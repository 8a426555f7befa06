"""The machine constants: measured once, kept in the user's cache, read back as written, measured again on
request or where the cache is broken, and kept in memory where it cannot be written."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, fields, replace

import pytest
from helpers import TEST_MACHINE

from specforge.ops import machine


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache directory, no constants in this process yet, and a calibration that counts its runs."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(machine.RECALIBRATE, raising=False)
    monkeypatch.setattr(machine, "_constants", None)
    measured = []

    def measure():
        measured.append(replace(TEST_MACHINE, handoff_s=TEST_MACHINE.handoff_s / 3))
        return measured[-1]

    monkeypatch.setattr(machine, "measure", measure)
    return measured


def fresh_process(monkeypatch) -> machine.Machine:
    """The constants a new process reads."""
    monkeypatch.setattr(machine, "_constants", None)
    return machine.constants()


def test_the_constants_are_measured_once_and_read_back_exactly(cache, tmp_path, monkeypatch):
    first = machine.constants()
    assert cache == [first] and machine.constants() is first
    stored = json.loads((tmp_path / "specforge" / "machine.json").read_text())
    assert stored == {machine.machine_key(): asdict(first)}
    assert fresh_process(monkeypatch) == first and len(cache) == 1


def test_the_environment_variable_measures_them_again(cache, monkeypatch):
    machine.constants()
    monkeypatch.setenv(machine.RECALIBRATE, "1")
    fresh_process(monkeypatch)
    assert len(cache) == 2


def test_a_machine_whose_other_cores_gave_nothing_is_kept(cache, tmp_path, monkeypatch):
    """A share of 0 (the other cores taken all through the calibration) is a measure like any other."""
    monkeypatch.setattr(machine, "measure", lambda: replace(TEST_MACHINE, core_share=0.0))
    machine.constants()
    monkeypatch.setattr(machine, "measure", pytest.fail)
    assert fresh_process(monkeypatch).core_share == 0.0


def test_other_machines_entries_are_kept(cache, tmp_path, monkeypatch):
    path = tmp_path / "specforge" / "machine.json"
    path.parent.mkdir()
    other = {"another processor / 64 cores": asdict(TEST_MACHINE)}
    path.write_text(json.dumps(other))
    machine.constants()
    assert json.loads(path.read_text()) == {**other, machine.machine_key(): asdict(cache[0])}


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2]",
        '{"KEY": {"flops_per_s": 1.0}}',
        '{"KEY": "fast"}',
        json.dumps({"KEY": {**asdict(TEST_MACHINE), "handoff_s": -1.0}}),
    ],
)
def test_a_broken_cache_is_measured_again_and_rewritten(cache, tmp_path, monkeypatch, content):
    path = tmp_path / "specforge" / "machine.json"
    path.parent.mkdir()
    path.write_text(content.replace("KEY", machine.machine_key()))
    assert machine.constants() == cache[0]
    assert json.loads(path.read_text()) == {machine.machine_key(): asdict(cache[0])}


def test_an_unwritable_cache_keeps_the_constants_in_memory(cache, tmp_path, monkeypatch, capsys):
    """The cache directory's parent is a file, so nothing can be written under it (whoever runs the test)."""
    blocked = tmp_path / "a file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    first = machine.constants()
    assert first == cache[0] and machine.constants() is first
    assert capsys.readouterr() == ("", "")
    fresh_process(monkeypatch)
    assert len(cache) == 2


def test_the_calibration_gives_every_constant():
    """The real calibration runs (what it measures depends on the machine and its load: only its form is checked)."""
    measured = machine.measure()
    assert [field.name for field in fields(measured)] == [field.name for field in fields(TEST_MACHINE)]
    rates = {name: value for name, value in asdict(measured).items() if name != "core_share"}
    assert all(math.isfinite(value) and value > 0 for value in rates.values())
    assert measured.all_bytes_per_s >= measured.bytes_per_s and 0 <= measured.core_share <= 1
