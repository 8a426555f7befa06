"""A training step of the twin: the spec's loss and optimizer, what ``Model.train_step`` does in specforge."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.torch_twin.layout import to_torch
from benchmarks.torch_twin.losses import takes_classes, twin_loss
from benchmarks.torch_twin.network import TorchTwin
from benchmarks.torch_twin.optim import clip_gradients, twin_optimizer
from specforge.options.losses import Loss
from specforge.options.optimizers import resolve
from specforge.options.schedules import create as create_schedule


class TwinTrainer:
    """Steps of ``twin`` on batches, with ``loss`` (taken on the logits where specforge fuses the final
    activation into it) and the optimizer a spec's ``compile.optimizer`` describes."""

    def __init__(self, twin: TorchTwin, loss: Loss, optimizer: str | dict):
        self.twin = twin
        fused = loss.fused_activation is not None and twin.graph.final_activation == loss.fused_activation
        self.until = len(twin.layers) - 1 if fused else None
        self.loss = twin_loss(loss, fused)
        self.classes = takes_classes(loss, fused)
        options = resolve(optimizer)
        self.clipping = options["clipnorm"], options["clipvalue"]
        self.optimizer = twin_optimizer(optimizer, twin.parameters())
        rate = options["learning_rate"]
        self.schedule = create_schedule(rate) if isinstance(rate, dict) else None
        self.steps = 0

    def targets(self, labels: np.ndarray, targets: np.ndarray) -> torch.Tensor:
        """What the loss takes for a batch whose class ``labels`` specforge's loss takes as ``targets``."""
        if self.classes:
            return torch.from_numpy(np.asarray(labels, dtype=np.int64))
        return to_torch(np.asarray(targets, dtype=np.float32))

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One gradient step on a batch (twin layout, targets from ``targets``): ``(loss, outputs)`` before
        it, the outputs being the loss's input (logits where the final activation is fused)."""
        if not self.twin.training:
            self.twin.train()
        self.optimizer.zero_grad(set_to_none=True)
        outputs = self.twin(x, self.until)
        value = self.loss(outputs, y)
        value.backward()
        clip_gradients(self.twin.parameters(), *self.clipping)
        if self.schedule is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = self.schedule(self.steps)
        self.optimizer.step()
        self.steps += 1
        return value.detach(), outputs.detach()
