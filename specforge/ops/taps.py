"""Convolution as one matrix product per kernel tap over the flattened padded image.

Flatten the padded input ``(N, Hp, Wp, C)`` to rows ``(N*Hp*Wp, C)``. The window of the output
pixel that starts at row ``p`` reads rows ``p + a*dh*Wp + b*dw`` for its taps ``(a, b)``, and for
one tap the rows of all outputs are one contiguous slice: a view, so no im2col copy. Every row
of the padded grid is computed; the rows whose window wraps past the right or bottom edge (or
into the next image) are cropped away, and in the backward the output gradient sits on the
grid with zeros there, so they contribute nothing. That costs ``Hp*Wp / (OH*OW)`` times the
useful FLOPs (1.17 for 3x3 on 26x26), but each product has the input channels as its inner
dimension and a small operand that stays in cache, where BLAS runs near its peak, whereas one
long-and-thin im2col product is bound by copying (see benchmarks/profile_step.py). With few input
channels the products get too thin, so the forward and the kernel gradient take im2col there.

The input gradient is the same sum run backwards: rows ``q - offset`` of the gradient grid
(which has ``offset`` zero rows in front) times the transposed taps. With strides the gradient
sits at every stride-th grid pixel, so the input gradient of any stride takes this form.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from specforge.ops.epilogue import ActivationFunction, add_bias_and_activate
from specforge.ops.scratch import scratch
from specforge.ops.window import Window

#: Fewest input channels for which the forward and kernel gradient take the tap products.
MIN_CHANNELS = 32
#: Most grid rows that one block of tap products covers (about 16 images of 26x26 pixels).
BLOCK_ROWS = 12288
#: ... in the kernel gradient, whose products are long and thin (channels x rows x channels): blocks of
#: about 2,000 rows keep a block's input and gradient rows in a core's L2 cache across the taps (on one
#: core, 4.8 against 5.4 ms for 16 images of the seed model's second convolution).
KERNEL_GRADIENT_ROWS = 2048


@dataclass(frozen=True)
class TapPlan:
    """The flat-row geometry of a window over a padded ``(N, Hp, Wp)`` grid."""

    grid: tuple[int, int, int]
    out_size: tuple[int, int]
    strides: tuple[int, int]
    offsets: tuple[int, ...]

    @classmethod
    def of(cls, window: Window, padded_shape: tuple[int, ...]) -> TapPlan:
        n, height, width = padded_shape[:3]
        (kh, kw), (dh, dw), (eh, ew) = window.kernel, window.dilation, window.effective
        (sh, sw) = window.strides
        out_size = ((height - eh) // sh + 1, (width - ew) // sw + 1)
        offsets = tuple(a * dh * width + b * dw for a in range(kh) for b in range(kw))
        return cls((n, height, width), out_size, window.strides, offsets)

    @property
    def grid_rows(self) -> int:
        n, height, width = self.grid
        return n * height * width

    @property
    def lead(self) -> int:
        """The largest tap offset: zero rows in front of the gradient grid."""
        return self.offsets[-1]

    @property
    def rows(self) -> int:
        """Grid rows whose window ends inside the flat input; every output pixel is among them."""
        return self.grid_rows - self.lead

    def outputs(self, rows: np.ndarray) -> np.ndarray:
        """The output pixels ``(N, OH, OW, C)`` of grid-shaped ``rows`` ``(grid_rows, C)``, as a view."""
        (out_h, out_w), (sh, sw) = self.out_size, self.strides
        return rows.reshape(*self.grid, -1)[:, : (out_h - 1) * sh + 1 : sh, : (out_w - 1) * sw + 1 : sw]


def takes_forward(window: Window, groups: int, channels: int) -> bool:
    """Whether the forward (and kernel gradient) take the tap products rather than im2col."""
    return groups == 1 and window.strides == (1, 1) and channels >= MIN_CHANNELS


def forward(
    xp: np.ndarray,
    kernel: np.ndarray,
    plan: TapPlan,
    out: np.ndarray,
    bias: np.ndarray | None = None,
    activation: ActivationFunction | None = None,
) -> None:
    """Fill ``out`` (grid_rows, Cout) so that ``plan.outputs(out)`` is the stride-1 convolution of the
    padded, contiguous ``xp`` (N, Hp, Wp, Cin) with ``kernel`` (KH, KW, Cin, Cout), plus ``bias``, through
    ``activation`` (each applied to a block of rows while it is in cache)."""
    kh, kw, cin, cout = kernel.shape
    _sum_of_taps(
        out[: plan.rows],
        xp.reshape(-1, cin),
        kernel.reshape(kh * kw, cin, cout),
        plan.offsets,
        lambda block: add_bias_and_activate(block, bias, activation),
    )


def gradient_grid(dy: np.ndarray, plan: TapPlan, dtype: np.dtype) -> np.ndarray:
    """``dy`` (N, OH, OW, C) on the grid, after ``plan.lead`` zero rows: a per-thread scratch buffer
    whose other rows stay zero because only the output pixels are ever written."""
    grid = scratch(("tap gradient grid", plan), (plan.lead + plan.grid_rows, dy.shape[-1]), dtype, fill=0.0)
    plan.outputs(grid[plan.lead :])[...] = dy
    return grid


def kernel_gradient(xp: np.ndarray, grid: np.ndarray, plan: TapPlan, kernel_shape: tuple[int, ...]) -> np.ndarray:
    """The kernel gradient: for each tap, the input rows it reads times the gradient grid."""
    cin = kernel_shape[2]
    source, dy_rows = xp.reshape(-1, cin), grid[plan.lead : plan.lead + plan.rows]
    dkernel = np.empty((len(plan.offsets), cin, kernel_shape[3]), grid.dtype)
    term = scratch("tap kernel term", dkernel.shape[1:], dkernel.dtype)
    for block, (start, stop) in enumerate(_blocks(plan.rows, KERNEL_GRADIENT_ROWS)):
        for tap, offset in enumerate(plan.offsets):
            product = np.matmul(
                source[offset + start : offset + stop].T, dy_rows[start:stop], out=term if block else dkernel[tap]
            )
            if block:
                dkernel[tap] += product
    return dkernel.reshape(kernel_shape)


def input_gradient(grid: np.ndarray, kernel: np.ndarray, plan: TapPlan, out: np.ndarray) -> None:
    """Fill ``out`` (grid_rows, Cin) with the gradient of the padded input."""
    kh, kw, cin, cout = kernel.shape
    taps_t = kernel.reshape(kh * kw, cin, cout).transpose(0, 2, 1)
    _sum_of_taps(out, grid, taps_t, tuple(plan.lead - offset for offset in plan.offsets))


def _sum_of_taps(
    out: np.ndarray,
    source: np.ndarray,
    taps: np.ndarray,
    starts: tuple[int, ...],
    finish: Callable[[np.ndarray], None] | None = None,
) -> None:
    """``out = sum over t of source[starts[t]:starts[t] + len(out)] @ taps[t]``, then ``finish`` on each block."""
    blocks = _blocks(len(out), BLOCK_ROWS)
    term = scratch("tap term", (max(stop - start for start, stop in blocks), out.shape[1]), out.dtype)
    for start, stop in blocks:
        block, block_term = out[start:stop], term[: stop - start]
        np.matmul(source[starts[0] + start : starts[0] + stop], taps[0], out=block)
        for first, tap in zip(starts[1:], taps[1:]):
            np.matmul(source[first + start : first + stop], tap, out=block_term)
            block += block_term
        if finish is not None:
            finish(block)


def _blocks(rows: int, most: int) -> list[tuple[int, int]]:
    """``rows`` cut into equal blocks of at most ``most``, so that the operands of a block's products
    stay in cache from one tap to the next."""
    count = -(-rows // most)
    bounds = [rows * index // count for index in range(count + 1)]
    return list(itertools.pairwise(bounds))
