"""The step function the training loop calls for each batch, and the numpy backend's.

The loop (specforge.training.loop) owns everything around a step: batches and their order, progress,
validation, callbacks, checkpoints and the run directory. A backend owns the weights while they
train and the optimizer. Between epochs the loop reads the weights from the numpy ``Model``
(``pull``), which evaluates, saves and hands weights to callbacks whichever backend trains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from specforge.graph.model import Batch, Model
from specforge.options.losses import Loss
from specforge.options.optimizers import Optimizer
from specforge.spec.model_io import model_outputs
from specforge.training.ema import MovingAverage, WeightAverage

if TYPE_CHECKING:
    from specforge.spec import Spec


class StepOptimizer(Protocol):
    """What the loop and callbacks read of a backend's optimizer: the learning rate (which they may change) and
    its schedule (None for a fixed rate)."""

    learning_rate: float

    @property
    def schedule(self) -> Any: ...


class Steps(Protocol):
    """A backend as the loop sees it."""

    @property
    def optimizer(self) -> StepOptimizer:
        """What callbacks read and change (``learning_rate``)."""

    def step(self, x: Any, labels: Any, targets: Any, loss: Any) -> tuple[Any, Any]:
        """One gradient step on a batch with ``loss`` (the spec's, or its weighted form for this batch):
        ``(loss value, outputs)``, the outputs as the model's forward gives them (probabilities for a softmax
        classifier), for the metrics.  A model of several inputs takes one array per input; one of several
        outputs takes lists of labels, targets and losses, one per output, and gives a list of loss values
        and of outputs."""

    def pull(self) -> None:
        """Copy the backend's current weights into the numpy model."""

    def push(self) -> None:
        """Copy the numpy model's weights into the backend (after a checkpoint or a callback set them)."""

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's (and the backend's random) state: arrays and JSON-able values."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""

    def manifest(self) -> dict[str, Any]:
        """What the run's manifest records about the backend (its name, device, versions)."""

    def weight_average(self, momentum: float, overwrite_frequency: int | None) -> MovingAverage:
        """Keras' moving average of the trainable weights (specforge.training.ema), moved where they train."""


class NumpySteps:
    """The numpy backend: ``Model.train_step`` with specforge's optimizer; the weights are the model's own."""

    def __init__(
        self, model: Model, spec: Spec, loss: Loss | list[Loss], optimizer: Optimizer, dropout_rng: np.random.Generator
    ):
        self.model, self.loss, self.optimizer, self.dropout_rng = model, loss, optimizer, dropout_rng
        self.loss_weights = [output.loss_weight for output in model_outputs(spec.config)]

    def step(self, x: Batch, labels: Batch, targets: Batch, loss: Loss | list[Loss]) -> tuple[Any, Batch]:
        return self.model.train_step(x, targets, loss, self.optimizer, self.dropout_rng, self.loss_weights)

    def pull(self) -> None:
        """The weights are the model's: nothing to copy."""

    def push(self) -> None:
        """The weights are the model's: nothing to copy."""

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)

    def manifest(self) -> dict[str, Any]:
        return {"backend": "numpy"}

    def weight_average(self, momentum: float, overwrite_frequency: int | None) -> MovingAverage:
        return WeightAverage(self.model.trainable_params(), momentum, overwrite_frequency)


#: ``(model, spec, loss, optimizer, dropout generator) -> Steps``
StepsFactory = Callable[[Model, "Spec", Any, Optimizer, np.random.Generator], Steps]
