"""The local backend for real: Optuna over a journal file, trial processes, run directories, results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from needs import need

from specforge import api
from specforge.base.errors import RunError, TrainingInterrupted
from specforge.runs import directory as runs
from specforge.sweep import directory
from specforge.sweep.loading import load_sweep
from specforge.sweep.trial import COMPLETE, FAILED, PRUNED, run_trial

from .tiny import LIMITS, write_spec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def optuna():
    return need("optuna")


def cli(*args: str, cwd: Path, **options) -> subprocess.Popen | subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "specforge", *args]
    if options.pop("background", False):
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_a_sweep_runs_its_trials_as_run_directories(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path)
    seen = []
    result = api.sweep(
        spec, root=tmp_path / "runs", on_update=lambda sweep, records: seen.append(len(records)), **LIMITS
    )
    assert result.sweep_dir == tmp_path / "runs" / "tiny-mlp" / "sweeps" / "1" and seen
    assert [trial.state for trial in result.trials] == [COMPLETE, COMPLETE]
    values = [trial.value for trial in result.trials]
    assert values == sorted(values, reverse=True) and result.best is result.trials[0]
    for trial in result.trials:
        run = runs.open_run(trial.run)
        assert run.manifest["status"] == "completed" and len(trial.values) == 2
        assert run.config["model"]["layers"][1]["units"] == trial.params["model.layers[1].units"]
        assert json.loads((Path(trial.run) / "history.json").read_text())["val_accuracy"] == trial.values
    assert result.best_run.path == Path(result.best.run)
    best, _ = api.validate(result.best_spec)
    assert "sweep" not in best.config
    assert best.config["compile"]["optimizer"]["learning_rate"] == result.best.params["compile.optimizer.learning_rate"]
    assert json.loads((result.sweep_dir / "results.json").read_text())["best"]["number"] == result.best.number
    assert api.export(result.best_run).path.is_file()


def test_the_cli_prints_sorted_trials_and_json(tmp_path):
    spec = write_spec(tmp_path, sweep={"metric": "val_loss"})
    shown = cli("sweep", str(spec), "--limit-train", "256", "--limit-test", "64", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "2 trials: 2 complete; val_loss minimized" in shown.stdout
    assert "best: trial " in shown.stdout and "best spec: runs/tiny-mlp/sweeps/1/best.yaml" in shown.stdout
    assert shown.stdout.count("trial 0 complete") == 1
    report = cli(
        "sweep", str(spec), "--limit-train", "256", "--limit-test", "64", "--json", "--trials", "1", cwd=tmp_path
    )
    payload = json.loads(report.stdout)
    assert payload["sweep"] == "runs/tiny-mlp/sweeps/2" and payload["direction"] == "minimize"
    assert len(payload["trials"]) == 1 and payload["best"]["run"] == "runs/tiny-mlp/sweeps/2/trials/0"


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = write_spec(
        tmp_path,
        compile={"optimizer": "sgd"},
        sweep={
            "parameters": {"compile.optimizer.learning_rate": {"choice": [0.01, 1.0e30]}},
            "sampler": "grid",
            "trials": 2,
        },
    )
    result = api.sweep(spec, **LIMITS)
    states = {trial.params["compile.optimizer.learning_rate"]: trial for trial in result.trials}
    assert states[0.01].state == COMPLETE and states[1.0e30].state == FAILED
    assert states[1.0e30].error.startswith("loss became nan at epoch 1")
    assert result.best is states[0.01]


def test_the_pruner_is_fed_once_per_epoch_and_stops_the_run(tmp_path):
    sweep = load_sweep(write_spec(tmp_path, fit={"epochs": 3}))
    reports = []

    def prune_after_two(epoch, value):
        reports.append((epoch, value))
        return epoch == 2

    values = {"compile.optimizer.learning_rate": 0.005, "model.layers[1].units": 8}
    outcome = run_trial(sweep, values, tmp_path / "run", prune_after_two, **LIMITS)
    assert outcome.state == PRUNED and [epoch for epoch, _ in reports] == [1, 2]
    assert outcome.values == [value for _, value in reports]
    assert runs.read_json(tmp_path / "run" / runs.MANIFEST)["epochs_completed"] == 2
    late = run_trial(sweep, values, tmp_path / "late", lambda epoch, value: epoch == 3, **LIMITS)
    assert late.state == COMPLETE and len(late.values) == 3  # a prune after the last epoch saves nothing


def test_a_trial_started_again_continues_its_own_run_and_refuses_another(tmp_path):
    sweep = load_sweep(write_spec(tmp_path, fit={"epochs": 3}))
    values = {"compile.optimizer.learning_rate": 0.005, "model.layers[1].units": 8}
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):  # stopped in its second epoch
        run_trial(sweep, values, run_dir, lambda epoch, value: epoch == 2 and _interrupt(), **LIMITS)
    assert runs.read_json(run_dir / runs.CHECKPOINT_STATE)["epoch"] == 1
    reports = []
    resumed = run_trial(sweep, values, run_dir, lambda epoch, value: reports.append(epoch) or False)
    history = runs.read_json(run_dir / "history.json")["val_accuracy"]
    assert resumed.state == COMPLETE and resumed.values == history and len(history) == 3 and reports == [2, 3]
    weights = (run_dir / "weights.npz").read_bytes()
    again = run_trial(sweep, values, run_dir, lambda epoch, value: reports.append(epoch) or False)
    assert (again.state, again.values, reports[-1]) == (COMPLETE, history, 3)
    assert (run_dir / "weights.npz").read_bytes() == weights
    other = run_trial(sweep, {**values, "model.layers[1].units": 16}, run_dir, lambda epoch, value: False)
    assert (other.state, other.error) == (FAILED, "holds another run than this trial's; move it away")


def _interrupt() -> bool:
    raise KeyboardInterrupt


def test_median_pruning_in_a_sweep(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = write_spec(
        tmp_path,
        fit={"epochs": 3},
        sweep={
            "parameters": {"compile.optimizer.learning_rate": {"choice": [1.0e-6]}},
            "pruner": "median",
            "trials": 5,
        },
    )
    sweep_dir = directory.create("tiny-mlp", {})
    grid = ["compile.optimizer.learning_rate"]
    optuna = need("optuna")
    study = optuna.create_study(
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(sweep_dir / directory.JOURNAL))
        ),
        study_name="specforge-sweep",
        direction="maximize",
    )
    choice = optuna.distributions.CategoricalDistribution([1.0e-6])
    for _ in range(3):  # three finished trials set the median of each epoch; lr 1e-6 stays far below it
        study.add_trial(
            optuna.trial.create_trial(
                params={grid[0]: 1.0e-6},
                value=0.9,
                distributions={grid[0]: choice},
                intermediate_values={1: 0.8, 2: 0.85, 3: 0.9},
            )
        )
    from specforge.sweep.local import run_local

    found = run_local(
        load_sweep(spec, trials=5),
        sweep_dir,
        jobs=1,
        limits={"train": 256, "test": 64},
        on_update=lambda records: None,
        on_warning=lambda problem: pytest.fail(problem.format()),
    )
    pruned = [record for record in found if record.state == PRUNED]
    assert len(pruned) == 2 and all(len(record.values) == 1 for record in pruned)
    assert all(runs.read_json(Path(record.run) / runs.MANIFEST)["epochs_completed"] == 1 for record in pruned)


def test_jobs_divide_the_cores(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cores = len(os.sched_getaffinity(0))
    result = api.sweep(write_spec(tmp_path, sweep={"trials": 4}), jobs=2, **LIMITS)
    assert len(result.trials) == 4
    optuna = need("optuna")
    study = optuna.load_study(
        study_name="specforge-sweep",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(result.sweep_dir / directory.JOURNAL))
        ),
    )
    shares = {tuple(trial.user_attrs["cores"]) for trial in study.trials}
    # Which worker takes which trial is up to the scheduler (one may take all four): every trial ran on its
    # worker's half of the cores, and the two halves do not overlap.
    assert 1 <= len(shares) <= min(2, cores) and all(len(share) == max(1, cores // 2) for share in shares)
    assert cores < 2 or len(set().union(*shares)) == sum(len(share) for share in shares)
    for trial in result.trials:
        blas = runs.open_run(trial.run).manifest["blas"]
        assert all(pool["num_threads"] == max(1, cores // 2) for pool in blas)


def _trials(journal: Path) -> dict:
    optuna = need("optuna")
    if not journal.exists():
        return {}
    try:
        study = optuna.load_study(
            study_name="specforge-sweep",
            storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal))),
        )
    except KeyError:  # the sweep has not created its study yet
        return {}
    return {trial.number: trial for trial in study.trials}


def _numbers(trials: dict, state: str, *, reported: bool = False) -> list[int]:
    return [
        number
        for number, trial in trials.items()
        if trial.state.name == state and (trial.intermediate_values or not reported)
    ]


def test_sigkill_then_the_same_command_continues_without_losing_or_repeating(tmp_path):
    spec = write_spec(tmp_path, fit={"epochs": 3}, sweep={"trials": 4})
    command = ("sweep", str(spec), "--limit-train", "3000", "--limit-test", "500", "--json")
    journal = tmp_path / "runs" / "tiny-mlp" / "sweeps" / "1" / directory.JOURNAL
    first = cli(*command, cwd=tmp_path, background=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
            trials = _trials(journal)
            if _numbers(trials, "COMPLETE") and _numbers(trials, "RUNNING", reported=True):
                break
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    before = _trials(journal)
    complete, running = _numbers(before, "COMPLETE"), _numbers(before, "RUNNING")
    assert complete and running, "the sweep was not killed in the middle of a trial"
    size = journal.stat().st_size
    time.sleep(1.5)
    assert journal.stat().st_size == size, "a trial process outlived the killed sweep"
    second = cli(*command, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    payload = json.loads(second.stdout)
    assert payload["sweep"] == "runs/tiny-mlp/sweeps/1"
    states = {trial["number"]: trial for trial in payload["trials"]}
    finished = [trial for trial in payload["trials"] if trial["state"] != "interrupted"]
    assert len(finished) == 4 and all(trial["state"] == "complete" for trial in finished)
    for number in complete:
        assert states[number]["values"] == list(before[number].intermediate_values.values())
        assert states[number]["params"] == before[number].params
    interrupted = [trial for trial in payload["trials"] if trial["state"] == "interrupted"]
    assert [trial["number"] for trial in interrupted] == running
    again = [trial for trial in finished if trial["params"] == interrupted[0]["params"]]
    assert len(again) == 1 and again[0]["number"] > interrupted[0]["number"]
    assert runs.read_json(Path(tmp_path / interrupted[0]["run"]) / runs.MANIFEST)["status"] == "interrupted"


@pytest.mark.parametrize(
    "content, message",
    [
        ("not a journal at all\n", "not an Optuna journal"),
        ('{"op_code": 0, "study_name": "someone-else", "directions": [1]}\n', "holds study 'someone-else'"),
    ],
)
def test_a_corrupt_or_foreign_journal_is_one_line_naming_it(tmp_path, content, message):
    spec = write_spec(tmp_path)
    sweep = load_sweep(spec)
    definition = {**sweep.definition(), "backend": "local", "limits": {"train": 256, "test": 64}}
    sweep_dir = directory.create("tiny-mlp", definition, tmp_path / "runs")
    (sweep_dir / directory.JOURNAL).write_text(content)
    shown = cli("sweep", str(spec), "--limit-train", "256", "--limit-test", "64", cwd=tmp_path)
    assert shown.returncode == 2
    assert shown.stderr.startswith("runs/tiny-mlp/sweeps/1/journal.log: error: ") and message in shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1 and not (sweep_dir / directory.TRIALS).exists()


def test_without_optuna_one_line_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(RunError, match=r"pip install 'specforge\[sweep\]'"):
        api.sweep(write_spec(tmp_path), root=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_torch_trials_train_on_pytorch(tmp_path, monkeypatch):
    need("torch")
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, fit={"backend": "torch", "epochs": 1}, sweep={"trials": 1})
    result = api.sweep(spec, root=tmp_path / "runs", **LIMITS)
    [trial] = result.trials
    manifest = runs.open_run(trial.run).manifest
    assert trial.state == COMPLETE and len(trial.values) == 1
    assert (manifest["backend"], manifest["device_request"], manifest["status"]) == ("torch", "auto", "completed")


def test_resources_are_for_ray_tune_in_one_located_line(tmp_path):
    spec = write_spec(tmp_path, sweep={"resources": {"cpu": 1}})
    shown = cli("sweep", str(spec), cwd=tmp_path)
    assert shown.returncode == 2 and shown.stdout == ""
    line = next(number for number, text in enumerate(spec.read_text().splitlines(), 1) if "resources:" in text)
    assert shown.stderr == (
        f"{spec}:{line + 1}:5: error: sweep.resources: what each trial takes on Ray Tune (sweep --backend ray); the "
        "local backend gives each of its --jobs processes a share of this machine's cores: remove it, or sweep "
        "with --backend ray\n"
    )
    assert not (tmp_path / "runs").exists()
