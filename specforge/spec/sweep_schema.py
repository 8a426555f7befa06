"""The ``sweep:`` section's JSON Schema: the search space keyed by ``--set`` paths, the objective, the search.

It is part of the spec's schema (so editors complete it and ``validate`` checks it); a sweep file, which
names a spec instead of being one, is ``{spec: PATH, sweep: {...}}`` and is checked with ``SWEEP_FILE_SCHEMA``.
What the schema cannot see (the path exists, a range fits its path's type, is not empty, the metric is
reported) is checked in ``specforge.sweep.space``.
"""

from __future__ import annotations

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
DIRECTIONS = ("auto", "minimize", "maximize")


def _pair(items: dict, what: str) -> dict:
    return {"type": "array", "items": items, "minItems": 2, "maxItems": 2, "description": what}


_KINDS = ("choice", "uniform", "loguniform", "int")

#: One parameter's values: exactly one of the kinds, with step and log for int.
_DISTRIBUTION = {
    "type": "object",
    "description": "The values to try: {choice: [...]}, {uniform: [low, high]}, {loguniform: [low, high]} or "
    "{int: [low, high], step: 1, log: false}.",
    "additionalProperties": False,
    "properties": {
        "choice": {"type": "array", "minItems": 1, "description": "One of the listed values."},
        "uniform": _pair({"type": "number"}, "A float drawn uniformly from [low, high]."),
        "loguniform": _pair(
            {"type": "number", "exclusiveMinimum": 0},
            "A float drawn uniformly on a log scale from [low, high], both > 0 (learning rates).",
        ),
        "int": _pair({"type": "integer"}, "An integer from [low, high], both included."),
        "step": {"type": "integer", "minimum": 1, "default": 1, "description": "int only: spacing of the values."},
        "log": {
            "type": "boolean",
            "default": False,
            "description": "int only: draw on a log scale (low >= 1, step 1).",
        },
    },
    "oneOf": [{"required": [kind]} for kind in _KINDS],
}

SWEEP_SCHEMA = {
    "description": "A hyperparameter search over this spec, run by `specforge sweep`: the values to try, keyed "
    "by the paths --set takes, and the objective. `specforge train` ignores it.",
    "type": "object",
    "required": ["parameters"],
    "additionalProperties": False,
    "properties": {
        "parameters": {
            "description": "Spec path (as --set takes it: compile.optimizer.learning_rate, "
            "model.layers[0].filters) -> the values to try: {choice: [...]}, {uniform: [low, high]}, "
            "{loguniform: [low, high]} or {int: [low, high], step: 1, log: false}.",
            "type": "object",
            "minProperties": 1,
            "additionalProperties": _DISTRIBUTION,
            "examples": [
                {
                    "compile.optimizer.learning_rate": {"loguniform": [1.0e-4, 1.0e-2]},
                    "model.layers[0].filters": {"choice": [32, 64]},
                }
            ],
        },
        "metric": {
            "type": "string",
            "minLength": 1,
            "default": "val_loss",
            "description": "The objective: a value training reports each epoch (loss, accuracy, "
            "val_loss, val_accuracy, ...); its last epoch's value scores the trial.",
        },
        "direction": {
            "enum": list(DIRECTIONS),
            "default": "auto",
            "description": "minimize or maximize the metric; auto: minimize losses, maximize metrics.",
        },
        "trials": {"type": "integer", "minimum": 1, "default": 10, "description": "Number of trials to run."},
        "sampler": {
            "enum": list(SAMPLERS),
            "default": "tpe",
            "description": "How the next values are chosen: tpe (Optuna's Tree-structured Parzen "
            "Estimator), random, or grid (every combination; choice and int only).",
        },
        "pruner": {
            "enum": list(PRUNERS),
            "default": "median",
            "description": "Stops unpromising trials early from the metric of each epoch: median "
            "(below the median of earlier trials at the same epoch), hyperband, or none.",
        },
        "seed": {"type": "integer", "minimum": 0, "default": 0, "description": "Seed of the sampler."},
        "timeout": {
            "type": ["number", "null"],
            "exclusiveMinimum": 0,
            "default": None,
            "description": "Time budget in seconds: no new trial starts after it (null: none).",
        },
        "resources": {
            "type": "object",
            "additionalProperties": False,
            "description": "What each trial takes on Ray Tune (sweep --backend ray), as Ray Tune's "
            "tune.with_resources asks for it. Trials train with the spec's fit.backend, numpy or torch; a torch "
            "trial with a GPU share trains on that GPU, one without on its CPUs. The local backend gives each "
            "of its --jobs processes a share of this machine's cores instead, and takes no resources.",
            "properties": {
                "cpu": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "description": "CPUs per trial (default: the cluster's CPUs divided by --jobs).",
                },
                "gpu": {
                    "type": "number",
                    "minimum": 0,
                    "default": 0,
                    "description": "GPUs per trial, or a fraction of one (0.25: four trials share a GPU); "
                    "needs fit.backend: torch.",
                },
            },
            "examples": [{"cpu": 1, "gpu": 0.25}],
        },
    },
}

SWEEP_FILE_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "specforge sweep file",
    "description": "A sweep kept beside a spec rather than in it.",
    "type": "object",
    "required": ["spec", "sweep"],
    "additionalProperties": False,
    "properties": {
        "spec": {"type": "string", "description": "The spec file, relative to this file's directory."},
        "sweep": SWEEP_SCHEMA,
    },
}
