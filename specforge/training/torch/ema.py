"""Keras' moving average of the weights (specforge.training.ema) on the PyTorch backend: the averages are
tensors beside the network's parameters, on their device, moved after every step as the numpy backend moves
its own; validation, checkpoints and resume see them in specforge's layout, in the numpy model's order of
trainable weights, so a checkpoint's ``ema/`` arrays are the same whichever backend wrote them."""

from __future__ import annotations

from contextlib import AbstractContextManager

import numpy as np
import torch
from torch import nn

from specforge.graph.model import Model
from specforge.layers.torch.modules import LayerModule
from specforge.training.ema import swapped_in
from specforge.training.torch.network import TorchNetwork


class TorchWeightAverage:
    """The moving averages of ``network``'s trainable parameters (``model``: the numpy model the loop
    validates and saves, whose weights the backend pulls from the network)."""

    def __init__(self, network: TorchNetwork, model: Model, momentum: float, overwrite_frequency: int | None):
        self.model = model
        self.momentum = momentum
        self.overwrite_frequency = overwrite_frequency
        #: (module, name) of each trainable parameter, in the numpy model's order
        self.named: list[tuple[LayerModule, str]] = [
            (layer, name)
            for layer in network.nodes()
            for name in layer.param_names
            if isinstance(getattr(layer, name), nn.Parameter)
        ]
        self.weights = [getattr(layer, name) for layer, name in self.named]
        self.averages = [weight.detach().clone() for weight in self.weights]
        self.steps = 0

    @torch.no_grad()
    def update(self) -> None:
        """Move the averages after a training step; overwrite the weights when the frequency says."""
        momentum = self.momentum if self.steps else 0.0
        torch._foreach_mul_(self.averages, momentum)
        torch._foreach_add_(self.averages, torch._foreach_mul(self.weights, 1 - momentum))
        self.steps += 1
        if self.overwrite_frequency and self.steps % self.overwrite_frequency == 0:
            self.overwrite()

    @torch.no_grad()
    def overwrite(self) -> None:
        """Copy the averages into the network's weights (the loop then pulls them into the model)."""
        torch._foreach_copy_(self.weights, self.averages)

    def applied(self) -> AbstractContextManager[None]:
        """The averages in the numpy model's weights for the duration (validation, after the loop pulled the
        network's), its weights restored after."""
        return swapped_in(self.model.trainable_params(), self.arrays().values())

    def arrays(self) -> dict[str, np.ndarray]:
        """Copies of the averages in specforge's layout, keyed by their index, for a checkpoint (with ``steps``)."""
        return {
            str(index): np.ascontiguousarray(layer.to_specforge_param(name, average.cpu().numpy()))
            for index, ((layer, name), average) in enumerate(zip(self.named, self.averages))
        }

    @torch.no_grad()
    def load(self, steps: int, arrays: dict[str, np.ndarray]) -> None:
        """Continue from a checkpoint's ``steps`` and ``arrays()``."""
        self.steps = int(steps)
        for index, ((layer, name), average) in enumerate(zip(self.named, self.averages)):
            value = np.ascontiguousarray(layer.to_torch_param(name, arrays[str(index)]))
            average.copy_(torch.from_numpy(value))
