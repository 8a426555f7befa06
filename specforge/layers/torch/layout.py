"""Where a specforge tensor's axes sit in the PyTorch backend.

specforge keeps the channels last, as Keras: an image batch is ``(N, H, W, C)``, a sequence batch
``(N, steps, C)``. PyTorch's layers take the channels first: ``(N, C, H, W)`` and ``(N, C, steps)``.
The PyTorch backend holds every value with its last axis moved to axis 1 (a flat ``(N, F)`` batch is the same in
both), so that each layer runs PyTorch's own kernel on the layout PyTorch users write.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def torch_order(rank: int) -> tuple[int, ...]:
    """The permutation taking a batched channels-last tensor of ``rank`` axes to channels-first."""
    return (0, rank - 1, *range(1, rank - 1)) if rank > 2 else tuple(range(rank))


def keras_order(rank: int) -> tuple[int, ...]:
    """The permutation taking a batched channels-first tensor of ``rank`` axes back to channels-last."""
    return (0, *range(2, rank), 1) if rank > 2 else tuple(range(rank))


def to_torch(x: np.ndarray) -> torch.Tensor:
    """A specforge batch as a contiguous channels-first tensor (a copy, never a view of ``x``)."""
    return torch.from_numpy(np.array(x.transpose(torch_order(x.ndim)), order="C"))


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """A channels-first tensor as a specforge batch."""
    return np.ascontiguousarray(x.detach().permute(keras_order(x.dim())).numpy())


def channels_first(x: torch.Tensor) -> torch.Tensor:
    """A channels-last tensor (a Reshape's result, a mask) moved into the channels-first layout."""
    return x.permute(torch_order(x.dim()))


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """A channels-first tensor in specforge's axis order (a view), for the layers that work on the element order."""
    return x.permute(keras_order(x.dim()))


def torch_dim(axis: int, rank: int) -> int:
    """The channels-first axis (batch axis 0) of the per-example axis ``axis`` (0-based, no batch) of a value of
    per-example rank ``rank``."""
    if rank == 1:
        return 1
    return 1 if axis == rank - 1 else axis + 2


def torch_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """A per-example specforge shape in the channels-first axis order."""
    shape = tuple(shape)
    return (shape[-1], *shape[:-1]) if len(shape) > 1 else shape
