"""The ops layer: the computations the layers call, batch-level numpy and onnxruntime, no layer kinds.

A layer holds the math of its kind and calls what it computes from here, as Keras' layers call
``keras.ops``: ``ops.conv(x, kernel, window, bias, activation)`` returns the output and an opaque
record that the layer keeps as its cache and hands back to ``ops.conv_gradients``. The ops layer
chooses the algorithm (for a convolution: onnxruntime's NCHWc kernels, tap products or im2col) and
whether and how the batch is split across the cores; no layer module imports the modules below but
through this one.

Modules: ``window`` (a sliding window's geometry, padding, window views), ``convolution``
(convolutions and transposed convolutions on the engine that suits them), ``nchwc`` (onnxruntime's
NCHWc convolution kernels fed the current weights), ``taps`` (convolution as one product per kernel
tap), ``im2col`` (convolution as a copy and one GEMM), ``linear`` (a matrix product with bias and
activation, ``ops.dense``), ``elementwise`` (an activation function over a batch), ``pooling`` (windowed pooling
around a kind's reduction), ``epilogue`` (bias and fused activation on a fresh output), ``channels``
(per-channel arithmetic over whole examples), ``normalization`` (batch normalization's passes), ``kernels``
(whether the memory-bound passes run as compiled kernels, ``numba_kernels``, or on numpy), ``parallel`` (a batch's shards computed on every core at once), ``costs`` (whether and into how many
shards an operation splits its batch, from what it costs), ``machine`` (the machine constants the costs
are reckoned from, measured once and kept),
``scratch`` (per-thread buffers reused every batch), ``memory`` (keeping freed memory for the next
batch) and ``flat`` (arrays end to end in one buffer, updated at once). The training step's planner, which
fuses a layer with the activation after it, is ``specforge.graph.plan``, above the layers.

Each name here is loaded from its module the first time it is used (``__getattr__``): the layer kinds import this
facade, and ``specforge validate``, which needs their schemas and shape rules but none of their computations,
starts without the modules below (the thread pools, threadpoolctl, the convolution engines). The imports under
``TYPE_CHECKING`` are the same names for the type checker; a test keeps them, ``_EXPORTS`` and ``__all__`` the same.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from specforge.ops.channels import (
        blockwise,
        blockwise_sums,
        channel_totals,
        example_rows,
        position_sums,
        tiled,
    )
    from specforge.ops.convolution import (
        ConvRecord,
        ConvTransposeRecord,
        conv,
        conv_gradients,
        conv_transpose,
        conv_transpose_gradients,
        depthwise_conv,
    )
    from specforge.ops.costs import ACTIVATION_PASSES, Work, shards
    from specforge.ops.elementwise import activate, activate_gradient
    from specforge.ops.epilogue import activation_gradient
    from specforge.ops.linear import DenseRecord, dense, dense_gradients
    from specforge.ops.normalization import NormRecord, batch_norm, batch_norm_gradients
    from specforge.ops.parallel import run as in_parallel
    from specforge.ops.parallel import sum_in_order
    from specforge.ops.pooling import pool, pool_gradient
    from specforge.ops.scratch import scratch as scratch_buffer
    from specforge.ops.window import (
        Frame,
        Pads,
        Window,
        crop_padding,
        offset_slices,
        pad_image,
    )

#: Each name of the facade -> the ops module that defines it and its name there.
_EXPORTS: dict[str, tuple[str, str]] = {
    **{
        name: ("channels", name)
        for name in ("blockwise", "blockwise_sums", "channel_totals", "example_rows", "position_sums", "tiled")
    },
    **{
        name: ("convolution", name)
        for name in (
            "ConvRecord",
            "ConvTransposeRecord",
            "conv",
            "conv_gradients",
            "conv_transpose",
            "conv_transpose_gradients",
            "depthwise_conv",
        )
    },
    **{name: ("costs", name) for name in ("ACTIVATION_PASSES", "Work", "shards")},
    **{name: ("elementwise", name) for name in ("activate", "activate_gradient")},
    "activation_gradient": ("epilogue", "activation_gradient"),
    **{name: ("linear", name) for name in ("DenseRecord", "dense", "dense_gradients")},
    **{name: ("normalization", name) for name in ("NormRecord", "batch_norm", "batch_norm_gradients")},
    "in_parallel": ("parallel", "run"),
    "sum_in_order": ("parallel", "sum_in_order"),
    **{name: ("pooling", name) for name in ("pool", "pool_gradient")},
    "scratch_buffer": ("scratch", "scratch"),
    **{name: ("window", name) for name in ("Frame", "Pads", "Window", "crop_padding", "offset_slices", "pad_image")},
}

__all__ = [
    "ACTIVATION_PASSES",
    "ConvRecord",
    "ConvTransposeRecord",
    "DenseRecord",
    "Frame",
    "NormRecord",
    "Pads",
    "Window",
    "Work",
    "activate",
    "activate_gradient",
    "activation_gradient",
    "batch_norm",
    "batch_norm_gradients",
    "blockwise",
    "blockwise_sums",
    "channel_totals",
    "conv",
    "conv_gradients",
    "conv_transpose",
    "conv_transpose_gradients",
    "crop_padding",
    "dense",
    "dense_gradients",
    "depthwise_conv",
    "example_rows",
    "in_parallel",
    "offset_slices",
    "pad_image",
    "pool",
    "pool_gradient",
    "position_sums",
    "scratch_buffer",
    "shards",
    "sum_in_order",
    "tiled",
]


def __getattr__(name: str) -> Any:
    """``name`` from its module, imported now if it was not, and kept here so that later uses find it directly."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
