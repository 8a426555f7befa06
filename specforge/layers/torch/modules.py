"""The PyTorch module of each specforge layer kind: the same math on channels-first tensors
(specforge.layers.torch.layout). A kind's ``to_torch`` builds its module from here.

Each module is built from a graph node and its parameters, holds them in PyTorch's layout (a Conv2D
kernel ``(KH, KW, in, out)`` becomes ``(out, in, KH, KW)``) and hands them back in specforge's
(``specforge_params``, ``specforge_gradients``): the weight files of a run are the same whichever
backend trained it, and a training step in PyTorch can be compared weight for weight with numpy's.
Windows (padding, strides) come from the specforge layer itself,
so ``same`` padding keeps TensorFlow's rule (the odd pixel after), which PyTorch's symmetric
``padding`` cannot say: such a layer pads explicitly first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from specforge.layers.torch.layout import channels_first, channels_last, torch_dim, torch_shape

#: A node's parameters in specforge's layout (specforge.layers.base.Params).
Params = dict[str, np.ndarray]
#: A per-example shape (specforge.layers.base.Shape).
Shape = tuple[int, ...]
#: A graph node (specforge.graph.dag.Node): its layer, input and output shapes. Not imported: the layers
#: import this module (their ``to_torch``), and the graph imports the layers.
Node = Any


class LayerModule(nn.Module):
    """One graph node in PyTorch: ``forward`` on channels-first tensors (a list of them for a merge).

    Trainable parameters are ``nn.Parameter``s, the layer's ``non_trainable`` state buffers; both are
    registered under specforge's parameter names (those below, for the type checker).
    """

    kernel: torch.Tensor
    depthwise_kernel: torch.Tensor
    pointwise_kernel: torch.Tensor
    gamma: torch.Tensor
    moving_mean: torch.Tensor
    moving_variance: torch.Tensor
    counts: torch.Tensor
    embeddings: torch.Tensor

    def __init__(self, node: Node, params: Params):
        super().__init__()
        self.kind = node.layer.type
        self.config = node.layer.config
        self.input_shape = node.input_shape
        self.param_names = list(params)
        for name, value in params.items():
            tensor = torch.from_numpy(np.array(self.to_torch_param(name, value)))
            if name in node.layer.non_trainable:
                self.register_buffer(name, tensor)
            else:
                self.register_parameter(name, nn.Parameter(tensor))

    def to_torch_param(self, name: str, value: np.ndarray) -> np.ndarray:
        """Parameter ``name`` in PyTorch's layout (the same as specforge's unless a kind says otherwise)."""
        return value

    def to_specforge_param(self, name: str, value: np.ndarray) -> np.ndarray:
        """The inverse of ``to_torch_param``."""
        return value

    def specforge_params(self) -> Params:
        """Copies of the parameters in specforge's layout."""
        return {
            name: np.ascontiguousarray(self.to_specforge_param(name, getattr(self, name).detach().cpu().numpy()))
            for name in self.param_names
        }

    def specforge_gradients(self) -> Params:
        """The trainable parameters' gradients (after ``backward``) in specforge's layout."""
        return {
            name: np.ascontiguousarray(self.to_specforge_param(name, getattr(self, name).grad.cpu().numpy()))
            for name in self.param_names
            if isinstance(getattr(self, name), nn.Parameter)
        }


# -- windows --------------------------------------------------------------------------------------------
class Windowed:
    """A window's options over the last ``dims`` axes (1: a sequence's steps, 2: an image), and the
    padding PyTorch's own ``padding`` can take (symmetric, at most half the window) or an explicit pad."""

    def __init__(self, window: Any, dims: int, pad_limit: bool = False):
        """``window``: the layer's specforge.ops.im2col.Window."""
        take = slice(2 - dims, 2)
        self.kernel = tuple(window.kernel[take])
        self.strides = tuple(window.strides[take])
        self.dilation = tuple(window.dilation[take])
        pads = window.pads[take]
        symmetric = all(before == after for before, after in pads)
        fits = not pad_limit or all(before <= k // 2 for (before, _), k in zip(pads, self.kernel))
        self.padding = tuple(before for before, _ in pads) if symmetric and fits else (0,) * dims
        #: F.pad's order: the last axis first
        self.explicit = () if symmetric and fits else tuple(side for pair in reversed(pads) for side in pair)

    def pad(self, x: torch.Tensor, value: float = 0.0) -> torch.Tensor:
        return F.pad(x, self.explicit, value=value) if self.explicit else x


_CONVOLUTIONS = {1: F.conv1d, 2: F.conv2d}
_MAX_POOLS = {1: F.max_pool1d, 2: F.max_pool2d}
_AVERAGE_POOLS = {1: F.avg_pool1d, 2: F.avg_pool2d}


def _conv_kernel(value: np.ndarray) -> np.ndarray:
    """``(..., in, out)`` -> ``(out, in, ...)``."""
    return value.transpose(value.ndim - 1, value.ndim - 2, *range(value.ndim - 2))


def _from_conv_kernel(value: np.ndarray) -> np.ndarray:
    """``(out, in, ...)`` -> ``(..., in, out)``."""
    return value.transpose(*range(2, value.ndim), 1, 0)


def _depthwise_kernel(value: np.ndarray) -> np.ndarray:
    """``(KH, KW, C, M)`` -> ``(C * M, 1, KH, KW)``: output channel ``c * M + m``, one group per channel."""
    kh, kw, channels, multiplier = value.shape
    return value.reshape(kh, kw, channels * multiplier).transpose(2, 0, 1)[:, None]


def _from_depthwise_kernel(value: np.ndarray, channels: int) -> np.ndarray:
    outputs, _, kh, kw = value.shape
    return value[:, 0].transpose(1, 2, 0).reshape(kh, kw, channels, outputs // channels)


# -- convolutions -----------------------------------------------------------------------------------------
class Convolution(LayerModule):
    def __init__(self, node: Node, params: Params):
        super().__init__(node, params)
        layer = node.layer
        self.dims = 1 if self.kind == "Conv1D" else 2
        window = layer.window(node.input_shape[0]) if self.dims == 1 else layer.window(node.input_shape)
        self.window = Windowed(window, self.dims)
        self.groups = node.input_shape[-1] if self.kind == "DepthwiseConv2D" else 1

    def to_torch_param(self, name, value):
        if name != "kernel":
            return value
        return _depthwise_kernel(value) if self.kind == "DepthwiseConv2D" else _conv_kernel(value)

    def to_specforge_param(self, name, value):
        if name != "kernel":
            return value
        if self.kind == "DepthwiseConv2D":
            return _from_depthwise_kernel(value, self.input_shape[-1])
        return _from_conv_kernel(value)

    def forward(self, x):
        window = self.window
        return _CONVOLUTIONS[self.dims](
            window.pad(x),
            self.kernel,
            getattr(self, "bias", None),
            window.strides,
            window.padding,
            window.dilation,
            self.groups,
        )


class SeparableConvolution(LayerModule):
    """The depthwise convolution, then the pointwise 1x1 convolution with the bias."""

    def __init__(self, node: Node, params: Params):
        super().__init__(node, params)
        self.window = Windowed(node.layer.depthwise.window(node.input_shape), 2)
        self.channels = node.input_shape[-1]

    def to_torch_param(self, name, value):
        if name == "depthwise_kernel":
            return _depthwise_kernel(value)
        return _conv_kernel(value) if name == "pointwise_kernel" else value

    def to_specforge_param(self, name, value):
        if name == "depthwise_kernel":
            return _from_depthwise_kernel(value, self.channels)
        return _from_conv_kernel(value) if name == "pointwise_kernel" else value

    def forward(self, x):
        window = self.window
        middle = F.conv2d(
            window.pad(x), self.depthwise_kernel, None, window.strides, window.padding, window.dilation, self.channels
        )
        return F.conv2d(middle, self.pointwise_kernel, getattr(self, "bias", None))


class TransposedConvolution(LayerModule):
    """PyTorch's transposed convolution onto the full image, cut to specforge's frame (zeros where the
    frame reaches past the image), then the bias."""

    def __init__(self, node: Node, params: Params):
        super().__init__(node, params)
        frame = node.layer.frame(node.input_shape)
        self.strides, self.dilation = frame.window.strides, frame.window.dilation
        self.rows, self.columns = (
            slice(before, before + length) for before, length in zip(frame.before, frame.overlap)
        )
        (bottom, right) = (size - length for size, length in zip(frame.size, frame.overlap))
        self.extra = (0, right, 0, bottom)

    def to_torch_param(self, name, value):
        # (KH, KW, filters, in) -> (in, filters, KH, KW)
        return value.transpose(3, 2, 0, 1) if name == "kernel" else value

    def to_specforge_param(self, name, value):
        return value.transpose(2, 3, 1, 0) if name == "kernel" else value

    def forward(self, x):
        full = F.conv_transpose2d(x, self.kernel, None, self.strides, dilation=self.dilation)
        y = full[:, :, self.rows, self.columns]
        if any(self.extra):
            y = F.pad(y, self.extra)
        bias = getattr(self, "bias", None)
        return y if bias is None else y + bias[:, None, None]


class Dense(LayerModule):
    """``F.linear`` on the last axis of the specforge layout (a sequence's or an image's channels); after a
    Flatten that keeps PyTorch's channels-first order (``flattened_from`` the image shape), the kernel's rows
    are put in that order instead of reordering the activations."""

    def __init__(self, node: Node, params: Params, flattened_from: Shape | None = None):
        self.flattened_from = flattened_from
        super().__init__(node, params)

    def to_torch_param(self, name, value):
        if name != "kernel":
            return value
        if self.flattened_from is not None:
            shape = self.flattened_from
            rank = len(shape)
            value = value.reshape(*shape, -1).transpose(rank - 1, *range(rank - 1), rank).reshape(value.shape)
        return value.T

    def to_specforge_param(self, name, value):
        if name != "kernel":
            return value
        value = value.T
        if self.flattened_from is not None:
            shape = torch_shape(self.flattened_from)
            rank = len(shape)
            value = value.reshape(*shape, -1).transpose(*range(1, rank), 0, rank).reshape(value.shape)
        return value

    def forward(self, x):
        if x.dim() == 2:
            return F.linear(x, self.kernel, getattr(self, "bias", None))
        return channels_first(F.linear(channels_last(x), self.kernel, getattr(self, "bias", None)))


class Embedding(LayerModule):
    """``F.embedding`` on the ids in specforge's order; the vectors' axis becomes the twin's channel axis."""

    def forward(self, x):
        return channels_first(F.embedding(channels_last(x), self.embeddings))


# -- pooling --------------------------------------------------------------------------------------------
class MaxPooling(LayerModule):
    def __init__(self, node: Node, params: Params):
        super().__init__(node, params)
        self.dims = 1 if self.kind.endswith("1D") else 2
        window = node.layer.window(node.input_shape[0]) if self.dims == 1 else node.layer.window(node.input_shape)
        self.window = Windowed(window, self.dims, pad_limit=True)

    def forward(self, x):
        window = self.window
        return _MAX_POOLS[self.dims](window.pad(x, -float("inf")), window.kernel, window.strides, window.padding)


class AveragePooling(LayerModule):
    """A window averages its real pixels only (``count_include_pad=False``); an explicit pad divides by the
    count of real pixels under each window."""

    def __init__(self, node: Node, params: Params):
        super().__init__(node, params)
        self.dims = 1 if self.kind.endswith("1D") else 2
        window = node.layer.window(node.input_shape[0]) if self.dims == 1 else node.layer.window(node.input_shape)
        self.window = Windowed(window, self.dims, pad_limit=True)
        counts = None
        if self.window.explicit:
            ones = torch.ones(1, 1, *torch_shape(node.input_shape)[1:])
            counts = self._pool(self.window.pad(ones)) * float(np.prod(self.window.kernel))
        self.register_buffer("counts", counts, persistent=False)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        window = self.window
        return _AVERAGE_POOLS[self.dims](x, window.kernel, window.strides, window.padding, count_include_pad=False)

    def forward(self, x):
        if self.counts is None:
            return self._pool(x)
        return self._pool(self.window.pad(x)) * float(np.prod(self.window.kernel)) / self.counts


class GlobalPooling(LayerModule):
    """A mean or maximum over every axis after the channels; the maximum's gradient goes to the first
    maximal pixel (``max`` with its index, not ``amax``, which shares it among ties)."""

    def forward(self, x, mask=None):
        """``mask`` (GlobalAveragePooling1D's, ``(N, steps)``): the mean of the steps that count."""
        flat = x.flatten(2)
        if mask is not None:
            kept = mask.to(flat.dtype)[:, None]
            y = (flat * (kept / kept.sum(dim=2, keepdim=True).clamp(min=1))).sum(dim=2)
        else:
            y = flat.mean(dim=2) if "Average" in self.kind else flat.max(dim=2).values
        return y.reshape(*y.shape, *[1] * (x.dim() - 2)) if self.config["keepdims"] else y


# -- normalization --------------------------------------------------------------------------------------
class BatchNormalization(LayerModule):
    """``F.batch_norm`` with Keras' semantics: ``momentum`` is the old statistics' weight (PyTorch's is
    the new batch's), and the moving variance moves with the batch's biased variance, as the
    normalization itself uses (PyTorch's moves with the unbiased one: rescaled here, per channel)."""

    def forward(self, x):
        momentum, epsilon = 1 - self.config["momentum"], self.config["epsilon"]
        gamma, beta = getattr(self, "gamma", None), getattr(self, "beta", None)
        if not self.training:
            return F.batch_norm(x, self.moving_mean, self.moving_variance, gamma, beta, False, 0.0, epsilon)
        moved_variance = torch.zeros_like(self.moving_variance)
        y = F.batch_norm(x, self.moving_mean, moved_variance, gamma, beta, True, momentum, epsilon)
        count = x.numel() // x.shape[1]
        with torch.no_grad():
            self.moving_variance.mul_(1 - momentum).add_(moved_variance, alpha=(count - 1) / count)
        return y


class LayerNormalization(LayerModule):
    """The normalization over the layer's axes, wherever they sit in the channels-first layout."""

    def __init__(self, node: Node, params: Params):
        super().__init__(node, params)
        layer, rank = node.layer, len(node.input_shape)
        self.dims = tuple(torch_dim(axis - 1, rank) for axis in layer.axes(node.input_shape))
        #: the parameters' shape broadcast over a specforge batch
        self.broadcast = layer.broadcast_shape(node.input_shape)

    def forward(self, x):
        centred = x - x.mean(dim=self.dims, keepdim=True)
        x_hat = centred * torch.rsqrt((centred * centred).mean(dim=self.dims, keepdim=True) + self.config["epsilon"])
        for name, operation in (("gamma", torch.mul), ("beta", torch.add)):
            if name in self.param_names:
                x_hat = operation(x_hat, channels_first(getattr(self, name).reshape(self.broadcast)))
        return x_hat


# -- elementwise ----------------------------------------------------------------------------------------
def _relu(max_value: float | None, negative_slope: float, threshold: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Keras' ReLU: the plain kinds with PyTorch's own functions, the rest with ``where``."""
    if negative_slope == 0 and threshold == 0:
        return F.relu if max_value is None else (lambda x: F.hardtanh(x, 0.0, max_value))
    if threshold == 0 and max_value is None:
        return lambda x: F.leaky_relu(x, negative_slope)

    def rectify(x: torch.Tensor) -> torch.Tensor:
        y = torch.where(x > threshold, x, negative_slope * (x - threshold))
        return y if max_value is None else torch.clamp(y, max=max_value)

    return rectify


#: activation name -> function on channels-first tensors (softmax over the channels: axis 1)
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda x: x,
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda x: F.softmax(x, dim=1),
    "elu": F.elu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
    "gelu": F.gelu,
    "swish": F.silu,
    "selu": F.selu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "hard_sigmoid": lambda x: F.relu6(x + 3) / 6,
    "mish": F.mish,
}


class Activation(LayerModule):
    def __init__(self, node: Node, params: Params):
        super().__init__(node, params)
        config = self.config
        if self.kind == "ReLU":
            self.function = _relu(config["max_value"], config["negative_slope"], config["threshold"])
        elif self.kind == "LeakyReLU":
            self.function = lambda x: F.leaky_relu(x, config["negative_slope"])
        else:
            self.function = ACTIVATIONS["softmax" if self.kind == "Softmax" else config["activation"]]

    def forward(self, x):
        return self.function(x)


def numpy_generator(seed: int | None, rng: np.random.Generator | None) -> np.random.Generator | None:
    """The generator a specforge layer with ``seed`` draws its masks from when the run's is ``rng``: a fresh one of
    its own seed (as a fresh specforge layer has), else ``rng``; None (PyTorch's dropout) stays None."""
    return np.random.default_rng(seed) if rng is not None and seed is not None else rng


class Dropout(LayerModule):
    """PyTorch's dropout (whole channels for SpatialDropout2D), or, for comparing with specforge, the masks
    specforge would draw from a numpy generator (``numpy_masks``)."""

    def __init__(self, node: Node, params: Params):
        super().__init__(node, params)
        self.mask_shape = node.layer.mask_shape
        self.generator: np.random.Generator | None = None

    def numpy_masks(self, rng: np.random.Generator | None) -> None:
        """Draw the masks as specforge's Dropout does: from ``rng``, or from the layer's own ``seed`` (a fresh
        generator, as a fresh specforge layer has); None: PyTorch's dropout again."""
        self.generator = numpy_generator(self.config["seed"], rng)

    def forward(self, x):
        rate = self.config["rate"]
        if not self.training or rate == 0:
            return x
        if self.generator is None:
            return (F.dropout2d if self.kind == "SpatialDropout2D" else F.dropout)(x, rate, True)
        shape = self.mask_shape(tuple(channels_last(x).shape))
        drawn = self.generator.random(shape, dtype=np.float32) >= rate
        return x * channels_first(torch.from_numpy(drawn).to(x.device, x.dtype) * (1 / (1 - rate)))


class _SpecforgeTransform(torch.autograd.Function):
    """A training batch through specforge's own augmentation (its draws taken from ``rng``), with its backward:
    the random transforms have no PyTorch counterpart drawing the same numbers."""

    @staticmethod
    def forward(ctx, x, layer, rng):
        y, cache = layer.transform(to_specforge(x), rng)
        ctx.layer, ctx.cache = layer, cache
        return channels_first(torch.from_numpy(np.ascontiguousarray(y))).to(x.device)

    @staticmethod
    def backward(ctx, dy):
        dx = ctx.layer.transform_backward(ctx.cache, to_specforge(dy))
        return channels_first(torch.from_numpy(np.ascontiguousarray(dx))).to(dy.device), None, None


def to_specforge(x: torch.Tensor) -> np.ndarray:
    return channels_last(x).detach().cpu().numpy()


class Augmentation(LayerModule):
    """Training: specforge's transform, drawing from the generator ``numpy_masks`` gives (a fresh one without);
    inference: the identity, or RandomCrop's centred window resized by PyTorch's half-pixel bilinear."""

    def __init__(self, node: Node, params: Params):
        super().__init__(node, params)
        self.layer = node.layer
        self.generator: np.random.Generator | None = None

    def numpy_masks(self, rng: np.random.Generator | None) -> None:
        self.generator = rng

    def forward(self, x):
        if self.training:
            return _SpecforgeTransform.apply(x, self.layer, self.generator or np.random.default_rng())
        if self.kind != "RandomCrop":
            return x
        top, left, rows, columns = self.layer.window(*x.shape[2:])
        return F.interpolate(
            x[:, :, top : top + rows, left : left + columns],
            size=(self.config["height"], self.config["width"]),
            mode="bilinear",
            align_corners=False,
        )


# -- shapes ---------------------------------------------------------------------------------------------
class Flatten(LayerModule):
    """specforge's (channels-last) element order; ``keeps_torch_order``: PyTorch's own flatten, for a Flatten
    whose users are all Dense layers that take their rows in that order instead."""

    def __init__(self, node: Node, params: Params, keeps_torch_order: bool = False):
        super().__init__(node, params)
        self.keeps_torch_order = keeps_torch_order

    def forward(self, x):
        return (x if self.keeps_torch_order else channels_last(x)).flatten(1)


class Reshape(LayerModule):
    def forward(self, x):
        target = self.config["target_shape"]
        return channels_first(channels_last(x).reshape(len(x), *target))


class ZeroPadding(LayerModule):
    def __init__(self, node: Node, params: Params):
        super().__init__(node, params)
        self.pads = node.layer.pads

    def forward(self, x):
        (top, bottom), (left, right) = self.pads
        return F.pad(x, (left, right, top, bottom))


class Cropping(LayerModule):
    def __init__(self, node: Node, params: Params):
        super().__init__(node, params)
        self.crops = node.layer.crops

    def forward(self, x):
        (top, bottom), (left, right) = self.crops
        return x[:, :, top : x.shape[2] - bottom, left : x.shape[3] - right]


class UpSampling(LayerModule):
    """Nearest (pixel ``o`` copies ``o // factor``) or bilinear with half-pixel centres: PyTorch's
    ``interpolate`` without ``align_corners``."""

    def forward(self, x):
        size = tuple(n * factor for n, factor in zip(x.shape[2:], _pair(self.config["size"])))
        if self.config["interpolation"] == "nearest":
            return F.interpolate(x, size=size, mode="nearest")
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


# -- sequences --------------------------------------------------------------------------------------------
class PositionTable(LayerModule):
    """A position embedding's or encoding's table ``(steps, features)``, the same for every example: the
    learned ``embeddings``' first rows, or the fixed encoding; the input gives only the batch size."""

    fixed: torch.Tensor | None

    def __init__(self, node: Node, params: Params):
        super().__init__(node, params)
        self.steps, features = node.input_shape
        fixed = None if params else torch.from_numpy(node.layer.table({}, self.steps, features))
        self.register_buffer("fixed", fixed, persistent=False)

    def forward(self, x):
        table = self.embeddings[: self.steps] if self.fixed is None else self.fixed.to(x.dtype)
        return channels_first(table.expand(x.shape[0], self.steps, -1))


class _ZeroGradient(torch.autograd.Function):
    """The identity whose gradient is exactly zero: for a parameter the output does not depend on in exact
    arithmetic (attention's key bias), as specforge computes its gradient."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, dy):
        return torch.zeros_like(dy)


class MultiHeadAttention(LayerModule):
    """The attention of specforge.layers.attention on channels-last views of the query, value and key; dropout
    draws PyTorch's masks, or for comparing with specforge numpy's (``numpy_masks``)."""

    causal: torch.Tensor | None
    output_kernel: torch.Tensor

    def __init__(self, node: Node, params: Params):
        super().__init__(node, params)
        layer = node.layer
        self.heads, self.key_dim, self.value_dim = layer.heads, layer.key_dim, layer.value_dim
        self.roles = layer.positions(len(node.input_shape))
        shapes = layer.roles(node.input_shape)
        bias = layer.mask_bias(shapes["query"][0], shapes["value"][0])
        self.register_buffer("causal", None if bias is None else torch.from_numpy(bias), persistent=False)
        self.masked_score = layer.masked_score
        self.generator: np.random.Generator | None = None

    def numpy_masks(self, rng: np.random.Generator | None) -> None:
        """Draw the dropout masks as specforge does: from ``rng``, or from the layer's own ``seed`` (a fresh
        generator, as a fresh specforge layer has); None: PyTorch's dropout again."""
        self.generator = numpy_generator(self.config["seed"], rng)

    def _mask_bias(self, masks: Sequence[torch.Tensor | None], query_steps: int, value_steps: int) -> torch.Tensor:
        """The scores' bias ``(N, 1, T, S)`` of the masks of the inputs' steps and the causal mask, as
        specforge.layers.attention's ``mask_bias``."""
        query, value, key = (masks[position] for position in self.roles)
        allowed = torch.ones((1, query_steps, value_steps), dtype=torch.bool, device=self.output_kernel.device)
        if query is not None:
            allowed = allowed & query[:, :, None]
        for each in (value, key):
            if each is not None:
                allowed = allowed & each[:, None, :]
        if self.causal is not None:
            allowed = allowed & (self.causal == 0)
        return torch.where(allowed, 0.0, self.masked_score)[:, None]

    def _project(self, x: torch.Tensor, role: str) -> torch.Tensor:
        kernel = getattr(self, f"{role}_kernel")
        features, heads, dim = kernel.shape
        y = x @ kernel.reshape(features, heads * dim)
        bias = getattr(self, f"{role}_bias", None)
        if bias is not None:
            y = y + (_ZeroGradient.apply(bias) if role == "key" else bias).reshape(-1)
        return y.reshape(-1, x.shape[1], heads, dim).transpose(1, 2)

    def forward(self, xs, mask=None):
        query, value, key = (channels_last(xs[position]) for position in self.roles)
        q, k, v = self._project(query, "query"), self._project(key, "key"), self._project(value, "value")
        scores = (q @ k.transpose(2, 3)) * (1 / float(np.sqrt(self.key_dim)))
        if mask is not None:
            scores = scores + self._mask_bias(mask, q.shape[2], k.shape[2]).to(scores.dtype)
        elif self.causal is not None:
            scores = scores + self.causal.to(scores.dtype)
        attention = torch.softmax(scores, dim=-1)
        rate = self.config["dropout"]
        if self.training and rate > 0:
            if self.generator is None:
                attention = F.dropout(attention, rate, True)
            else:
                kept = self.generator.random(tuple(attention.shape), dtype=np.float32) >= rate
                attention = attention * (torch.from_numpy(kept).to(attention.device, attention.dtype) / (1 - rate))
        merged = (attention @ v).transpose(1, 2).reshape(-1, q.shape[2], self.heads * self.value_dim)
        y = merged @ self.output_kernel.reshape(self.heads * self.value_dim, -1)
        bias = getattr(self, "output_bias", None)
        return channels_first(y if bias is None else y + bias)


# -- merges ---------------------------------------------------------------------------------------------
def _extreme(pick_later: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
    """Maximum or Minimum over the inputs, a tie going to the earlier input (as specforge)."""

    def combine(xs: Sequence[torch.Tensor]) -> torch.Tensor:
        result = xs[0]
        for x in xs[1:]:
            result = torch.where(pick_later(x, result), x, result)
        return result

    return combine


def _product(xs: Sequence[torch.Tensor]) -> torch.Tensor:
    result = xs[0]
    for x in xs[1:]:
        result = result * x
    return result


_MERGES: dict[str, Callable[[Sequence[torch.Tensor]], torch.Tensor]] = {
    "Add": lambda xs: sum(xs[1:], xs[0]),
    "Subtract": lambda xs: xs[0] - xs[1],
    "Multiply": _product,
    "Average": lambda xs: sum(xs[1:], xs[0]) / len(xs),
    "Maximum": _extreme(torch.gt),
    "Minimum": _extreme(torch.lt),
}


class Merge(LayerModule):
    def __init__(self, node: Node, params: Params):
        super().__init__(node, params)
        if self.kind == "Concatenate":
            rank = len(node.input_shape[0])
            dim = torch_dim(node.layer.axis(rank), rank)
            self.combine = lambda xs: torch.cat(list(xs), dim=dim)
        else:
            self.combine = _MERGES[self.kind]

    def forward(self, xs):
        return self.combine(xs)
