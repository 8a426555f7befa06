"""A spec's whole training run on every backend, side by side: numpy, PyTorch (this process), and PyTorch
data-parallel on one and two Ray workers (a local Ray with as many CPUs as the workers).

    python benchmarks/train_backends.py specs/mnist.yaml         # the spec's full run on each backend
    python benchmarks/train_backends.py                          # every spec in specs/ (long)
    python benchmarks/train_backends.py specs/mnist.yaml --epochs 1 --limit-train 2048 --limit-test 1000 --no-ray

Each row is ``specforge train SPEC --backend B`` as the spec says it (its epochs, validation and callbacks;
``--epochs`` and the limits change that), with figures of the finished run:

- test accuracy: the run's ``metrics.json`` (the test split, evaluated by the numpy forward on every backend);
- wall s: the whole ``train`` call, from reading the data to the test metrics (the local Ray is started
  before, and not counted);
- train img/s: training images per second within the epochs, from each epoch's start to its last batch's
  report (validation and the test split excluded);
- ratio: numpy's wall time over the row's (above 1: faster than numpy).

A Ray worker takes one CPU and runs PyTorch on it, where PyTorch in this process takes every core; two
workers on one machine share its cores with each other and with the driver, so on a small machine they are
not expected to beat one: the figure says what DDP's gradient exchange costs.
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
from specforge.spec import Spec
from specforge.training.progress import Silent

#: (row, fit options)
BACKENDS = [
    ("numpy", {"backend": "numpy"}),
    ("torch", {"backend": "torch"}),
    ("ray x1", {"backend": "ray", "workers": 1}),
    ("ray x2", {"backend": "ray", "workers": 2}),
]


class EpochClock(Silent):
    """The seconds of each epoch from its start to its last batch's report."""

    def __init__(self):
        self.started = 0.0
        self.last = 0.0
        self.seconds = 0.0

    def epoch_start(self, epoch, epochs, steps):
        self.started = self.last = time.perf_counter()

    def batch_end(self, step, logs):
        self.last = time.perf_counter()

    def epoch_end(self, logs):
        self.seconds += self.last - self.started


def full_run(spec: Spec, examples: int, limits: dict, options: dict) -> dict[str, float]:
    """Train ``spec`` (``examples`` training images) on the backend ``options`` name: its test accuracy, wall time
    and training images per second."""
    clock = EpochClock()
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        run = api.fit(spec, out=Path(directory) / "run", progress=clock, **limits, **options)
        wall = time.perf_counter() - start
        images = run.manifest["epochs_completed"] * examples
        return {
            "accuracy": run.metrics.get("accuracy", float("nan")),
            "wall": wall,
            "rate": images / clock.seconds if clock.seconds > 0 else float("nan"),
        }


def compare(path: Path, args: argparse.Namespace, backends: list[tuple[str, dict]]) -> None:
    """One spec's rows."""
    overrides = ["fit.log=[]", *([f"fit.epochs={args.epochs}"] if args.epochs else [])]
    spec = api.load_spec(path, overrides)
    train = len(api.load_data(spec).train)
    examples = min(train, args.limit_train) if args.limit_train else train
    limits = {"limit_train": args.limit_train, "limit_test": args.limit_test}
    print(f"{path.stem}: {spec.config['fit']['epochs']} epoch(s) of {examples} training images, device {args.device}")
    print(f"  {'backend':<8}{'test acc':>10}{'wall s':>10}{'train img/s':>13}{'ratio':>8}", flush=True)
    numpy_wall = float("nan")
    for name, options in backends:
        device = {} if options["backend"] == "numpy" else {"device": args.device}
        figures = full_run(spec, examples, limits, {**options, **device})
        if name == "numpy":
            numpy_wall = figures["wall"]
        ratio = numpy_wall / figures["wall"]
        print(
            f"  {name:<8}{figures['accuracy']:>10.4f}{figures['wall']:>10.1f}{figures['rate']:>13.1f}{ratio:>7.2f}x",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="*", type=Path, help="Specs (default: every specs/*.yaml).")
    parser.add_argument("--epochs", type=int, help="Epochs (default: the spec's fit.epochs).")
    parser.add_argument("--limit-train", type=int, help="Train on the first N training images (default: all).")
    parser.add_argument("--limit-test", type=int, help="Validate and test on the first N images (default: all).")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"], help="torch and ray (default cpu).")
    parser.add_argument("--no-ray", action="store_true", help="Leave out the Ray rows.")
    args = parser.parse_args()
    specs = args.specs or sorted((ROOT / "specs").glob("*.yaml"))
    backends = [(name, options) for name, options in BACKENDS if not (args.no_ray and options["backend"] == "ray")]
    ray = None
    if not args.no_ray:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        for path in specs:
            compare(path, args, backends)
    finally:
        if ray is not None:
            ray.shutdown()


if __name__ == "__main__":
    main()
