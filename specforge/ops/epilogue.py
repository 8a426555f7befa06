"""The epilogue of a layer's product: bias and a fused activation applied in place to its fresh
output, and the activation's gradient at the start of the backward (see specforge.graph.plan).

A bias followed by a plain ReLU is one pass of the compiled kernel when the kernels are in use
(:mod:`specforge.ops.kernels`): the same two float32 operations per element, so the same bits."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from specforge.ops import costs, kernels
from specforge.ops.scratch import scratch


class ActivationFunction(Protocol):
    """What the ops layer needs of an activation (``specforge.options.activations`` defines them): its name, its
    forward and its gradient written into a given array."""

    @property
    def name(self) -> str: ...

    def forward_into(self, z: np.ndarray, out: np.ndarray) -> None: ...

    def backward_into(self, z: np.ndarray, y: np.ndarray, dy: np.ndarray, out: np.ndarray) -> None: ...


@runtime_checkable
class Rectifier(ActivationFunction, Protocol):
    """An activation that may be plain max(x, 0) (a ReLU without cap, slope or threshold), which an engine
    can fuse as its own Relu."""

    @property
    def is_plain(self) -> bool: ...


def add_bias_and_activate(out: np.ndarray, bias: np.ndarray | None, activation: ActivationFunction | None) -> None:
    """``out += bias``, then the fused activation in place, on a block of a layer's fresh output."""
    if (
        bias is not None
        and isinstance(activation, Rectifier)
        and activation.is_plain
        and out.size
        and bias.size == out.shape[-1]
        and kernels.takes(out, bias)
    ):
        compiled = kernels.active()
        assert compiled is not None
        compiled.add_bias_and_rectify(out.reshape(-1, bias.shape[-1]), bias.reshape(-1))
        return
    if bias is not None:
        out += bias
    if activation is not None:
        activation.forward_into(out, out)


def epilogue_work(size: int, activation: ActivationFunction | None, itemsize: int) -> costs.Work:
    """What :func:`add_bias_and_activate` costs over each example's ``size`` outputs."""
    return costs.Work.passes(size, 1 + (costs.ACTIVATION_PASSES if activation else 0), itemsize, arrays=1)


def activation_gradient(activation: ActivationFunction | None, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """The gradient before the fused ``activation`` from its output ``y`` and the gradient ``dy`` after it:
    ``dy`` itself without one, else this thread's scratch array (valid until its next call)."""
    if activation is None:
        return dy
    dz = scratch("activation gradient", dy.shape, np.result_type(y, dy))
    activation.backward_into(y, y, dy, dz)
    return dz
