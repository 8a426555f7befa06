"""The training options a run's spec asks for beyond the loss and the optimizer: example weights (Keras'
``class_weight`` in ``fit.class_weight``, ``sample_weight`` from a table column in ``data.sample_weight``,
multiplied when both are set) and the moving average of the weights (``compile.optimizer.use_ema``)."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np

from specforge.base.errors import DataError
from specforge.data.splits import Split
from specforge.options.class_weights import class_weight_vector
from specforge.options.losses import Loss
from specforge.training.ema import MovingAverage
from specforge.training.steps import Steps


class Weighting:
    """Each training batch's example weights: its labels' class weights times its examples' own weights."""

    def __init__(self, loss: Loss, class_weights: np.ndarray | None, example_weights: np.ndarray | None):
        #: a copy of the run's loss whose ``weights`` each batch sets (the run's own loss, which validation and
        #: evaluation use, stays unweighted)
        self.loss = replace(loss)
        self.class_weights = class_weights
        self.example_weights = example_weights
        self._batches: list[np.ndarray] = []

    def start_epoch(self, examples: int, batch_size: int, shuffle: bool, rng: np.random.Generator) -> None:
        """Note which examples each batch of the epoch holds, before ``iterate_batches`` draws its order from
        ``rng``: it draws ``rng.permutation(examples)`` and nothing else, so a copy of ``rng`` draws the same."""
        if self.example_weights is None:
            return
        order = copy.deepcopy(rng).permutation(examples) if shuffle else np.arange(examples)
        self._batches = [order[start : start + batch_size] for start in range(0, examples, batch_size)]

    def loss_for(self, step: int, labels: np.ndarray) -> Loss:
        """The loss of batch ``step`` (from 1) with class ``labels``: weighted by ``batch``."""
        self.loss.weights = self.batch(step, labels)
        return self.loss

    def batch(self, step: int, labels: np.ndarray) -> np.ndarray | None:
        """The weights of batch ``step`` (from 1) with class ``labels``."""
        weights = None if self.class_weights is None else self.class_weights[labels]
        if self.example_weights is not None:
            own = self.example_weights[self._batches[step - 1]]
            weights = own if weights is None else weights * own
        return weights


def weighting(config: dict, loss: Loss, train: Split, units: int) -> Weighting | None:
    """How a resolved spec ``config`` weights its training examples (``loss`` on ``train``, a model of ``units``
    outputs), or None when neither ``fit.class_weight`` nor ``data.sample_weight`` is set."""
    setting = config["fit"].get("class_weight")
    column = config["data"].get("sample_weight")
    if setting is None and column is None:
        return None
    class_weights = None
    if setting is not None:
        names = config["data"].get("class_names") or ()
        class_weights = class_weight_vector(setting, np.asarray(train.labels), max(units, 2), names)
    return Weighting(loss, class_weights, None if column is None else column_weights(train, column))


def column_weights(split: Split, column: str) -> np.ndarray:
    """The weights in table column ``column`` of ``split``; DataError (at data.sample_weight) for a column the
    table lacks or a cell that is not a number >= 0."""
    where = "data.sample_weight"
    table = split.table
    if table is None:
        raise DataError("data.sample_weight names a column, and the data has no table", path=where)
    try:
        table.column(column)
    except DataError as error:
        raise DataError(error.problems[0].message, path=where) from None
    weights = table.numbers(column, where)
    bad = np.flatnonzero(~(weights >= 0))
    if len(bad):
        raise DataError(
            f"{table.row_word} {table.rows[bad[0]]}, column {column!r}: the weight {weights[bad[0]]} is "
            "not a number >= 0; every example needs a weight",
            file=table.file,
            path=where,
        )
    return weights


def weight_average(optimizer: str | dict, steps: Steps) -> MovingAverage | None:
    """The moving average ``compile.optimizer`` asks for (``use_ema``) of the weights ``steps`` trains, or None."""
    if isinstance(optimizer, str) or not optimizer.get("use_ema"):
        return None
    return steps.weight_average(optimizer["ema_momentum"], optimizer["ema_overwrite_frequency"])
