"""The local backend's study: Optuna over a JournalStorage on a file in the sweep directory (no server).

Every process of a sweep (the driver showing the table, the trial workers) opens the same journal; Optuna
appends each change under a file lock, so a trial that finished is on disk before the next one starts.
Trials are asked for under the sweep's ask lock, so N workers never start more trials than requested.
A trial left running by a killed sweep is marked interrupted when the sweep starts again, and its values
are queued to run once more; finished trials are kept and never repeated.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import itertools
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

from specforge.base.errors import RunError
from specforge.runs import directory as runs
from specforge.sweep import directory
from specforge.sweep.results import INTERRUPTED, RUNNING, TrialRecord
from specforge.sweep.space import SweepConfig
from specforge.sweep.trial import COMPLETE, FAILED, PRUNED, run_trial

STUDY_NAME = "specforge-sweep"
INSTALL = "pip install 'specforge[sweep]'"


def optuna_module() -> Any:
    """``optuna``, or a one-line error naming the install command."""
    try:
        import optuna
    except ImportError:
        raise RunError(f"sweeps need Optuna; install it with: {INSTALL}", file="specforge sweep") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_study(sweep: SweepConfig, sweep_dir: Path, *, worker: int = 0) -> Any:
    """The sweep's study in ``sweep_dir/journal.log`` (created when new), with this worker's sampler."""
    optuna = optuna_module()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = sweep_dir / directory.JOURNAL
    _check_journal(path)
    try:
        # optuna types lock_obj as its private lock base class; this lock has the same acquire and release.
        storage = JournalStorage(JournalFileBackend(str(path), lock_obj=_JournalLock(path)))  # type: ignore[arg-type]
        done = len(storage.get_all_studies()) and _trial_count(storage)
        return optuna.create_study(
            storage=storage,
            study_name=STUDY_NAME,
            direction=sweep.direction,
            sampler=_sampler(optuna, sweep, worker, done),
            pruner=_pruner(optuna, sweep),
            load_if_exists=True,
        )
    except (ValueError, KeyError, AssertionError, TypeError, json.JSONDecodeError) as error:
        raise RunError(
            f"cannot read the sweep's journal ({type(error).__name__}: {error}); it is damaged or not "
            "written by specforge sweep: move it away to start the sweep afresh",
            file=runs.display_path(path),
        ) from None


class _JournalLock:
    """The journal's write lock as an flock on ``journal.log.lock``: the system drops it when its holder dies.
    Optuna's default lock, a symlink, would outlive a sweep killed while writing, for its 30 s grace period."""

    def __init__(self, journal: Path) -> None:
        self._path = journal.with_name(journal.name + ".lock")
        self._descriptor: int | None = None

    def acquire(self) -> bool:
        descriptor = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        self._descriptor = descriptor
        return True

    def release(self) -> None:
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            os.close(descriptor)


def _check_journal(path: Path) -> None:
    """A journal file must be Optuna's, holding this sweep's study and nothing else."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as stream:
        first = stream.readline()
    try:
        entry = json.loads(first)
    except (json.JSONDecodeError, UnicodeDecodeError):
        entry = None
    if not isinstance(entry, dict) or entry.get("op_code") != 0:
        raise RunError(
            "not an Optuna journal (its first line is not a study's creation); it is damaged or not "
            "written by specforge sweep: move it away to start the sweep afresh",
            file=runs.display_path(path),
        )
    if entry.get("study_name") != STUDY_NAME:
        raise RunError(
            f"the journal holds study {entry.get('study_name')!r}, not a specforge sweep; move it away "
            "to start the sweep afresh",
            file=runs.display_path(path),
        )


def _trial_count(storage: Any) -> int:
    study_id = storage.get_study_id_from_name(STUDY_NAME)
    return len(storage.get_all_trials(study_id, deepcopy=False))


def _sampler(optuna: Any, sweep: SweepConfig, worker: int, done: int) -> Any:
    """Each worker and each restart draws its own random numbers (from the sweep's seed), so that two
    workers, or a continued sweep, do not propose the same values again."""
    seed = int(hashlib.sha256(f"{sweep.seed}/{worker}/{done}".encode()).hexdigest()[:8], 16)
    if sweep.sampler in ("random", "grid"):  # a grid's points are queued by ``queue_grid``
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(optuna: Any, sweep: SweepConfig) -> Any:
    if sweep.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3)
    if sweep.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=sweep.spec.config["fit"]["epochs"])
    return optuna.pruners.NopPruner()


def grid_points(sweep: SweepConfig) -> list[dict[str, Any]]:
    """A grid sweep's points, as many as it runs, in an order shuffled by its seed."""
    points = list(itertools.product(*(parameter.grid() for parameter in sweep.parameters)))
    random.Random(sweep.seed).shuffle(points)
    keys = [parameter.key for parameter in sweep.parameters]
    return [dict(zip(keys, point)) for point in points[: planned_trials(sweep)]]


def queue_grid(study: Any, sweep: SweepConfig) -> None:
    """A new grid sweep's points queued (Optuna's GridSampler stops the study itself, which ask-and-tell
    workers cannot have)."""
    if sweep.sampler == "grid" and not study.get_trials(deepcopy=False):
        for point in grid_points(sweep):
            study.enqueue_trial(point)


def planned_trials(sweep: SweepConfig) -> int:
    """``trials``, or fewer when a grid has fewer points."""
    if sweep.sampler != "grid":
        return sweep.trials
    points = 1
    for parameter in sweep.parameters:
        points *= len(parameter.grid())
    return min(sweep.trials, points)


def counted(trials: list[Any]) -> int:
    """Trials that count towards the sweep's number: all but interrupted and queued ones."""
    return sum(
        1
        for trial in trials
        if trial.state.name in ("COMPLETE", "PRUNED", "RUNNING")
        or (trial.state.name == "FAIL" and not trial.user_attrs.get(INTERRUPTED))
    )


def mark_interrupted(study: Any, sweep: SweepConfig) -> int:
    """Trials a killed sweep left running: one whose run finished (only the record of its end was lost) is
    recorded complete from its run; the others are failed and marked interrupted, their values queued again."""
    optuna = optuna_module()
    left = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in left:
        value = finished_value(trial.user_attrs.get("run"), sweep)
        if value is not None:
            study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.COMPLETE, [value])
            continue
        study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        run = trial.user_attrs.get("run")
        if run and (Path(run) / runs.MANIFEST).exists():
            runs.update_manifest(Path(run), status="interrupted")
        if set(trial.params) == {parameter.key for parameter in sweep.parameters}:
            study.enqueue_trial(trial.params)
    return len(left)


def finished_value(run: str | None, sweep: SweepConfig) -> float | None:
    """The objective of a trial run that trained all its epochs (its last epoch's value of the metric), or None."""
    run_dir = Path(run) if run else None
    if run_dir is None or not (run_dir / runs.MANIFEST).exists():
        return None
    manifest = runs.read_json(run_dir / runs.MANIFEST)
    if manifest.get("status") != "completed" or manifest.get("epochs_completed") != manifest.get("epochs"):
        return None
    values = runs.read_json(run_dir / runs.HISTORY_JSON).get(sweep.metric) or []
    return float(values[-1]) if values and math.isfinite(values[-1]) else None


def work(
    sweep: SweepConfig, sweep_dir: Path, *, worker: int, deadline: float | None, limits: dict[str, int | None]
) -> None:
    """One worker process's loop: ask for a trial (while trials are left and time is), train it, tell."""
    optuna = optuna_module()
    study = open_study(sweep, sweep_dir, worker=worker)
    total = planned_trials(sweep)
    while True:
        with directory.locked(sweep_dir / directory.ASK_LOCK):
            if counted(study.get_trials(deepcopy=False)) >= total or (deadline and time.time() >= deadline):
                return
            trial = study.ask()
            values = sweep.suggest(trial)
        run_dir = directory.trial_dir(sweep_dir, trial.number)
        trial.set_user_attr("run", str(run_dir))
        trial.set_user_attr("cores", sorted(os.sched_getaffinity(0)))
        outcome = run_trial(
            sweep,
            values,
            run_dir,
            functools.partial(_report, trial),
            limit_train=limits.get("train"),
            limit_test=limits.get("test"),
        )
        if outcome.error:
            trial.set_user_attr("error", outcome.error)
        if outcome.state == COMPLETE:
            study.tell(trial, outcome.value)
        else:
            study.tell(
                trial, state=optuna.trial.TrialState.PRUNED if outcome.state == PRUNED else optuna.trial.TrialState.FAIL
            )


_STATES = {"COMPLETE": COMPLETE, "PRUNED": PRUNED, "FAIL": FAILED, "RUNNING": RUNNING}


def _report(trial: Any, epoch: int, value: float) -> bool:
    """An epoch's objective value to Optuna; whether the pruner stops the trial there."""
    trial.report(value, epoch)
    return bool(trial.should_prune())


def records(study: Any) -> list[TrialRecord]:
    """The study's trials (queued ones left out) as the records the tables and results are made of."""
    found = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state.name == "WAITING":
            continue
        state = INTERRUPTED if trial.user_attrs.get(INTERRUPTED) else _STATES[trial.state.name]
        values = [trial.intermediate_values[step] for step in sorted(trial.intermediate_values)]
        if state == COMPLETE and (not values or values[-1] != trial.value):
            values.append(trial.value)
        seconds = (
            (trial.datetime_complete - trial.datetime_start).total_seconds()
            if trial.datetime_complete and trial.datetime_start
            else None
        )
        found.append(
            TrialRecord(
                trial.number,
                state,
                dict(trial.params),
                values,
                trial.user_attrs.get("run"),
                trial.user_attrs.get("error"),
                seconds,
            )
        )
    return found
