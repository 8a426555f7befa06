"""The training options a run's spec asks for beyond the loss and the optimizer: class weights
(``fit.class_weight``) and the moving average of the weights (``compile.optimizer.use_ema``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from specforge.options.losses import Loss
from specforge.training.ema import WeightAverage
from specforge.training.weighting import WeightedLoss, class_weight_vector

if TYPE_CHECKING:
    from specforge.training.loop import _Setup


def training_loss(setup: "_Setup") -> tuple[Loss | WeightedLoss, np.ndarray | None]:
    """``(the loss training steps take, one weight per class or None)``: the spec's loss, weighted per example
    when ``fit.class_weight`` is set."""
    setting = setup.fit.get("class_weight")
    if setting is None:
        return setup.loss, None
    classes = max(setup.graph.output_shape[-1], 2)
    train = setup.dataset.train
    names = setup.spec.config["data"].get("class_names") or ()
    return WeightedLoss(setup.loss), class_weight_vector(setting, np.asarray(train.labels), classes, names)


def weight_average(optimizer: str | dict, weights: list[np.ndarray]) -> WeightAverage | None:
    """The moving average ``compile.optimizer`` asks for (``use_ema``), or None."""
    if isinstance(optimizer, str) or not optimizer.get("use_ema"):
        return None
    return WeightAverage(weights, optimizer["ema_momentum"], optimizer["ema_overwrite_frequency"])
