"""Training throughput of a spec's model (the seed tutorial's by default) against this machine's GEMM rate.

    python benchmarks/train_throughput.py                        # specs/mnist.yaml, 200 batches of 32
    python benchmarks/train_throughput.py specs/lenet.yaml --batches 100

Runs the training loop's work (draw a batch from the data, one training step, metrics) on
``--batches`` batches after ``--warmup`` batches, and prints images per second, the achieved
training FLOP/s (3 x the forward FLOPs of ``graph.total_flops`` per image: forward, input
gradient and weight gradient) and its ratio to the float32 GEMM rate of ``benchmarks/matmul.py``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.matmul import gemm_gflops
from specforge.api import build_graph, load_data, load_spec
from specforge.data import iterate_batches
from specforge.graph.model import Model
from specforge.options import losses, metrics, optimizers
from specforge.training.evaluate import labels_and_targets
from specforge.training.loop import generators


def training_images_per_second(
    spec_path: str | Path, batches: int = 200, warmup: int = 20, batch_size: int | None = None
) -> tuple[float, int]:
    """``(images per second, forward FLOPs per image)`` of training steps on the spec's own data."""
    spec = load_spec(spec_path)
    graph = build_graph(spec)
    config = spec.config
    batch_size = batch_size or config["fit"]["batch_size"]
    init, shuffle, dropout = generators(config["fit"]["seed"])
    model = Model.initialize(graph, init)
    loss = losses.create(config["compile"]["loss"])
    optimizer = optimizers.create(config["compile"]["optimizer"])
    tracked = metrics.create(config["compile"]["metrics"], graph.output_shape[-1])
    units = graph.output_shape[-1]
    train = load_data(spec).train

    def run(count: int) -> None:
        epochs = (iterate_batches(train, batch_size, shuffle=True, rng=shuffle) for _ in itertools.count())
        for x, y in itertools.islice(itertools.chain.from_iterable(epochs), count):
            labels, targets = labels_and_targets(loss, y, units)
            _, outputs = model.train_step(x, targets, loss, optimizer, dropout)
            for metric in tracked:
                metric.update(outputs, labels)

    run(warmup)
    start = time.perf_counter()
    run(batches)
    return batches * batch_size / (time.perf_counter() - start), graph.total_flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default=str(ROOT / "specs" / "mnist.yaml"))
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()
    images_per_second, forward_flops = training_images_per_second(args.spec, args.batches, args.warmup, args.batch_size)
    achieved = 3 * forward_flops * images_per_second / 1e9
    gemm = gemm_gflops()
    print(f"training:  {images_per_second:9.1f} images/s ({args.spec}, {args.batches} batches)")
    print(f"FLOPs:     {3 * forward_flops / 1e6:9.1f} MFLOP per training image (3 x {forward_flops / 1e6:.1f} forward)")
    print(f"achieved:  {achieved:9.1f} GFLOP/s")
    print(f"GEMM:      {gemm:9.1f} GFLOP/s (float32, 2048 x 2048)")
    print(f"ratio:     {achieved / gemm:9.1%} of the GEMM rate")


if __name__ == "__main__":
    main()
