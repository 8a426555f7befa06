"""Batch prediction throughput: ``specforge predict`` locally (one session) and on Ray Data (a pool of actors).

    python benchmarks/predict_ray.py                   # the seed model on the 10,000 MNIST test images
    python benchmarks/predict_ray.py --address HOST:PORT --actors 8

Both go through ``api.predict_onnx`` on the same model and images, from reading the split to the report,
so the figures are what the command gives; the Ray figure counts moving the batches to the actors and
back, not starting Ray (a local one is started first, with the machine's CPUs and no dashboard).  Each
figure is the best of ``--rounds`` rounds.  Throughput does not depend on the weights, so the model is the
seed spec's freshly initialised one.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.predict_throughput import seed_model
from specforge import api
from specforge.export.onnx import export_graph


def seconds_of(run, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=10000, help="Test images to predict.")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--address", help="A Ray cluster (default: a local Ray on this machine's CPUs).")
    parser.add_argument("--actors", type=int, help="Actors in the pool (default: the cluster's CPUs).")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import ray

    model, preprocessing = seed_model(None)
    path = Path(tempfile.mkdtemp()) / "seed.onnx"
    path.write_bytes(export_graph(model.graph, model.params, preprocessing=preprocessing).SerializeToString())
    cpus = len(os.sched_getaffinity(0))
    if args.address:
        ray.init(address=args.address, log_to_driver=False)
    else:
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    options = {"data": "mnist:test", "limit": args.limit, "batch_size": args.batch_size}
    local = seconds_of(lambda: api.predict_onnx(path, **options), args.rounds)
    distributed = seconds_of(lambda: api.predict_onnx(path, backend="ray", actors=args.actors, **options), args.rounds)
    actors = args.actors or int(ray.cluster_resources()["CPU"])
    ray.shutdown()
    print(
        f"seed model, {args.limit:,} MNIST test images, batch {args.batch_size}, best of {args.rounds}; "
        f"{cpus} CPUs here"
    )
    print(f"local (one onnxruntime session, {cpus} threads): {args.limit / local:>9,.0f} images/s ({local:.2f} s)")
    print(
        f"Ray Data ({actors} actors x 1 thread):{'':>9}{args.limit / distributed:>9,.0f} images/s ({distributed:.2f} s)"
    )


if __name__ == "__main__":
    main()
