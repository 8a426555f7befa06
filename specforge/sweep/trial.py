"""One trial: the spec with the trial's values, trained into an ordinary run directory.

The same for every backend: the backend passes ``report(epoch, value)``, called once per epoch through
the callbacks contract with the objective's value, which answers whether to stop (prune) the trial.
A trial that fails (a NaN loss, a shape the values make impossible) is an outcome with its message,
not an exception: the sweep goes on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specforge.base.errors import RunError, SpecforgeError
from specforge.options.callbacks import Callback
from specforge.runs import directory as runs
from specforge.sweep.space import SweepConfig
from specforge.training.backends import fit
from specforge.training.progress import Silent

#: ``report(epoch, value) -> prune?``; epochs count from 1.
Report = Callable[[int, float], bool]

COMPLETE, PRUNED, FAILED = "complete", "pruned", "failed"


@dataclass
class Outcome:
    """How a trial ended: its state, the objective's value per epoch, and the error of a failed one."""

    state: str
    values: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def value(self) -> float | None:
        """The objective: the metric's value at the last epoch trained."""
        return self.values[-1] if self.values else None


class _Reporter(Callback):
    """Hands the objective to the sweep after every epoch and stops training when it says prune (an observer,
    not a kind a spec may name: it has no ``type``)."""

    def __init__(self, metric: str, report: Report, epochs: int) -> None:
        self.metric, self.report, self.epochs = metric, report, epochs
        self.values: list[float] = []
        self.pruned = False

    def on_epoch_end(self, epoch: int, logs: dict[str, float], trainer: Any) -> None:
        value = float(logs[self.metric])
        self.values.append(value)
        if not math.isfinite(value):
            trainer.stop_training = True
        elif self.report(epoch + 1, value) and epoch + 1 < self.epochs:  # after the last epoch nothing is saved
            self.pruned = trainer.stop_training = True


def run_trial(
    sweep: SweepConfig,
    values: dict[str, Any],
    run_dir: Path,
    report: Report,
    *,
    limit_train: int | None = None,
    limit_test: int | None = None,
    torch_device: str | None = None,
) -> Outcome:
    """Train the spec with ``values`` into ``run_dir`` on its ``fit.backend`` (a torch trial on ``torch_device``,
    by default the spec's: auto); never raises for a failing trial.

    A ``run_dir`` that already holds this trial's run (a trial started again after its sweep was killed)
    is continued from its last checkpoint, or, when it trained all its epochs, taken as it is."""
    spec = sweep.trial_spec(values)
    reporter = _Reporter(sweep.metric, report, spec.config["fit"]["epochs"])
    device = torch_device if spec.config["fit"].get("backend") == "torch" else None
    try:
        if (run_dir / runs.MANIFEST).exists():
            if not _continued(run_dir, spec.config, reporter):
                fit(resume=run_dir, progress=Silent(), observers=[reporter], device=device)
        else:
            fit(
                spec,
                out=run_dir,
                progress=Silent(),
                limit_train=limit_train,
                limit_test=limit_test,
                observers=[reporter],
                device=device,
            )
    except SpecforgeError as error:
        return Outcome(FAILED, reporter.values, error.problems[0].message)
    except (ArithmeticError, ValueError, MemoryError) as error:
        return Outcome(FAILED, reporter.values, f"{type(error).__name__}: {error}")
    if reporter.values and not math.isfinite(reporter.values[-1]):
        return Outcome(FAILED, reporter.values, f"{sweep.metric} became {reporter.values[-1]}")
    return Outcome(PRUNED if reporter.pruned else COMPLETE, reporter.values)


def _continued(run_dir: Path, config: dict, reporter: _Reporter) -> bool:
    """For a trial's run already started: its values so far into ``reporter``, and whether it has trained all its
    epochs (its last value is then reported again).  A RunError when the run trained another spec."""
    if runs.read_json(run_dir / runs.RESOLVED) != json.loads(json.dumps(config)):
        raise RunError("holds another run than this trial's; move it away", file=runs.display_path(run_dir))
    if runs.read_json(run_dir / runs.MANIFEST)["status"] == "completed":
        reporter.values = list(runs.read_json(run_dir / runs.HISTORY_JSON)[reporter.metric])
        reporter.report(len(reporter.values), reporter.values[-1])
        return True
    if (run_dir / runs.CHECKPOINT_STATE).exists():
        reporter.values = list(runs.read_json(run_dir / runs.CHECKPOINT_STATE)["history"][reporter.metric])
    return False
