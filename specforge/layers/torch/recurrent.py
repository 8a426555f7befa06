"""The PyTorch modules of the recurrent kinds (specforge.layers.recurrent): SimpleRNN, LSTM and GRU, and
Bidirectional over one of them.

The parameters are held in PyTorch's layout (``weight_ih`` ``(gates * units, features)``, ``weight_hh``
``(gates * units, units)``, the gates in PyTorch's order: LSTM ``i, f, g, o`` as Keras', GRU ``r, z, n`` where
Keras has ``z, r, h``). A cell PyTorch has (``nn.RNN`` with tanh or relu, ``nn.LSTM`` with tanh and sigmoid,
``nn.GRU`` with tanh and sigmoid and Keras' ``reset_after``, which is PyTorch's formulation) runs on the function
those modules call (``torch.rnn_tanh``, ``torch.lstm``, ...) with these weights, which torch.onnx exports as
ONNX's recurrent ops; any other (other activations, GRU's reset before the recurrent product) runs its formula step
by step. The sequence arrives channels-first, ``(N, features, steps)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from specforge.layers.torch.layout import channels_first, channels_last
from specforge.layers.torch.modules import ACTIVATIONS, LayerModule, Node, Params


class Cell:
    """One recurrent layer's computation in PyTorch on weights in PyTorch's layout."""

    def __init__(self, layer: Any, features: int):
        """``layer``: the specforge.layers.recurrent.Recurrent it computes."""
        self.layer = layer
        self.config = config = layer.config
        self.activation = ACTIVATIONS[config["activation"]]
        self.gate_activation = ACTIVATIONS[config.get("recurrent_activation", "sigmoid")]
        self.generator: np.random.Generator | None = None
        #: PyTorch's fused function for this cell, or None: the formula step by step
        self.function = {
            "SimpleRNN": {"tanh": torch.rnn_tanh, "relu": torch.rnn_relu}.get(config["activation"]),
            "LSTM": torch.lstm
            if config["activation"] == "tanh" and config.get("recurrent_activation") == "sigmoid"
            else None,
            "GRU": torch.gru
            if config["activation"] == "tanh"
            and config.get("recurrent_activation") == "sigmoid"
            and config.get("reset_after", False)
            else None,
        }[layer.type]

    # -- parameters ---------------------------------------------------------------------------------
    def to_torch_param(self, name: str, value: np.ndarray) -> np.ndarray:
        """``kernel`` and ``recurrent_kernel`` become ``(gates * units, in)`` in PyTorch's gate order; the bias
        (both of GRU's rows) takes that order."""
        ordered = self.layer.gate_blocks(value, self.layer.torch_gates)
        return ordered if name == "bias" else ordered.T

    def to_specforge_param(self, name: str, value: np.ndarray) -> np.ndarray:
        inverse = tuple(int(i) for i in np.argsort(self.layer.torch_gates))
        return self.layer.gate_blocks(value if name == "bias" else value.T, inverse)

    # -- math -------------------------------------------------------------------------------------------
    def __call__(
        self, x: torch.Tensor, weights: dict[str, torch.Tensor], training: bool, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The layer's output for ``x`` ``(N, steps, features)``: ``(N, steps, units)`` or ``(N, units)``. With a
        ``mask`` of the steps (``(N, steps)``, true where a step counts) the formula runs step by step (PyTorch's
        fused kernels take none), the states carried over the others as specforge's numpy does."""
        rate = self.config["dropout"]
        if training and rate > 0:
            x = x * self._mask(x)[:, None]
        if self.config["go_backwards"]:
            x = x.flip(1)
            mask = None if mask is None else mask.flip(1)
        kernel, recurrent, bias = weights["kernel"], weights["recurrent_kernel"], weights.get("bias")
        if self.function is not None and mask is None:
            y = self._fused(self.function, x, kernel, recurrent, bias, training)
        else:
            y = self._steps(x, kernel, recurrent, bias, mask)
            if mask is not None and self.layer.zero_masked_outputs:
                y = torch.where(mask[:, :, None], y, 0.0)
        return y if self.config["return_sequences"] else y[:, -1]

    def _mask(self, x: torch.Tensor) -> torch.Tensor:
        """The input features' dropout mask: specforge's draw from the numpy generator ``numpy_masks`` gave, or
        PyTorch's own."""
        rate, shape = self.config["dropout"], (x.shape[0], x.shape[2])
        if self.generator is not None:
            kept = torch.from_numpy(self.generator.random(shape, dtype=np.float32) >= rate)
        else:
            kept = torch.rand(shape, device=x.device) >= rate
        return kept.to(x.device, x.dtype) * (1 / (1 - rate))

    def _fused(
        self,
        function: Callable[..., Any],
        x: torch.Tensor,
        kernel: torch.Tensor,
        recurrent: torch.Tensor,
        bias: torch.Tensor | None,
        training: bool,
    ) -> torch.Tensor:
        """PyTorch's own kernel of the cell (what ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` call, batch first, one
        layer, one direction) on these weights; Keras' one bias is PyTorch's input bias, with a recurrent bias
        of zeros, but for GRU's two."""
        weights = [kernel, recurrent]
        if bias is not None:
            two = bias.dim() == 2
            weights += [bias[0], bias[1]] if two else [bias, torch.zeros_like(bias)]
        zeros = x.new_zeros(1, x.shape[0], self.config["units"])
        state: Any = (zeros, zeros) if self.layer.type == "LSTM" else zeros
        return function(x, state, weights, bias is not None, 1, 0.0, training, False, True)[0]

    def _steps(
        self,
        x: torch.Tensor,
        kernel: torch.Tensor,
        recurrent: torch.Tensor,
        bias: torch.Tensor | None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The cell's formula, one step at a time, after one product for every step's input projection; where
        ``mask`` says a step does not count, the states before it are kept."""
        reset_after = self.layer.type == "GRU" and self.config["reset_after"]
        projected = x @ kernel.T
        recurrent_bias = None
        if bias is not None:
            projected = projected + (bias[0] if reset_after else bias)
            recurrent_bias = bias[1] if reset_after else None
        units = self.config["units"]
        h = x.new_zeros(x.shape[0], units)
        c = x.new_zeros(x.shape[0], units)
        outputs = []
        for t in range(x.shape[1]):
            p = projected[:, t]
            before = (h, c)
            if self.layer.type == "SimpleRNN":
                h = self.activation(p + h @ recurrent.T)
            elif self.layer.type == "LSTM":
                i, f, g, o = (p + h @ recurrent.T).chunk(4, dim=1)
                c = self.gate_activation(f) * c + self.gate_activation(i) * self.activation(g)
                h = self.gate_activation(o) * self.activation(c)
            else:
                p_r, p_z, p_n = p.chunk(3, dim=1)
                if reset_after:
                    inner = h @ recurrent.T
                    if recurrent_bias is not None:
                        inner = inner + recurrent_bias
                    i_r, i_z, i_n = inner.chunk(3, dim=1)
                    r, z = self.gate_activation(p_r + i_r), self.gate_activation(p_z + i_z)
                    n = self.activation(p_n + r * i_n)
                else:
                    i_r, i_z = (h @ recurrent[: 2 * units].T).chunk(2, dim=1)
                    r, z = self.gate_activation(p_r + i_r), self.gate_activation(p_z + i_z)
                    n = self.activation(p_n + (r * h) @ recurrent[2 * units :].T)
                h = z * h + (1 - z) * n
            if mask is not None:
                kept = mask[:, t, None]
                h, c = torch.where(kept, h, before[0]), torch.where(kept, c, before[1])
            outputs.append(h)
        return torch.stack(outputs, dim=1)


class Recurrent(LayerModule):
    """SimpleRNN, LSTM or GRU on a channels-first sequence."""

    def __init__(self, node: Node, params: Params):
        self.cell = Cell(node.layer, node.input_shape[-1])
        super().__init__(node, params)

    def to_torch_param(self, name, value):
        return self.cell.to_torch_param(name, value)

    def to_specforge_param(self, name, value):
        return self.cell.to_specforge_param(name, value)

    def numpy_masks(self, rng: np.random.Generator | None) -> None:
        """Draw the dropout masks as specforge does, from ``rng``; None: PyTorch's own again."""
        self.cell.generator = rng

    def forward(self, x, mask=None):
        weights = {name: getattr(self, name) for name in self.param_names}
        return channels_first(self.cell(channels_last(x), weights, self.training, mask))


class Bidirectional(LayerModule):
    """The forward and the backward layer (parameters ``forward_*`` and ``backward_*``), the backward one's
    sequence put back in step order, merged."""

    def __init__(self, node: Node, params: Params):
        features = node.input_shape[-1]
        self.cells = {prefix: Cell(layer, features) for prefix, layer in zip(node.layer.DIRECTIONS, node.layer.layers)}
        super().__init__(node, params)

    def _split(self, name: str) -> tuple[Cell, str]:
        prefix = next(prefix for prefix in self.cells if name.startswith(prefix))
        return self.cells[prefix], name[len(prefix) :]

    def to_torch_param(self, name, value):
        cell, inner = self._split(name)
        return cell.to_torch_param(inner, value)

    def to_specforge_param(self, name, value):
        cell, inner = self._split(name)
        return cell.to_specforge_param(inner, value)

    def numpy_masks(self, rng: np.random.Generator | None) -> None:
        for cell in self.cells.values():
            cell.generator = rng

    def forward(self, x, mask=None):
        sequence = channels_last(x)
        outputs = []
        for prefix, cell in self.cells.items():
            weights = {name[len(prefix) :]: getattr(self, name) for name in self.param_names if name.startswith(prefix)}
            outputs.append(cell(sequence, weights, self.training, mask))
        first, second = outputs
        if cell.config["return_sequences"]:
            second = second.flip(1)
        mode = self.config["merge_mode"]
        if mode == "concat":
            merged = torch.cat([first, second], dim=-1)
        elif mode == "sum":
            merged = first + second
        elif mode == "mul":
            merged = first * second
        else:
            merged = (first + second) * 0.5
        return channels_first(merged)
