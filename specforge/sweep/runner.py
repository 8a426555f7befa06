"""``specforge sweep``: choose the sweep directory, run the trials on a backend, write the results."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from specforge.base.errors import Problem, RunError
from specforge.base.raycluster import connect
from specforge.runs import directory as runs
from specforge.spec import Spec
from specforge.sweep import directory
from specforge.sweep.loading import load_sweep
from specforge.sweep.local import run_local
from specforge.sweep.ray_tune import restorable, run_ray, trial_resources
from specforge.sweep.results import INTERRUPTED, SweepResult, TrialRecord, finish
from specforge.sweep.space import SweepConfig
from specforge.sweep.study import optuna_module, planned_trials

BACKENDS = ("local", "ray")
#: ``on_update(sweep, trials)`` while the sweep runs, whenever the trials may have changed.
OnUpdate = Callable[[SweepConfig, list[TrialRecord]], None]
#: ``on_warning(problem)`` for what a sweep put right and goes on from (a journal's torn last record).
OnWarning = Callable[[Problem], None]


def run_sweep(
    source: str | Path | Spec,
    *,
    overrides: Sequence[str] = (),
    trials: int | None = None,
    jobs: int = 1,
    backend: str = "local",
    address: str | None = None,
    root: str | Path = runs.RUNS_ROOT,
    limit_train: int | None = None,
    limit_test: int | None = None,
    on_update: OnUpdate | None = None,
    on_warning: OnWarning | None = None,
) -> SweepResult:
    """Run a sweep (see ``specforge.api.sweep``) and return its trials sorted, the best one and ``best.yaml``.
    ``on_warning`` gets what the sweep put right on its way (default: a Python warning)."""
    if backend not in BACKENDS:
        raise RunError(f"unknown backend {backend!r}; use local or ray", file="--backend")
    if jobs < 1:
        raise RunError(f"--jobs takes a number of processes >= 1, got {jobs}", file="--jobs")
    sweep = load_sweep(source, overrides, trials=trials)
    limits = {"train": limit_train, "test": limit_test}
    definition = {**sweep.definition(), "backend": backend, "limits": limits}

    def update(found: list[TrialRecord]) -> None:
        if on_update is not None:
            on_update(sweep, found)

    if backend == "ray":
        with connect(address, "sweep", "tune") as ray:
            resources = trial_resources(sweep, ray.cluster_resources(), jobs)
            sweep_dir = _continued(sweep, definition, root) or directory.create(sweep.spec.name, definition, root)
            found = run_ray(sweep, sweep_dir, jobs=jobs, resources=resources, limits=limits, on_update=update)
    else:
        if sweep.resources:
            raise sweep.located(
                "what each trial takes on Ray Tune (sweep --backend ray); the local backend gives each of its "
                "--jobs processes a share of this machine's cores: remove it, or sweep with --backend ray",
                ("sweep", "resources"),
            )
        optuna_module()
        sweep_dir = _continued(sweep, definition, root) or directory.create(sweep.spec.name, definition, root)
        found = run_local(sweep, sweep_dir, jobs=jobs, limits=limits, on_update=update, on_warning=on_warning or _warn)
    return finish(sweep, sweep_dir, found)


def _warn(problem: Problem) -> None:
    warnings.warn(problem.format(), RuntimeWarning, stacklevel=3)


def _continued(sweep: SweepConfig, definition: dict, root: str | Path) -> Path | None:
    """The newest sweep of the spec when it searches the same thing (on the same backend) and has trials left to
    run.  On Ray, that is a sweep stopped before its end that Tune can restore: a finished Tune experiment is not
    extended (Tune restores an experiment with its own number of trials)."""
    newest = directory.newest(sweep.spec.name, root)
    if newest is None or not directory.matches(newest, definition):
        return None
    results = newest / directory.RESULTS
    if definition["backend"] == "ray":
        return newest if not results.exists() and restorable(newest) else None
    if not results.exists():
        return newest
    finished = [trial for trial in runs.read_json(results)["trials"] if trial["state"] != INTERRUPTED]
    return newest if len(finished) < planned_trials(sweep) else None
