"""Cold start of `specforge validate specs/mnist.yaml`, beside a bare `python -c pass` on the same machine.

Prints the minimum and median wall time of each over several runs, where validate's imports spend their time
(``python -X importtime``, each module's least time over the runs, summed by top-level package), and which heavy
modules the validate path imported (it must import neither onnx nor onnxruntime).  Run it on a quiet machine, with
the bytecode written (``python -m compileall specforge``) and PYTHONDONTWRITEBYTECODE unset.

    python benchmarks/validate_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import collections
import re
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


def import_times(command: list[str], runs: int) -> collections.Counter[str]:
    """Milliseconds of import time by top-level package (specforge by subpackage): each module's least self time
    over ``runs`` runs of ``python -X importtime``."""
    least: dict[str, int] = {}
    for _ in range(runs):
        report = subprocess.run(
            [sys.executable, "-X", "importtime", *command], cwd=ROOT, check=True, capture_output=True, text=True
        ).stderr
        for self_us, module in re.findall(r"^import time:\s+(\d+) \|\s+\d+ \|\s+(\S+)$", report, re.MULTILINE):
            least[module] = min(least.get(module, int(self_us)), int(self_us))
    packages: collections.Counter[str] = collections.Counter()
    for module, self_us in least.items():
        parts = module.split(".")
        packages[".".join(parts[:2]) if parts[0] == "specforge" else parts[0]] += self_us / 1000
    return packages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    command = ["-m", "specforge", "validate", "specs/mnist.yaml"]
    validate = wall_times([sys.executable, *command], args.runs)
    bare = wall_times([sys.executable, "-c", "pass"], args.runs)
    heavy = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True).stderr.strip()
    print(
        f"specforge validate specs/mnist.yaml: min {min(validate):.3f} s, median {statistics.median(validate):.3f} s"
        f" over {args.runs} runs (target: under 0.5 s)"
    )
    print(f"python -c pass:                     min {min(bare):.3f} s, median {statistics.median(bare):.3f} s")
    print(f"validate / bare python (min):       {min(validate) / min(bare):.1f}x")
    packages = import_times(command, min(args.runs, 5))
    print(f"validate's imports: {sum(packages.values()):.0f} ms (-X importtime), by package:")
    for package, milliseconds in packages.most_common(12):
        print(f"  {package:<30} {milliseconds:6.1f} ms")
    print(f"heavy modules imported by validate: {heavy}")


if __name__ == "__main__":
    main()
