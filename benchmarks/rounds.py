"""Measuring two things side by side on a shared machine: alternating rounds, each figure the best of its
rounds, and the rounds that other processes disturbed told apart.

Other processes' CPU time on this process's cores is read from /proc/stat during each round. A round in
which they took more than ``QUIET_LIMIT`` cores' worth is run again once they calm down (up to
``RETRIES`` times): PyTorch's OpenMP threads wait for each other spinning, so a single busy neighbour on
a 2-core machine can cut its rate many times over, far more than specforge's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: cores' worth of CPU time other processes may take during a round that counts as undisturbed
QUIET_LIMIT = 0.2
RETRIES = 3
#: seconds to wait for the other processes to calm down before a retry
PATIENCE = 60.0


def _busy_seconds(cpus: set[int]) -> float:
    """CPU seconds the cores ``cpus`` have spent busy since boot, time stolen by the hypervisor included."""
    total = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu" and int(name[3:]) in cpus:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
            total += user + nice + system + irq + softirq + steal
    return total / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system


class Neighbours:
    """Cores' worth of CPU time that other processes used on this process's cores since ``start()``."""

    def __init__(self):
        self.cpus = os.sched_getaffinity(0)
        self.start()

    def start(self) -> None:
        self._wall, self._busy, self._own = time.perf_counter(), _busy_seconds(self.cpus), _own_seconds()

    def cores(self) -> float:
        wall = time.perf_counter() - self._wall
        others = _busy_seconds(self.cpus) - self._busy - (_own_seconds() - self._own)
        return max(others, 0.0) / wall if wall > 0 else 0.0


def wait_for_quiet(patience: float = PATIENCE, window: float = 1.0) -> None:
    """Wait, at most ``patience`` seconds, for a ``window`` in which other processes stay under QUIET_LIMIT."""
    neighbours, deadline = Neighbours(), time.perf_counter() + patience
    while time.perf_counter() < deadline:
        neighbours.start()
        time.sleep(window)
        if neighbours.cores() < QUIET_LIMIT:
            return


@dataclass(frozen=True)
class Measured:
    """The best result of a measure and the other processes' cores during the round that gave it."""

    value: float
    neighbours: float

    @property
    def disturbed(self) -> bool:
        return self.neighbours > QUIET_LIMIT

    def shown(self, format_spec: str = ",.0f") -> str:
        """The value, marked ``*`` when other processes disturbed its round."""
        return format(self.value, format_spec) + ("*" if self.disturbed else "")


def alternate(measures: dict[str, Callable[[], float]], rounds: int) -> dict[str, Measured]:
    """The best of ``rounds`` results of each measure, taken in turns so that both see the same machine; a
    disturbed round is run again, and an undisturbed result always beats a disturbed one."""
    neighbours = Neighbours()
    best: dict[str, Measured | None] = dict.fromkeys(measures)
    for _ in range(rounds):
        for name, measure in measures.items():
            for attempt in range(RETRIES + 1):
                neighbours.start()
                result = Measured(measure(), neighbours.cores())
                if best[name] is None or (result.disturbed, -result.value) < (best[name].disturbed, -best[name].value):
                    best[name] = result
                if not result.disturbed or attempt == RETRIES:
                    break
                wait_for_quiet()
    return best
