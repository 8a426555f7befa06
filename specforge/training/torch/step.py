"""A training step in PyTorch: the spec's loss and optimizer, what ``Model.train_step`` does with numpy."""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from specforge.graph.model import Batch, fused_outputs
from specforge.layers.torch.layout import to_torch
from specforge.options.losses import Loss
from specforge.options.optimizers import resolve
from specforge.options.schedules import create as create_schedule
from specforge.training.torch.losses import takes_classes, torch_loss
from specforge.training.torch.network import TorchNetwork
from specforge.training.torch.optimizers import clip_gradients, torch_optimizer


class TorchStep:
    """Steps of ``network`` on batches, with ``loss`` (one per model output for a model of several, each taken on
    the logits where specforge fuses its output's activation into it, weighted by ``loss_weights`` in the total
    the gradient is taken of, Keras' loss_weights) and the optimizer a spec's ``compile.optimizer`` describes.
    ``module`` is what runs the forward pass: the network itself, or a wrapper of it (DistributedDataParallel).
    A model of one output takes and gives tensors, one of several lists of them, one per output."""

    def __init__(
        self,
        network: TorchNetwork,
        loss: Loss | Sequence[Loss],
        optimizer: str | dict,
        module: torch.nn.Module | None = None,
        loss_weights: Sequence[float] | None = None,
    ):
        self.network = network
        self.module = module or network
        self.several = not isinstance(loss, Loss)
        each = [loss] if isinstance(loss, Loss) else list(loss)
        #: the output nodes the forward pass skips, their losses taking the logits
        self.skipped = tuple(sorted(fused_outputs(network.graph, each)))
        #: whether each output's loss takes its logits
        self.fused_each = [node in self.skipped for node in network.graph.output_nodes]
        self.losses = [torch_loss(item, fused) for item, fused in zip(each, self.fused_each)]
        self.classes_each = [takes_classes(item, fused) for item, fused in zip(each, self.fused_each)]
        self.loss_weights = list(loss_weights) if loss_weights is not None else [1.0] * len(each)
        #: the first output's, what a model of one output has
        self.loss, self.fused = self.losses[0], self.fused_each[0]
        options = resolve(optimizer)
        self.clipping = options["clipnorm"], options["clipvalue"]
        self.optimizer = torch_optimizer(optimizer, network.parameters())
        rate = options["learning_rate"]
        #: the learning-rate schedule, by steps taken (Keras' LearningRateSchedule); None for a fixed rate
        self.schedule = create_schedule(rate) if isinstance(rate, dict) else None
        self.steps = 0

    def targets(self, labels: Batch, targets: Batch) -> torch.Tensor | list[torch.Tensor]:
        """What the losses take for a batch whose class ``labels`` specforge's losses take as ``targets``."""
        if isinstance(labels, list) and isinstance(targets, list):
            return [_target(*each) for each in zip(self.classes_each, labels, targets, strict=True)]
        assert not isinstance(labels, list) and not isinstance(targets, list), "one output's labels and targets"
        return _target(self.classes_each[0], labels, targets)

    def step(self, x: Any, y: Any, scale: float = 1.0, weights: torch.Tensor | None = None) -> tuple[Any, Any]:
        """One gradient step on a batch (channels-first, a tensor per model input; targets from ``targets``, each
        example weighted by ``weights`` when given): ``(loss, outputs)`` before it, per output for a model of
        several, the outputs being the losses' inputs (logits where the final activation is fused). The gradient
        is that of ``scale`` times the weighted total of the losses (a data-parallel worker's share of the whole
        batch)."""
        if not self.module.training:
            self.module.train()
        self.optimizer.zero_grad(set_to_none=True)
        outputs = self.module(x, self.skipped)
        outs, ys = (outputs, y) if self.several else ([outputs], [y])
        values = [loss(out, target, weights) for loss, out, target in zip(self.losses, outs, ys, strict=True)]
        weighted = [value if weight == 1 else weight * value for weight, value in zip(self.loss_weights, values)]
        total = functools.reduce(operator.add, weighted)
        (total * scale if scale != 1.0 else total).backward()
        clip_gradients(self.network.parameters(), *self.clipping)
        if self.schedule is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = self.schedule(self.steps)
        self.optimizer.step()
        self.steps += 1
        if self.several:
            return [value.detach() for value in values], [out.detach() for out in outs]
        return values[0].detach(), outs[0].detach()


def _target(classes: bool, labels: np.ndarray, targets: np.ndarray) -> torch.Tensor:
    """The class indices (``classes``) or the targets one output's loss takes."""
    if classes:
        return torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return to_torch(np.asarray(targets, dtype=np.float32))
