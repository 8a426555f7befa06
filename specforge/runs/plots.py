"""Pictures of runs, drawn with matplotlib: training curves, a confusion matrix, the examples a model gets wrong.

matplotlib (the ``plot`` extra) is imported inside the functions that draw, so that commands which never
draw start without it.  Figures are made with the object API on the Agg canvas (no pyplot state, no display)
and written atomically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from specforge.base.errors import DataError
from specforge.base.fileio import atomic_open
from specforge.runs.listing import Curves

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PLOT_EXTRA = "pip install 'specforge[plot]'"
#: Per-run colours (matplotlib's tab10), in the order the runs are given.
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise DataError(f"drawing needs matplotlib; install it with: {PLOT_EXTRA}", file="specforge") from None
    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png")
    return path


def plot_curves(runs: Sequence[Curves], path: str | Path) -> Path:
    """Loss and every metric per epoch, one panel each: training solid, validation dashed, one colour per run,
    each run's best epoch (by its monitored value) marked with a dotted line and a star."""
    return _save(curves_figure(runs), path)


def curves_figure(runs: Sequence[Curves]):
    """The figure ``plot_curves`` writes (a matplotlib ``Figure``)."""
    names = list(dict.fromkeys(name.removeprefix("val_") for run in runs for name in run.history))
    if not names:
        raise DataError("the runs have no history to plot; plot a run that trained at least one epoch")
    columns = min(len(names), 3)
    rows = math.ceil(len(names) / columns)
    figure = _figure(5.2 * columns, 3.8 * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis, name in zip(axes, names):
        for colour, run in zip(_colours(len(runs)), runs):
            for key, style, part in ((name, "-", "training"), (f"val_{name}", "--", "validation")):
                values = run.history.get(key)
                if values:
                    epochs = np.arange(1, len(values) + 1)
                    axis.plot(
                        epochs,
                        values,
                        style,
                        color=colour,
                        marker="o",
                        markersize=3,
                        linewidth=1.6,
                        label=f"{run.label} {part}" if len(runs) > 1 else part,
                    )
            best = run.best_epoch
            if best is not None:
                axis.axvline(best + 1, color=colour, linestyle=":", linewidth=1)
                shown = f"val_{name}" if f"val_{name}" in run.history else name
                if run.monitor in (name, f"val_{name}"):
                    shown = run.monitor
                axis.plot(
                    [best + 1],
                    [run.history[shown][best]],
                    "*",
                    color=colour,
                    markersize=13,
                    markeredgecolor="black",
                    label=f"best epoch {best + 1} ({run.monitor})" if axis is axes[0] else None,
                )
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.grid(True, alpha=0.3)
        axis.xaxis.get_major_locator().set_params(integer=True)
        if name == "loss" and all(
            v > 0 for run in runs for key in (name, f"val_{name}") for v in run.history.get(key, [])
        ):
            _log_scale(axis)
    for axis in axes[len(names) :]:
        axis.set_visible(False)
    axes[0].legend(fontsize="small")
    figure.suptitle("training curves: " + ", ".join(run.label for run in runs), fontsize="medium")
    return figure


def _log_scale(axis: Axes) -> None:
    """A logarithmic y axis labelled with plain numbers (0.5, 2, 3), where matplotlib's default writes 2×10⁰."""
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        """The ticks matplotlib's log formatter labels, written as plain numbers."""

        def __call__(self, value: float, position: int | None = None) -> str:
            return f"{value:.3g}" if super().__call__(value, position) else ""

    axis.set_yscale("log")
    axis.yaxis.set_major_formatter(PlainLogFormatter(labelOnlyBase=False))
    axis.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def _colours(count: int) -> list[str]:
    return [COLOURS[index % len(COLOURS)] for index in range(count)]


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str], path: str | Path, title: str) -> Path:
    """The confusion matrix (rows: true class, columns: predicted) with counts in the cells, shaded by the share
    of each true class, so that a small class's errors show as much as a large one's."""
    matrix = np.asarray(matrix)
    count = len(class_names)
    side = max(4.5, 0.55 * count + 2.0)
    figure = _figure(side + 1.0, side)
    axis = figure.add_subplot()
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="share of the true class")
    axis.set_xticks(
        range(count),
        labels=class_names,
        rotation=45 if max(map(len, class_names)) > 2 else 0,
        ha="right" if max(map(len, class_names)) > 2 else "center",
    )
    axis.set_yticks(range(count), labels=class_names)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    axis.set_title(title)
    if count <= 30:
        for row in range(count):
            for column in range(count):
                if matrix[row, column]:
                    axis.text(
                        column,
                        row,
                        str(int(matrix[row, column])),
                        ha="center",
                        va="center",
                        fontsize="small" if count <= 15 else "x-small",
                        color="white" if shares[row, column] > 0.5 else "black",
                    )
    return _save(figure, path)


def plot_examples(images: np.ndarray, captions: Sequence[tuple[str, str]], path: str | Path, title: str) -> Path:
    """A grid of images (raw, as stored), each captioned with a first line (e.g. the prediction, in red) and a
    second line (e.g. the true class)."""
    count = len(images)
    if count == 0:
        raise DataError("no examples to draw")
    columns = min(count, max(1, math.ceil(math.sqrt(count))))
    rows = math.ceil(count / columns)
    figure = _figure(1.7 * columns, 1.95 * rows + 0.4)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis, image, (first, second) in zip(axes, images, captions):
        pixels = np.asarray(image)
        if pixels.ndim == 3 and pixels.shape[-1] == 1:
            pixels = pixels[..., 0]
        grey = pixels.ndim == 2
        axis.imshow(pixels if grey else _to_unit(pixels), cmap="gray" if grey else None, interpolation="nearest")
        axis.set_title(f"{first}\n{second}", fontsize="small", color="#b00020", linespacing=1.3)
        axis.set_xticks([])
        axis.set_yticks([])
    for axis in axes[count:]:
        axis.set_visible(False)
    figure.suptitle(title, fontsize="medium")
    return _save(figure, path)


def _to_unit(pixels: np.ndarray) -> np.ndarray:
    """Colour images for imshow: uint8 as they are, other values scaled into [0, 1]."""
    if pixels.dtype == np.uint8:
        return pixels
    low, high = float(pixels.min()), float(pixels.max())
    return (pixels - low) / (high - low) if high > low else np.zeros_like(pixels, dtype=float)


__all__ = ["PLOT_EXTRA", "plot_confusion", "plot_curves", "plot_examples"]
