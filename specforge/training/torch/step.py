"""A training step in PyTorch: the spec's loss and optimizer, what ``Model.train_step`` does with numpy."""

from __future__ import annotations

import numpy as np
import torch

from specforge.layers.torch.layout import to_torch
from specforge.options.losses import Loss
from specforge.options.optimizers import resolve
from specforge.options.schedules import create as create_schedule
from specforge.training.torch.losses import takes_classes, torch_loss
from specforge.training.torch.network import TorchNetwork
from specforge.training.torch.optimizers import clip_gradients, torch_optimizer


class TorchStep:
    """Steps of ``network`` on batches, with ``loss`` (taken on the logits where specforge fuses the final
    activation into it) and the optimizer a spec's ``compile.optimizer`` describes. ``module`` is what runs
    the forward pass: the network itself, or a wrapper of it (DistributedDataParallel)."""

    def __init__(self, network: TorchNetwork, loss: Loss, optimizer: str | dict, module: torch.nn.Module | None = None):
        self.network = network
        self.module = module or network
        fused = loss.fused_activation is not None and network.graph.final_activation == loss.fused_activation
        self.until = len(network.layers) - 1 if fused else None
        self.loss = torch_loss(loss, fused)
        self.fused = fused
        self.classes = takes_classes(loss, fused)
        options = resolve(optimizer)
        self.clipping = options["clipnorm"], options["clipvalue"]
        self.optimizer = torch_optimizer(optimizer, network.parameters())
        rate = options["learning_rate"]
        #: the learning-rate schedule, by steps taken (Keras' LearningRateSchedule); None for a fixed rate
        self.schedule = create_schedule(rate) if isinstance(rate, dict) else None
        self.steps = 0

    def targets(self, labels: np.ndarray, targets: np.ndarray) -> torch.Tensor:
        """What the loss takes for a batch whose class ``labels`` specforge's loss takes as ``targets``."""
        if self.classes:
            return torch.from_numpy(np.asarray(labels, dtype=np.int64))
        return to_torch(np.asarray(targets, dtype=np.float32))

    def step(
        self, x: torch.Tensor, y: torch.Tensor, scale: float = 1.0, weights: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One gradient step on a batch (channels-first, targets from ``targets``, each example weighted by
        ``weights`` when given): ``(loss, outputs)`` before it, the outputs being the loss's input (logits where
        the final activation is fused). The gradient is that of ``scale`` times the loss (a data-parallel
        worker's share of the whole batch)."""
        if not self.module.training:
            self.module.train()
        self.optimizer.zero_grad(set_to_none=True)
        outputs = self.module(x, self.until)
        value = self.loss(outputs, y, weights)
        (value * scale if scale != 1.0 else value).backward()
        clip_gradients(self.network.parameters(), *self.clipping)
        if self.schedule is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = self.schedule(self.steps)
        self.optimizer.step()
        self.steps += 1
        return value.detach(), outputs.detach()
