"""Prediction throughput of the exported seed model: onnxruntime beside the numpy forward, images per second.

    python benchmarks/predict_throughput.py                         # freshly initialised seed model
    python benchmarks/predict_throughput.py --run runs/mnist-cnn/latest

Throughput does not depend on the weights, so a freshly initialised model measures the same as a
trained one.  Both run in this process on the same batches of raw MNIST test images: onnxruntime
with the session ``specforge predict`` creates (preprocessing in the graph), numpy's ``Model.forward``
on the preprocessed batch (the preprocessing is counted in both).  Each figure is the best of several
timed rounds, each round at least ``--seconds`` long.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rates import best_rate
from specforge.api import build_graph
from specforge.data import load_dataset
from specforge.export.onnx import export_graph
from specforge.graph.model import Model
from specforge.predict.session import default_threads, make_session
from specforge.spec import load_spec

SEED_SPEC = Path(__file__).resolve().parents[1] / "specs" / "mnist.yaml"
BATCH_SIZES = (1, 32, 256)


def images_per_second(run: Callable[[], object], batch: int, seconds: float, rounds: int = 3) -> float:
    """Best rate over ``rounds`` rounds, each repeating ``run`` (one batch) for at least ``seconds``."""
    return max(best_rate(run, batch, seconds) for _ in range(rounds))


def seed_model(run_dir: str | None) -> tuple[Model, object]:
    """The seed spec's model (a run's trained weights, or fresh ones) and its preprocessing."""
    if run_dir is not None:
        from specforge.data import Preprocessing
        from specforge.runs.directory import open_run

        run = open_run(run_dir)
        return run.model(), Preprocessing.from_dict(run.preprocessing)
    spec = load_spec(SEED_SPEC)
    graph = build_graph(spec)
    dataset = load_dataset(spec.config["data"], graph.input_shape, validation="none", base_dir=spec.base_dir)
    return Model.initialize(graph, np.random.default_rng(0)), dataset.preprocessing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="A trained run of specs/mnist.yaml (default: freshly initialised weights).")
    parser.add_argument("--threads", type=int, default=default_threads(), help="onnxruntime intra-op threads.")
    parser.add_argument("--seconds", type=float, default=1.0, help="Minimum length of one timed round.")
    args = parser.parse_args()

    model, preprocessing = seed_model(args.run)
    onnx_model = export_graph(model.graph, model.params, preprocessing=preprocessing)
    session = make_session(onnx_model.SerializeToString(), args.threads)
    raw = load_dataset(
        {"source": "mnist"}, model.graph.input_shape, validation="none", base_dir=Path.cwd()
    ).test.images[: max(BATCH_SIZES)]
    raw = raw.reshape(len(raw), *model.graph.input_shape)

    print(f"seed model ({'run ' + args.run if args.run else 'fresh weights'}), onnxruntime threads: {args.threads}")
    print(f"{'batch':>5}  {'onnxruntime img/s':>18}  {'numpy img/s':>12}  {'ratio':>6}")
    for batch in BATCH_SIZES:
        pixels = raw[:batch]
        onnx_rate = images_per_second(
            lambda pixels=pixels: session.run(["probabilities"], {"input": pixels.astype(np.float32)}),
            batch,
            args.seconds,
        )
        numpy_rate = images_per_second(
            lambda pixels=pixels: model.forward(preprocessing.images(pixels)), batch, args.seconds
        )
        print(f"{batch:>5}  {onnx_rate:>18,.0f}  {numpy_rate:>12,.0f}  {onnx_rate / numpy_rate:>5.1f}x")


if __name__ == "__main__":
    main()
