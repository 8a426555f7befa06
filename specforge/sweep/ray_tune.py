"""The Ray backend: the same search on Ray Tune, with its Optuna search and the ASHA scheduler.

It runs on the Ray that ``specforge.base.raycluster.connect`` joined or started.  Each trial requests
``sweep.resources`` (by default the cluster's CPUs divided by ``jobs``, no GPU) and uses only its CPUs
(shards and BLAS threads), trains with the spec's ``fit.backend`` (a torch trial on its GPU share, or on
CPUs when it has none) into ``trials/<k>/`` of the sweep directory like a local trial, and reports its
objective after every epoch; ASHA stops the trials that fall behind.  A trial writes how it ended, and the
resources Ray gave it, to ``trials/<k>/outcome.json``; a trial ASHA stopped has none and is recorded as
pruned.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from specforge.ops.parallel import limited_to
from specforge.runs import directory as runs
from specforge.sweep import directory
from specforge.sweep.results import TrialRecord
from specforge.sweep.space import SweepConfig, sweep_from_payload, sweep_payload
from specforge.sweep.study import grid_points, optuna_module, planned_trials
from specforge.sweep.trial import FAILED, PRUNED, run_trial

OUTCOME = "outcome.json"
#: Tune's experiment in a sweep directory: ``ray/tune/``.
RAY_STORAGE, EXPERIMENT = "ray", "tune"


def trial_resources(sweep: SweepConfig, cluster: dict[str, float], jobs: int) -> dict[str, float]:
    """What each trial asks Ray Tune for: ``sweep.resources``, by default the ``cluster``'s CPUs divided by ``jobs``
    and no GPU; a SpecError at ``sweep.resources`` for more than the cluster has (Tune would wait for it forever)."""
    asked = {"cpu": max(1, int(cluster.get("CPU", 1)) // jobs), "gpu": 0, **sweep.resources}
    for key, unit in (("cpu", "CPU"), ("gpu", "GPU")):
        have = cluster.get(unit, 0)
        if asked[key] > have:
            fix = (
                "set sweep.resources.gpu: 0 to train the trials on CPUs, or join a cluster with GPUs (--address)"
                if key == "gpu"
                else f"ask for {have:g} or fewer, or join a larger cluster (--address)"
            )
            raise sweep.located(
                f"each trial asks for {asked[key]:g} {unit} and the Ray cluster has {have:g}; {fix}",
                ("sweep", "resources", key),
            )
    return asked


def run_ray(
    sweep: SweepConfig,
    sweep_dir: Path,
    *,
    jobs: int,
    resources: dict[str, float],
    limits: dict[str, int | None],
    on_update: Callable[[list[TrialRecord]], None],
) -> list[TrialRecord]:
    """Run the sweep's trials on Ray Tune, ``jobs`` at once, each with ``resources`` (``trial_resources``)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    optuna = optuna_module()
    mode = "max" if sweep.maximize else "min"
    sampler = (
        optuna.samplers.TPESampler(seed=sweep.seed)
        if sweep.sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=sweep.seed)
    )
    grid = grid_points(sweep) if sweep.sampler == "grid" else None  # evaluated first, one trial each
    epochs = sweep.spec.config["fit"]["epochs"]
    # max_t beyond the last epoch: ASHA stops a trial that reaches max_t, before it could finish its run
    scheduler = (
        ASHAScheduler(metric=sweep.metric, mode=mode, time_attr="epoch", max_t=epochs + 1, grace_period=1)
        if sweep.pruner != "none"
        else None
    )
    orders = {
        "sweep": sweep_payload(sweep),
        "sweep_dir": str(sweep_dir.resolve()),
        "limits": limits,
        "resources": resources,
        "cwd": os.getcwd(),
    }
    trainable = tune.with_resources(tune.with_parameters(_trial, orders=orders), resources)
    experiment = sweep_dir / RAY_STORAGE / EXPERIMENT
    if restorable(sweep_dir):  # a sweep killed mid-run: Tune's own state (searcher, trials) carries it on
        tuner = tune.Tuner.restore(str(experiment.resolve()), trainable=trainable, resume_unfinished=True)
    else:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=OptunaSearch(
                    space=sweep.suggest, metric=sweep.metric, mode=mode, sampler=sampler, points_to_evaluate=grid
                ),
                scheduler=scheduler,
                num_samples=planned_trials(sweep),
                max_concurrent_trials=jobs,
                time_budget_s=sweep.timeout,
            ),
            run_config=tune.RunConfig(storage_path=str(experiment.parent.resolve()), name=EXPERIMENT, verbose=0),
        )
    with (sweep_dir / "ray.log").open("a") as log, contextlib.redirect_stdout(log):
        results = tuner.fit()
    found = [_record(results[index], sweep, sweep_dir) for index in range(len(results))]
    on_update(found)
    return found


def restorable(sweep_dir: Path) -> bool:
    """Whether ``sweep_dir`` holds a Tune experiment that ``Tuner.restore`` can carry on."""
    from ray import tune

    return tune.Tuner.can_restore(str((sweep_dir / RAY_STORAGE / EXPERIMENT).resolve()))


def _trial(config: dict, orders: dict) -> None:
    """A Ray Tune trial: the spec with ``config``'s values, trained on this trial's CPUs (a torch trial on its GPU
    share when it has one: Ray makes that GPU the only one the trial's process sees)."""
    import ray
    from ray import tune

    os.chdir(orders["cwd"])
    sweep = sweep_from_payload(orders["sweep"])
    context = tune.get_context()
    number = trial_number(Path(context.get_trial_dir()).name, context.get_trial_id())
    run_dir = directory.trial_dir(Path(orders["sweep_dir"]), number)

    def report(epoch: int, value: float) -> bool:
        tune.report({sweep.metric: value, "epoch": epoch})
        return False  # ASHA stops the trial from outside

    values = {parameter.key: config[parameter.key] for parameter in sweep.parameters}
    resources = orders["resources"]
    with limited_to(max(1, int(resources["cpu"]))):
        outcome = run_trial(
            sweep,
            values,
            run_dir,
            report,
            limit_train=orders["limits"]["train"],
            limit_test=orders["limits"]["test"],
            torch_device="cuda" if resources["gpu"] else "cpu",
        )
    runs.write_json(
        run_dir / OUTCOME,
        {
            "state": outcome.state,
            "values": outcome.values,
            "error": outcome.error,
            "resources": ray.get_runtime_context().get_assigned_resources(),
        },
    )


def trial_number(trial_dir_name: str, trial_id: str) -> int:
    """The trial's index in the sweep from 0, read from the counter Ray puts after the trial id in the name of
    the trial's own directory (``_trial_666b6608_3_lr=...``: 2)."""
    return int(trial_dir_name.split(f"{trial_id}_", 1)[1].split("_", 1)[0]) - 1


def _record(result: Any, sweep: SweepConfig, sweep_dir: Path) -> TrialRecord:
    number = trial_number(Path(result.path).name, result.metrics["trial_id"])
    run_dir = directory.trial_dir(sweep_dir, number)
    params = {parameter.key: result.config.get(parameter.key) for parameter in sweep.parameters}
    outcome_file = run_dir / OUTCOME
    if outcome_file.exists():
        outcome = json.loads(outcome_file.read_text(encoding="utf-8"))
        return TrialRecord(number, outcome["state"], params, outcome["values"], str(run_dir), outcome["error"])
    frame = result.metrics_dataframe
    values = [float(v) for v in frame[sweep.metric]] if frame is not None and sweep.metric in frame else []
    if result.error is not None:
        lines = str(result.error).strip().splitlines()
        return TrialRecord(number, FAILED, params, values, str(run_dir), lines[-1] if lines else "failed")
    if (run_dir / runs.MANIFEST).exists():  # stopped by ASHA mid-epoch: resumable like any interrupted run
        runs.update_manifest(run_dir, status="interrupted")
    return TrialRecord(number, PRUNED, params, values, str(run_dir))
