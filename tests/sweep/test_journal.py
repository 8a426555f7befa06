"""The local backend's journal after a crash: a last record cut short is dropped with a warning and the sweep
goes on (never writing onto the partial line, never losing a finished trial); an empty or missing journal beside
finished trials is refused, and nothing is touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specforge.sweep import directory
from specforge.sweep.journal import drop_torn_record

from .test_local import _trials, cli
from .tiny import write_spec

COMMAND = ("--limit-train", "256", "--limit-test", "64", "--json")


@pytest.fixture
def swept(tmp_path) -> tuple[Path, Path]:
    """A finished one-trial sweep whose results were not written yet (as a crash leaves it): the spec and the
    sweep directory."""
    spec = write_spec(tmp_path, sweep={"trials": 1})
    first = cli("sweep", str(spec), *COMMAND, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    sweep_dir = tmp_path / "runs" / "tiny-mlp" / "sweeps" / "1"
    for name in (directory.RESULTS, directory.BEST_SPEC):
        (sweep_dir / name).unlink()
    return spec, sweep_dir


def whole_records(journal: Path) -> list[dict]:
    text = journal.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_a_torn_record_of_a_trials_end_is_dropped_and_the_finished_trial_kept(swept):
    spec, sweep_dir = swept
    journal = sweep_dir / directory.JOURNAL
    before = _trials(journal)[0]
    records = whole_records(journal)
    assert records[-1]["op_code"] == 6 and records[-1]["state"] == 1  # the trial's end: COMPLETE, its value
    whole = journal.read_bytes()
    journal.write_bytes(whole[:-40])
    torn = len(json.dumps(records[-1], separators=(",", ":"))) + 1 - 40
    again = cli("sweep", str(spec), *COMMAND, cwd=spec.parent)
    assert again.returncode == 0, again.stderr
    assert again.stderr == (
        "runs/tiny-mlp/sweeps/1/journal.log: warning: its last record was cut short (a crash "
        f"while it was written); dropped it ({torn} bytes), the sweep goes on from the records "
        "before it\n"
    )
    (trial,) = json.loads(again.stdout)["trials"]
    assert (trial["number"], trial["state"], trial["value"]) == (0, "complete", before.value)
    assert [path.name for path in (sweep_dir / directory.TRIALS).iterdir()] == ["0"]  # not trained again
    assert json.loads(again.stdout)["best"]["number"] == 0 and (sweep_dir / directory.BEST_SPEC).exists()
    assert whole_records(journal)[: len(records) - 1] == records[:-1]


def test_new_records_never_land_on_a_partial_line(swept):
    spec, sweep_dir = swept
    journal = sweep_dir / directory.JOURNAL
    records = whole_records(journal)
    partial = b'{"op_code":4,"worker_id":"x","study_id":0,"datetime_st'
    journal.write_bytes(journal.read_bytes() + partial)
    again = cli("sweep", str(spec), *COMMAND[:-1], "--trials", "2", "--json", cwd=spec.parent)
    assert again.returncode == 0, again.stderr
    assert f"dropped it ({len(partial)} bytes)" in again.stderr and len(again.stderr.splitlines()) == 1
    trials = {trial["number"]: trial for trial in json.loads(again.stdout)["trials"]}
    assert sorted(trials) == [0, 1] and {trial["state"] for trial in trials.values()} == {"complete"}
    after = whole_records(journal)
    assert after[: len(records)] == records and len(after) > len(records)


@pytest.mark.parametrize("emptied", ["empty", "missing"])
def test_a_lost_journal_beside_finished_trials_is_refused(tmp_path, emptied):
    spec = write_spec(tmp_path, sweep={"trials": 1})
    assert cli("sweep", str(spec), *COMMAND, cwd=tmp_path).returncode == 0
    sweep_dir = tmp_path / "runs" / "tiny-mlp" / "sweeps" / "1"
    journal = sweep_dir / directory.JOURNAL
    if emptied == "empty":
        journal.write_bytes(b"")
    else:
        journal.unlink()
    kept = {path: path.read_bytes() for path in sweep_dir.rglob("*") if path.is_file() and path != journal}
    refused = cli("sweep", str(spec), "--limit-train", "256", "--limit-test", "64", "--trials", "2", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr == (
        f"runs/tiny-mlp/sweeps/1/journal.log: error: the journal is {emptied} but 1 trial "
        "run is in runs/tiny-mlp/sweeps/1/trials: the record of the sweep is lost, and "
        "starting it again there would drop them; restore journal.log from a backup, or move "
        "runs/tiny-mlp/sweeps/1 aside (its trials stay in it) to start a new sweep\n"
    )
    assert {path: path.read_bytes() for path in kept} == kept
    assert not (sweep_dir / "2").exists() and not (tmp_path / "runs" / "tiny-mlp" / "sweeps" / "2").exists()


@pytest.mark.parametrize(
    "content, kept",
    [
        (b'{"op_code":0}\n{"op_code":1}\n', b'{"op_code":0}\n{"op_code":1}\n'),
        (b'{"op_code":0}\n{"op_co', b'{"op_code":0}\n'),
        (b'{"op_code":0}\nnot json\n', b'{"op_code":0}\nnot json\n'),
        (b'{"op_co', b'{"op_co'),
        (b'{"op_code":0}\n{"op_code":1,"x":"' + b"y" * 200_000, b'{"op_code":0}\n'),
        (b"", b""),
    ],
    ids=["whole", "cut", "garbage", "only-a-part", "longer-than-a-block", "empty"],
)
def test_only_a_last_line_cut_short_after_whole_lines_is_cut(tmp_path, content, kept):
    journal = tmp_path / "journal.log"
    journal.write_bytes(content)
    warning = drop_torn_record(journal)
    assert journal.read_bytes() == kept
    assert (warning is None) == (content == kept)
    if warning is not None:
        assert f"dropped it ({len(content) - len(kept)} bytes)" in warning.format()
