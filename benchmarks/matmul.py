"""This machine's single-precision matrix-multiply rate (GFLOP/s), the yardstick of the throughput figures.

python benchmarks/matmul.py            # prints the rate for a few sizes
from benchmarks.matmul import gemm_gflops
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def gemm_gflops(size: int = 2048, repeats: int = 5, dtype: type = np.float32) -> float:
    """Best rate over ``repeats`` products of two ``size`` x ``size`` matrices (2 n^3 FLOPs each), in GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=dtype)
    b = rng.standard_normal((size, size), dtype=dtype)
    out = np.empty((size, size), dtype=dtype)
    np.matmul(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for size in args.sizes:
        print(f"float32 GEMM {size}x{size}: {gemm_gflops(size, args.repeats):8.1f} GFLOP/s")


if __name__ == "__main__":
    main()
