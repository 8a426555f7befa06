"""Training throughput of each reference spec on every backend, side by side: numpy, PyTorch (this process),
and PyTorch data-parallel on one and two Ray workers (a local Ray with as many CPUs as the workers).

    python benchmarks/train_backends.py                          # every spec in specs/, 2048 training images
    python benchmarks/train_backends.py specs/mnist.yaml --limit-train 256 --no-ray   # a quick look

Each figure is ``specforge train SPEC --backend B`` for one epoch on the first ``--limit-train`` training
images (no validation, no test split), timed from the epoch's first batch to its last as the progress
reports show them (so neither start-up nor Ray's scheduling counts): training images per second.
Several workers on one machine share its cores with each other (and with the driver), so on a small
machine two workers are not expected to beat one; the figure says what DDP's gradient exchange costs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from specforge import api
from specforge.training.progress import Silent

#: (column, fit options)
BACKENDS = [
    ("numpy", {"backend": "numpy"}),
    ("torch", {"backend": "torch", "device": "cpu"}),
    ("ray x1", {"backend": "ray", "workers": 1, "device": "cpu"}),
    ("ray x2", {"backend": "ray", "workers": 2, "device": "cpu"}),
]


class EpochClock(Silent):
    """The time from the first batch's report to the last's, and the batches between."""

    def __init__(self):
        self.first: float | None = None
        self.last = 0.0
        self.steps = 0

    def batch_end(self, step, logs):
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last, self.steps = now, step


def images_per_second(spec_path: Path, limit_train: int, options: dict) -> float:
    """Training images per second of one epoch of ``spec_path`` on the backend ``options`` name."""
    spec = api.load_spec(spec_path, ["fit.epochs=1", "fit.validation=none", "fit.callbacks=[]", "fit.log=[]"])
    clock = EpochClock()
    with tempfile.TemporaryDirectory() as directory:
        api.fit(spec, out=Path(directory) / "run", progress=clock, limit_train=limit_train, limit_test=1, **options)
    batch_size = spec.config["fit"]["batch_size"]
    # the first batch's report starts the clock: the images after it
    timed = min(limit_train, clock.steps * batch_size) - batch_size
    return timed / (clock.last - clock.first) if clock.first is not None and clock.last > clock.first else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="*", type=Path, help="Specs (default: every specs/*.yaml).")
    parser.add_argument("--limit-train", type=int, default=2048, help="Training images per epoch (default 2048).")
    parser.add_argument("--no-ray", action="store_true", help="Leave out the Ray columns.")
    args = parser.parse_args()
    specs = args.specs or sorted((ROOT / "specs").glob("*.yaml"))
    backends = [(name, options) for name, options in BACKENDS if not (args.no_ray and options["backend"] == "ray")]
    ray = None
    if not args.no_ray:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    print(f"training images per second, one epoch of {args.limit_train} images")
    print(f"{'spec':<16}" + "".join(f"{name:>12}" for name, _ in backends))
    try:
        for path in specs:
            figures = [images_per_second(path, args.limit_train, options) for _, options in backends]
            print(f"{path.stem:<16}" + "".join(f"{figure:>12.1f}" for figure in figures), flush=True)
    finally:
        if ray is not None:
            ray.shutdown()


if __name__ == "__main__":
    main()
