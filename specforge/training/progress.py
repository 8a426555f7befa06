"""Keras-style training progress on a text stream.

On a terminal each epoch shows a bar updated in place with the running loss and
metrics and the time left, then the epoch's line with the validation values::

    Epoch 1/3
    1875/1875 [==============================] - 41s 22ms/step - loss: 0.2345 - accuracy: 0.9456 - val_loss: ...

When the stream is not a terminal (a log file, a pipe) each epoch writes its first line, a
progress line after its first batch (so that a log shows within seconds that training runs, and
how long an epoch will take) and then every ``LOG_INTERVAL`` seconds, and its finished line.
``quiet`` writes one line per epoch with its time and values.

On a terminal every line fits its width, read again at each redraw: a line longer than the
terminal would wrap, and each redraw would then leave a new line behind.  The bar shrinks
first, then goes; the running bar then drops values from the end, while the epoch's line
(the record) keeps every value and continues on the next line.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Mapping
from typing import Protocol, TextIO

BAR_WIDTH = 30
#: The narrowest bar worth drawing; below it the line goes without one.
MIN_BAR_WIDTH = 10
#: Seconds between two redraws of the bar on a terminal.
REDRAW_INTERVAL = 0.1
#: Seconds between two progress lines on a stream that is not a terminal.
LOG_INTERVAL = 15.0


class Progress(Protocol):
    """What the training loop reports; ``logs`` map names (loss, accuracy, val_loss, ...) to values."""

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        """Epoch ``epoch`` (from 0) of ``epochs`` starts, with ``steps`` batches."""

    def batch_end(self, step: int, logs: Mapping[str, float]) -> None:
        """Batch ``step`` (from 1) is done; ``logs`` hold the running means over the epoch so far."""

    def epoch_end(self, logs: Mapping[str, float]) -> None:
        """The epoch is done; ``logs`` hold its training and validation values."""

    def message(self, text: str) -> None:
        """A line about the training (early stop, restored weights, ...)."""


class Both:
    """Reports to several receivers (the console and a log), in order."""

    def __init__(self, *receivers: Progress):
        self.receivers = receivers

    def epoch_start(self, epoch, epochs, steps):
        for receiver in self.receivers:
            receiver.epoch_start(epoch, epochs, steps)

    def batch_end(self, step, logs):
        for receiver in self.receivers:
            receiver.batch_end(step, logs)

    def epoch_end(self, logs):
        for receiver in self.receivers:
            receiver.epoch_end(logs)

    def message(self, text):
        for receiver in self.receivers:
            receiver.message(text)


class Silent:
    """Reports nothing."""

    def epoch_start(self, epoch, epochs, steps):
        pass

    def batch_end(self, step, logs):
        pass

    def epoch_end(self, logs):
        pass

    def message(self, text):
        pass


def format_value(value: float) -> str:
    """Keras' number format: 4 decimals, or scientific notation below 1e-3."""
    return f"{value:.4f}" if value == 0 or abs(value) >= 1e-3 else f"{value:.4e}"


def log_fields(logs: Mapping[str, float]) -> list[str]:
    """`` - name: value`` for each value, in order."""
    return [f" - {name}: {format_value(value)}" for name, value in logs.items()]


def format_logs(logs: Mapping[str, float]) -> str:
    return "".join(log_fields(logs))


def format_duration(seconds: float) -> str:
    """``41s``, ``2:05`` or ``1:02:05``, as Keras' ETA."""
    seconds = round(float(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if seconds >= 60:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds}s"


def format_step_time(seconds: float) -> str:
    """Time per step: ``1s/step``, ``22ms/step`` or ``850us/step``."""
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def bar(step: int, steps: int, width: int = BAR_WIDTH) -> str:
    """``[=====>........]`` for ``step`` of ``steps``, ``width`` characters between the brackets."""
    done = width * step // steps if steps else width
    arrow = "=" * max(done - 1, 0) + (">" if step < steps else "=") if done else ""
    return f"[{arrow}{'.' * (width - len(arrow))}]"


def fit_lines(
    counter: str,
    step: int,
    steps: int,
    status: str,
    logs: Mapping[str, float],
    columns: int | None,
    *,
    keep_values: bool,
) -> list[str]:
    """``COUNTER [BAR] - STATUS - name: value ...`` in lines shorter than ``columns`` (any length when None):
    the bar shrinks to MIN_BAR_WIDTH, then goes; then values are dropped from the end or, with
    ``keep_values``, continue on further lines indented under the counter."""
    fields = log_fields(logs)
    room = BAR_WIDTH if columns is None else columns - 1 - len(f"{counter} [] - {status}") - sum(map(len, fields))
    if room >= MIN_BAR_WIDTH:
        return [f"{counter} {bar(step, steps, min(room, BAR_WIDTH))} - {status}{''.join(fields)}"]
    assert columns is not None, "without columns the bar always fits"
    lines = [f"{counter} - {status}"[: columns - 1]]
    for field in fields:
        if len(lines[-1]) + len(field) < columns:
            lines[-1] += field
        elif keep_values:
            lines.append(" " * len(counter) + field)
        else:
            break
    return lines


class ConsoleProgress:
    """Keras' progress bar (verbose=1) on ``stream``; with ``quiet`` one line per epoch (verbose=2)."""

    def __init__(
        self, stream: TextIO | None = None, *, quiet: bool = False, clock=time.perf_counter, columns: int | None = None
    ):
        """``columns``: the terminal's width (default: read from the stream's terminal at each redraw)."""
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.live = not quiet and _is_terminal(self.stream)
        self.columns = columns
        self.clock = clock
        self._steps = 0
        self._step = 0
        self._started = 0.0
        self._drawn_at = 0.0
        self._epoch_label = ""

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        self._steps, self._step = steps, 0
        self._started = self._drawn_at = self.clock()
        self._epoch_label = f"Epoch {epoch + 1}/{epochs}"
        if not self.quiet:
            self._write(self._epoch_label + "\n")

    def batch_end(self, step: int, logs: Mapping[str, float]) -> None:
        self._step = step
        if self.quiet:
            return
        now = self.clock()
        if self.live:
            if step < self._steps and now - self._drawn_at < REDRAW_INTERVAL:
                return
        elif step == self._steps or (step > 1 and now - self._drawn_at < LOG_INTERVAL):
            return
        self._drawn_at = now
        elapsed = now - self._started
        eta = elapsed / step * (self._steps - step) if step else 0.0
        counter = f"{step:>{len(str(self._steps))}}/{self._steps}"
        status = f"ETA: {format_duration(eta)}"
        if self.live:
            (line,) = fit_lines(counter, step, self._steps, status, logs, self._columns(), keep_values=False)
            self._write(f"\r{line}\x1b[K")
        else:
            self._write("\n".join(fit_lines(counter, step, self._steps, status, logs, None, keep_values=True)) + "\n")

    def epoch_end(self, logs: Mapping[str, float]) -> None:
        elapsed = self.clock() - self._started
        timing = f"{format_duration(elapsed)} {format_step_time(elapsed / max(self._step, 1))}"
        if self.quiet:
            self._write(f"{self._epoch_label} - {timing}{format_logs(logs)}\n")
            return
        columns = self._columns() if self.live else None
        lines = fit_lines(
            f"{self._steps}/{self._steps}", self._steps, self._steps, timing, logs, columns, keep_values=True
        )
        end = "\x1b[K\n" if self.live else "\n"
        self._write(("\r" if self.live else "") + end.join(lines) + end)

    def message(self, text: str) -> None:
        self._write(text + "\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _columns(self) -> int:
        return self.columns or _terminal_columns(self.stream)


def _terminal_columns(stream: TextIO) -> int:
    """The width of the terminal ``stream`` writes to, else the process's ($COLUMNS, or 80): also where the
    terminal reports a width of 0, as a pseudo-terminal nobody sized does (``script``, some CI runners)."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        columns = 0
    return columns or shutil.get_terminal_size().columns


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
