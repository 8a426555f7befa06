"""Training measures that need a process of their own, run by compare.py; prints one JSON object.

    python benchmarks/step_probe.py memory specs/mnist.yaml --framework pytorch --batch-size 32
    python benchmarks/step_probe.py rates specs/mnist.yaml --cores 1 --batch-sizes 8 32 128

``memory``: MiB a training step adds at its peak (benchmarks/side_by_side.py: step_memory_mib), one
framework per process so that neither reuses the other's freed memory.
``rates``: training images per second of specforge and PyTorch per batch size, alternating rounds (each
with the cores' worth of CPU other processes took during it: benchmarks/rounds.py), on
the first ``--cores`` cores this process may use: the affinity is set before numpy, BLAS or PyTorch
start, and specforge splits its batches over the cores it has (specforge/ops/parallel.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the thread pools of BLAS and OpenMP read these when they start
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("measure", choices=["memory", "rates"])
    parser.add_argument("spec")
    parser.add_argument("--framework", choices=["specforge", "pytorch"], default="specforge")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--cores", type=int, help="run on this many cores (default: all this process may use)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.cores:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cores])
    cores = len(os.sched_getaffinity(0))
    os.environ.update({variable: str(cores) for variable in THREAD_VARIABLES})

    sys.path.insert(0, str(ROOT))
    import torch

    from benchmarks.side_by_side import SideBySide, step_memory_mib, training_rates

    torch.set_num_threads(cores)
    pair = SideBySide(args.spec)
    if args.measure == "memory":
        batch_size = args.batch_size or pair.batch_size
        result = {"mib": step_memory_mib(pair.step(args.framework, pair.batches(batch_size)))}
    else:
        result = {"cores": cores, "rates": {}}
        for batch_size in args.batch_sizes:
            rates = training_rates(pair, batch_size, args.warmup, args.seconds, args.rounds)
            result["rates"][batch_size] = {
                framework: [measured.value, measured.neighbours] for framework, measured in rates.items()
            }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
