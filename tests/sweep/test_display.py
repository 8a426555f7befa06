"""What specforge sweep shows: the live table on a terminal, one line per finished trial elsewhere, the final table."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from specforge.sweep.display import LiveTable, TrialLines, print_result
from specforge.sweep.loading import load_sweep
from specforge.sweep.results import SPARKLINE_WIDTH, TrialRecord, finish, sparkline, table

from .tiny import write_spec

KEYS = ("compile.optimizer.learning_rate", "model.layers[1].units")


def records(tmp_path: Path) -> list[TrialRecord]:
    return [
        TrialRecord(0, "complete", dict(zip(KEYS, (0.004, 8))), [0.61, 0.74], str(tmp_path / "runs" / "0")),
        TrialRecord(1, "pruned", dict(zip(KEYS, (0.0011, 16))), [0.32], str(tmp_path / "runs" / "1")),
        TrialRecord(2, "failed", dict(zip(KEYS, (0.009, 8))), [], None, "loss became nan at epoch 1, batch 3"),
        TrialRecord(3, "complete", dict(zip(KEYS, (0.002, 16))), [0.70, 0.81], str(tmp_path / "runs" / "3")),
        TrialRecord(4, "running", dict(zip(KEYS, (0.003, 8))), [0.5], None),
    ]


def test_the_live_table_shows_every_trial_and_its_epochs(tmp_path):
    sweep = load_sweep(write_spec(tmp_path))
    stream = io.StringIO()
    live = LiveTable(Console(file=stream, force_terminal=True, width=200))
    live(sweep, records(tmp_path)[:2])
    live(sweep, records(tmp_path))
    live.close()
    text = stream.getvalue()
    assert "5 trials: 2 complete, 1 failed, 1 pruned, 1 running" in text
    assert "0.8100 (2)" in text and "loss became nan at epoch 1, batch 3" in text and "running" in text


def test_a_trial_of_many_epochs_stays_on_one_line(tmp_path, monkeypatch):
    """40 epochs of values once wrapped onto five lines per trial: the table shows their course as a sparkline,
    the best value and its epoch, and the last."""
    monkeypatch.chdir(tmp_path)
    sweep = load_sweep(write_spec(tmp_path))
    climbing = [0.5 + 0.01 * epoch for epoch in range(40)]
    dipping = [0.9 - abs(20 - epoch) * 0.01 for epoch in range(40)]
    trials = [
        TrialRecord(0, "complete", dict(zip(KEYS, (0.004, 8))), climbing, str(tmp_path / "runs" / "0")),
        TrialRecord(1, "complete", dict(zip(KEYS, (0.002, 16))), dipping, str(tmp_path / "runs" / "1")),
    ]
    stream = io.StringIO()
    Console(file=stream, width=160).print(table(trials, sweep))
    rows = [line for line in stream.getvalue().splitlines() if line.startswith("│")]
    assert len(rows) == 2, stream.getvalue()
    assert "▁▂▂▂▃▃▃▄▄▄▅▅▅▆▆▆▇▇▇█" in rows[0] and "0.8900 (40)" in rows[0]  # on the span of both trials
    assert "0.9000 (21)" in rows[1] and "0.7100" in rows[1]


def test_the_sparkline_spans_the_values_and_marks_what_is_not_finite():
    assert sparkline([]) == ""
    assert sparkline([1.0, 2.0, 3.0]) == "▁▅█"
    assert sparkline([2.0, 2.0]) == "▁▁"
    assert sparkline([2.0, 3.0], (1.0, 3.0)) == "▅█"
    assert sparkline([0.5, float("nan"), 0.7]) == "▁×█"
    assert len(sparkline(list(map(float, range(100))))) == SPARKLINE_WIDTH


def test_lines_for_logs_name_each_finished_trial_once(tmp_path):
    sweep = load_sweep(write_spec(tmp_path))
    stream = io.StringIO()
    lines = TrialLines(Console(file=stream, width=200))
    lines(sweep, records(tmp_path)[:2])
    lines(sweep, records(tmp_path))
    assert stream.getvalue().splitlines() == [
        "trial 0 complete val_accuracy 0.7400 compile.optimizer.learning_rate=0.004 model.layers[1].units=8",
        "trial 1 pruned val_accuracy 0.3200 compile.optimizer.learning_rate=0.0011 model.layers[1].units=16",
        (
            "trial 2 failed compile.optimizer.learning_rate=0.009 model.layers[1].units=8: loss became nan at epoch 1, "
            "batch 3"
        ),
        "trial 3 complete val_accuracy 0.8100 compile.optimizer.learning_rate=0.002 model.layers[1].units=16",
    ]


def test_the_final_table_is_sorted_by_the_objective(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = load_sweep(write_spec(tmp_path))
    (tmp_path / "sweep").mkdir()
    result = finish(sweep, tmp_path / "sweep", records(tmp_path))
    assert [record.number for record in result.trials] == [3, 0, 1, 4, 2] and result.best.number == 3
    stream = io.StringIO()
    print_result(result, Console(file=stream, width=200))
    text = stream.getvalue()
    assert text.index("│ 3 ") < text.index("│ 0 ") < text.index("│ 1 ") < text.index("│ 2 ")
    assert "best: trial 3, val_accuracy 0.8100, run runs/3" in text and "best spec: sweep/best.yaml" in text
    assert "learning_rate: 0.002\n" in (tmp_path / "sweep" / "best.yaml").read_text()


def test_the_readme_sweeps_section_names_the_install_commands():
    from specforge.base.raycluster import INSTALL as RAY_INSTALL
    from specforge.sweep.study import INSTALL

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("\n## Sweeps\n") :]
    section = section[: section.index("\n## ", 1)]
    assert f"`{INSTALL}`" in section and f"`{RAY_INSTALL}`" in section
