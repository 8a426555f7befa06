"""A sweep's search space over spec paths, and the checks the schema cannot make.

Each parameter is a ``--set`` path with its values; a trial's values become ``--set`` overrides of
the spec, so a sweep can change exactly what the command line can.  ``check_sweep`` reports, located
in the file that holds the sweep: a path the spec does not have, values that do not fit their path
(each range's ends, and a point inside for float ranges, are applied and validated as a ``--set``
would be), an empty range, a grid over a continuous range, and a metric that training does not report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from specforge.base.errors import Location, Problem, SpecError
from specforge.graph.build import build_graph
from specforge.graph.dag import Graph
from specforge.spec import Spec, format_path, override_spec, parse_path, spec_from_dict
from specforge.spec.reader import SpecPath
from specforge.training.heads import reported_names

FLOAT_KINDS = ("uniform", "loguniform")
#: Where inside a float range the extra checked value sits (not a whole number for whole-number ends).
_INSIDE = 0.381966


@dataclass(frozen=True)
class Parameter:
    """One searched value: its ``--set`` path and the values it may take."""

    key: str
    kind: str
    values: tuple
    step: int = 1
    log: bool = False

    @classmethod
    def from_config(cls, key: str, config: dict) -> Parameter:
        kind = next(kind for kind in ("choice", *FLOAT_KINDS, "int") if kind in config)
        return cls(key, kind, tuple(config[kind]), config.get("step", 1), config.get("log", False))

    @property
    def path(self) -> SpecPath:
        return parse_path(self.key) or ()

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna trial (``optuna.Trial``, also under Ray Tune's OptunaSearch) picks."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.values))
        low, high = self.values
        if self.kind == "int":
            return trial.suggest_int(self.key, low, high, step=self.step, log=self.log)
        return trial.suggest_float(self.key, low, high, log=self.kind == "loguniform")

    def grid(self) -> list:
        """Every value, for the grid sampler (choice and int only)."""
        if self.kind == "choice":
            return list(self.values)
        return list(range(self.values[0], self.values[1] + 1, self.step))

    def checked_values(self) -> list:
        """The values validated before a sweep starts: every choice, an int range's lowest and largest
        drawable value (``high`` itself only when the steps reach it), a float range's ends and a point inside."""
        if self.kind == "choice":
            return list(dict.fromkeys(self.values))
        if self.kind == "int":
            low, high = self.values
            return list(dict.fromkeys([low, low + (high - low) // self.step * self.step]))
        low, high = (float(value) for value in self.values)
        return [low, high, low + (high - low) * _INSIDE]


def override(key: str, value: Any) -> str:
    """``key=value`` as ``--set`` reads it (JSON is YAML)."""
    return f"{key}={json.dumps(value)}"


@dataclass
class SweepConfig:
    """A checked ``sweep:`` section with its defaults, and the spec it searches."""

    spec: Spec
    parameters: list[Parameter]
    metric: str
    direction: str
    trials: int
    sampler: str
    pruner: str
    seed: int
    timeout: float | None
    #: each trial's ``cpu`` and ``gpu`` on Ray Tune, as ``sweep.resources`` gives them (empty: the defaults)
    resources: dict[str, float]
    #: where the sweep section's values are written (the spec, or the sweep file naming it)
    locate: Callable[[SpecPath], Location]

    def located(self, message: str, path: SpecPath) -> SpecError:
        """A SpecError at ``path`` of the file holding the sweep."""
        return SpecError(problems=[Problem(message, self.locate(path))])

    def overrides(self, values: dict[str, Any]) -> list[str]:
        return [override(key, value) for key, value in values.items()]

    def trial_spec(self, values: dict[str, Any]) -> Spec:
        """The spec with one trial's values applied, as ``--set`` would apply them."""
        return override_spec(self.spec, self.overrides(values))

    def suggest(self, trial: Any) -> dict[str, Any]:
        return {parameter.key: parameter.suggest(trial) for parameter in self.parameters}

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def definition(self) -> dict:
        """What identifies the study: a sweep directory continues only the same definition."""
        return {
            "spec_sha256": self.spec.sha256(),
            "metric": self.metric,
            "direction": self.direction,
            "sampler": self.sampler,
            "pruner": self.pruner,
            "seed": self.seed,
            "parameters": {p.key: [p.kind, list(p.values), p.step, p.log] for p in self.parameters},
        }


def direction_of(metric: str, direction: str) -> str:
    if direction != "auto":
        return direction
    return "minimize" if metric.removeprefix("val_") == "loss" else "maximize"


def sweep_config(spec: Spec, section: dict, graph: Graph, locate: Callable[[SpecPath], Location]) -> SweepConfig:
    """The sweep of ``spec`` from its (schema-valid, defaults filled) ``section``; ``locate`` places errors in
    the file holding it.  Raises SpecError listing every problem."""
    problems = _metric_problems(spec, section, graph, locate) + _backend_problems(spec, section, locate)
    parameters = []
    for key, config in section["parameters"].items():
        parameter = Parameter.from_config(key, config)
        found = _parameter_problems(spec, parameter, section["sampler"])
        problems += [Problem(message, locate(("sweep", "parameters", key))) for message in found]
        parameters.append(parameter)
    if problems:
        raise SpecError(problems=problems)
    return SweepConfig(
        spec,
        parameters,
        section["metric"],
        direction_of(section["metric"], section["direction"]),
        section["trials"],
        section["sampler"],
        section["pruner"],
        section["seed"],
        section["timeout"],
        section.get("resources") or {},
        locate,
    )


def _metric_problems(spec: Spec, section: dict, graph: Graph, locate: Callable[[SpecPath], Location]) -> list[Problem]:
    names = reported_names(spec.config, graph)
    metric = section["metric"]
    if metric in names:
        return []
    hint = (
        " (there is no validation data: set fit.validation, or use a training value)"
        if metric.startswith("val_") and not any(name.startswith("val_") for name in names)
        else ""
    )
    return [
        Problem(f"training does not report {metric!r}{hint}; reported: {', '.join(names)}", locate(("sweep", "metric")))
    ]


def _backend_problems(spec: Spec, section: dict, locate: Callable[[SpecPath], Location]) -> list[Problem]:
    """Trials train in the process a sweep gives them, with fit.backend numpy or torch, on a GPU only with torch."""
    backend = spec.config["fit"].get("backend", "numpy")
    if backend == "ray":
        return [
            Problem(
                "a sweep trains each trial in the one process it gives the trial, which reports the objective after "
                "every epoch so that the search can prune; fit.backend ray would train each trial on data-parallel "
                "Ray Train workers of its own, taking the CPUs the other trials run on; sweep with fit.backend "
                "torch (and sweep.resources for each trial's CPUs and GPU share on Ray Tune)",
                spec.locate(("fit", "backend")),
            )
        ]
    gpu = (section.get("resources") or {}).get("gpu", 0)
    if gpu and backend != "torch":
        return [
            Problem(
                f"the {backend} backend trains on CPUs; a trial trains on its GPU share with fit.backend: torch",
                locate(("sweep", "resources", "gpu")),
            )
        ]
    return []


def _parameter_problems(spec: Spec, parameter: Parameter, sampler: str) -> list[str]:
    path = parse_path(parameter.key)
    if path is None:
        return [
            (
                f"{parameter.key!r} is not a spec path; write it as --set takes it, e.g. "
                "compile.optimizer.learning_rate or model.layers[0].filters"
            )
        ]
    missing = _missing(spec.config, path)
    if missing:
        return [missing]
    range_problem = _range_problem(parameter)
    if range_problem:
        return [range_problem]
    if sampler == "grid" and parameter.kind in FLOAT_KINDS:
        return [
            (
                f"the grid sampler needs a finite set of values; use {{choice: [...]}} or {{int: [low, high]}} "
                f"instead of {parameter.kind}"
            )
        ]
    problems = []
    for value in parameter.checked_values():
        try:
            override_spec(spec, [override(parameter.key, value)])
        except SpecError as error:
            problems += [
                f"{parameter.kind} value {json.dumps(value)} does not fit {parameter.key}: {p.message}"
                for p in error.problems
            ]
    return problems[:1]


def _missing(config: Any, path: SpecPath) -> str | None:
    """Why ``path`` is not in the resolved ``config`` (None when it is)."""
    node = config
    for depth, part in enumerate(path):
        where = format_path(path[:depth]) or "the spec"
        if isinstance(node, dict) and isinstance(part, str):
            if part not in node:
                return f"{format_path(path[: depth + 1])} does not exist in the spec; {where} has: {', '.join(node)}"
        elif isinstance(node, list) and isinstance(part, int):
            if part >= len(node):
                return (
                    f"{format_path(path[: depth + 1])} does not exist in the spec; {where} has {len(node)} items "
                    f"(0 to {len(node) - 1})"
                )
        else:
            return f"{format_path(path[: depth + 1])} does not exist in the spec; {where} is {_kind(node)}"
        node = node[part]
    return None


def _kind(value: Any) -> str:
    kinds: dict[type, str] = {dict: "a mapping", list: "a list"}
    return kinds.get(type(value), f"the value {json.dumps(value)}")


def _range_problem(parameter: Parameter) -> str | None:
    if parameter.kind != "int" and (parameter.step != 1 or parameter.log):
        return "step and log apply to int ranges only"
    if parameter.kind == "choice":
        return None
    low, high = parameter.values
    if parameter.kind in FLOAT_KINDS and not low < high:
        return f"empty range [{low}, {high}]: low must be below high"
    if parameter.kind == "int" and low > high:
        return f"empty range [{low}, {high}]: low must not be above high"
    if parameter.log and (parameter.step != 1 or low < 1):
        return "log: true needs step 1 and low >= 1"
    return None


def sweep_payload(sweep: SweepConfig) -> dict:
    """The sweep as JSON for another process (``sweep_from_payload`` rebuilds it)."""
    section = {
        "parameters": {
            p.key: {p.kind: list(p.values), **({"step": p.step, "log": p.log} if p.kind == "int" else {})}
            for p in sweep.parameters
        },
        "metric": sweep.metric,
        "direction": sweep.direction,
        "trials": sweep.trials,
        "sampler": sweep.sampler,
        "pruner": sweep.pruner,
        "seed": sweep.seed,
        "timeout": sweep.timeout,
        **({"resources": sweep.resources} if sweep.resources else {}),
    }
    return {"spec": sweep.spec.document.data, "file": sweep.spec.file, "section": section}


def sweep_from_payload(payload: dict) -> SweepConfig:
    spec = spec_from_dict(payload["spec"], file=payload["file"])
    return sweep_config(spec, payload["section"], build_graph(spec), spec.locate)
