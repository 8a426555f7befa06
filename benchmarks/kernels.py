"""specforge's training step on the compiled kernels and on the numpy path, against PyTorch eager, in one run.

    pip install -e '.[bench]'
    python benchmarks/kernels.py                             # mobilenet, residual, mnist
    python benchmarks/kernels.py --specs lenet --rounds 5

Each spec's model is built as benchmarks/compare.py builds it (benchmarks/side_by_side.py: fresh weights, random
batches, the spec's batch size, PyTorch lowered from the same weights). The three measures take turns, round
after round (each round starting with the next one), on the same machine, and each figure is the best of its rounds; the ratios are taken within this
run (a shared machine's load moves absolute figures from run to run). The numpy path is the one
SPECFORGE_KERNELS=numpy forces (specforge.ops.kernels), switched in this process between rounds. Also printed:
how long this process took to load the compiled kernels (compiled on the first run, read from the cache after).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.side_by_side import PYTORCH, SPECFORGE, SideBySide, steps_per_second
from benchmarks.tables import Table
from specforge.ops import kernels

SPECS = ROOT / "specs"
COMPILED, NUMPY = "compiled", "numpy"


@contextmanager
def kernel_path(path: str) -> Iterator[None]:
    """specforge's ops on the ``compiled`` kernels or on ``numpy`` meanwhile."""
    saved = os.environ.get(kernels.CHOICE)
    os.environ[kernels.CHOICE] = "numpy" if path == NUMPY else "numba"
    kernels.reset()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(kernels.CHOICE, None)
        else:
            os.environ[kernels.CHOICE] = saved
        kernels.reset()


def rates(path: Path, warmup: int, seconds: float, rounds: int) -> dict[str, float]:
    """Training images per second of specforge on each path and of PyTorch, best of alternating rounds."""
    pair = SideBySide(path)
    batch_size = pair.batch_size
    batches = pair.batches(batch_size)
    ours, theirs = pair.step(SPECFORGE, batches), pair.step(PYTORCH, batches)

    def on(kernel: str) -> Callable[[], float]:
        def measure() -> float:
            with kernel_path(kernel):
                return batch_size * steps_per_second(ours, warmup, seconds)

        return measure

    measures = {
        COMPILED: on(COMPILED),
        NUMPY: on(NUMPY),
        PYTORCH: lambda: batch_size * steps_per_second(theirs, warmup, seconds),
    }
    best = dict.fromkeys(measures, 0.0)
    names = list(measures)
    for round_ in range(rounds):
        # each round starts with another measure: none always follows PyTorch, whose threads linger spinning
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            best[name] = max(best[name], measures[name]())
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="+", default=["mobilenet", "residual", "mnist"], metavar="SPEC")
    parser.add_argument("--seconds", type=float, default=1.5, help="timed seconds of each round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps before each round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    args = parser.parse_args()

    start = time.perf_counter()
    loaded = kernels.load(print)
    print(f"compiled kernels: {'loaded' if loaded else 'unavailable'} in {time.perf_counter() - start:.1f} s")
    table = Table(["spec", "compiled img/s", "numpy img/s", "PyTorch img/s", "compiled / numpy", "vs PyTorch"])
    for name in args.specs:
        measured = rates(SPECS / f"{name}.yaml", args.warmup, args.seconds, args.rounds)
        compiled, numpy, torch = measured[COMPILED], measured[NUMPY], measured[PYTORCH]
        table.add(
            [
                name,
                f"{compiled:,.0f}",
                f"{numpy:,.0f}",
                f"{torch:,.0f}",
                f"{compiled / numpy:.2f}x",
                f"{compiled / torch:.2f}x (numpy: {numpy / torch:.2f}x)",
            ]
        )
        print(f"measured {name}", file=sys.stderr)
    print(f"load average {' '.join(f'{value:.1f}' for value in os.getloadavg())} (1, 5, 15 minutes)\n")
    table.print(args.markdown)


if __name__ == "__main__":
    main()
