"""Cold start of `specforge validate specs/mnist.yaml`, beside a bare `python -c pass` on the same machine.

Prints the minimum and median wall time of each over several runs, and which heavy modules the
validate path imported (it must import neither onnx nor onnxruntime).

    python benchmarks/validate_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = (
    "import sys; from specforge.cli.commands import app\n"
    "sys.argv = ['specforge', 'validate', 'specs/mnist.yaml']\n"
    "try:\n    app()\nexcept SystemExit:\n    pass\n"
    "print(sorted(m for m in ('onnx', 'onnxruntime', 'PIL') if m in sys.modules), file=sys.stderr)"
)


def wall_times(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    validate = wall_times([sys.executable, "-m", "specforge", "validate", "specs/mnist.yaml"], args.runs)
    bare = wall_times([sys.executable, "-c", "pass"], args.runs)
    heavy = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True).stderr.strip()
    print(
        f"specforge validate specs/mnist.yaml: min {min(validate):.3f} s, median {statistics.median(validate):.3f} s"
        f" over {args.runs} runs (target: under 0.5 s)"
    )
    print(f"python -c pass:                     min {min(bare):.3f} s, median {statistics.median(bare):.3f} s")
    print(f"validate / bare python (min):       {min(validate) / min(bare):.1f}x")
    print(f"heavy modules imported by validate: {heavy}")


if __name__ == "__main__":
    main()
