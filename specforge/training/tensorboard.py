"""TensorBoard event files for a run (``fit.log: [tensorboard]``), written with tensorboardX.

Training reports reach this log as they reach the console (the ``specforge.training.progress.Progress``
protocol): per epoch the loss and every metric, training and validation side by side
(``loss/training``, ``loss/validation``, ...); every ``fit.log_every`` batches the running
training values (``batch/loss``, ...); once, the resolved spec as text; at the end, the
hyperparameters (every scalar of ``compile`` and ``fit``) with the run's final values.
Read them with ``tensorboard --logdir runs``.  tensorboardX (the ``tensorboard`` extra) is
imported only when a spec asks for the log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from specforge.base.errors import Location, SpecError
from specforge.runs.listing import flatten

#: The log's folder inside a run directory.
LOG_DIR = "tensorboard"
TENSORBOARD_EXTRA = "pip install 'specforge[tensorboard]'"


def hyperparameters(config: Mapping[str, Any]) -> dict[str, bool | str | float | int]:
    """Every setting of ``compile`` and ``fit`` by its spec path (``compile.optimizer.learning_rate``); lists of
    plain values (metrics, fit.log) as text."""
    values = flatten({section: config.get(section, {}) for section in ("compile", "fit")})
    return {
        path: value if isinstance(value, (bool, str, int, float)) else str(value)
        for path, value in values.items()
        if value is not None
    }


class TensorBoardLog:
    """Training reports as TensorBoard scalars, text and hyperparameters in ``run_dir/tensorboard``."""

    def __init__(
        self,
        run_dir: Path,
        config: Mapping[str, Any],
        every: int,
        *,
        first_epoch: int = 0,
        where: Location | None = None,
    ):
        """``where``: the place in the spec that asked for the log, named when tensorboardX is missing."""
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            where = where or Location(path="fit.log")
            raise SpecError(
                f"tensorboard needs tensorboardX, which is not installed; install it with: {TENSORBOARD_EXTRA}",
                file=where.file,
                line=where.line,
                column=where.column,
                path=where.path,
            ) from None
        self.config = config
        self.every = every
        self.writer = SummaryWriter(logdir=str(Path(run_dir) / LOG_DIR), flush_secs=10)
        self._epoch, self._steps = first_epoch, 0
        if first_epoch == 0:
            spec = json.dumps(config, indent=2)
            self.writer.add_text("spec", "    " + spec.replace("\n", "\n    "), 0)

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        self._epoch, self._steps = epoch, steps

    def batch_end(self, step: int, logs: Mapping[str, float]) -> None:
        batch = self._epoch * self._steps + step  # counted across epochs
        if self.every and batch % self.every == 0:
            for name, value in logs.items():
                self.writer.add_scalar(f"batch/{name}", value, batch)

    def epoch_end(self, logs: Mapping[str, float]) -> None:
        for name, value in logs.items():
            part = "validation" if name.startswith("val_") else "training"
            self.writer.add_scalar(f"{name.removeprefix('val_')}/{part}", value, self._epoch + 1)
        self.writer.flush()

    def message(self, text: str) -> None:
        self.writer.add_text("messages", text, self._epoch + 1)

    def close(self, final: Mapping[str, float] | None = None) -> None:
        """Write the hyperparameters with the run's ``final`` values (when it finished), then close the files."""
        if final:
            self.writer.add_hparams(
                hyperparameters(self.config), {f"final/{k}": v for k, v in final.items()}, name="hparams"
            )
        self.writer.close()


__all__ = ["LOG_DIR", "TensorBoardLog", "hyperparameters"]
