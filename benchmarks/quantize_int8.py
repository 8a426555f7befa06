"""The seed model in float32 and int8 (``specforge export --quantize int8``), measured in one run: file size,
test accuracy and onnxruntime throughput (images per second) at batch sizes 1, 32 and 256.

    python benchmarks/quantize_int8.py --run runs/mnist-cnn/latest     # a trained run of specs/mnist.yaml

The run is copied to a temporary directory and exported there twice, as the CLI does (the float model
through the parity gate; the int8 one through the parity gate and the accuracy gate), so the run itself
is left as it was.  Both models run with the session ``specforge predict`` creates on the same batches of
raw MNIST test images; each rate is the best of several rounds of at least ``--seconds``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.predict_throughput import BATCH_SIZES, images_per_second
from specforge import api
from specforge.predict.images import OnnxPredictor, read_data
from specforge.predict.session import default_threads, make_session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="A trained run of specs/mnist.yaml.")
    parser.add_argument("--threads", type=int, default=default_threads(), help="onnxruntime intra-op threads.")
    parser.add_argument("--seconds", type=float, default=1.0, help="Minimum length of one timed round.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        run = shutil.copytree(Path(args.run).resolve(), Path(scratch) / "run")
        float_path = api.export(run).path
        int8 = api.export(run, quantize="int8")
        print(f"int8 gate: {int8.quantization.summary()}")
        images = read_data("mnist:test", OnnxPredictor(float_path)).examples.astype(np.float32)
        print(f"onnxruntime {__import__('onnxruntime').__version__}, {args.threads} threads; images per second")
        print(f"{'model':<6} {'size':>10} {'accuracy':>9}" + "".join(f" {f'batch {b}':>10}" for b in BATCH_SIZES))
        for name, path in (("float", float_path), ("int8", int8.path)):
            session = make_session(path, args.threads)
            accuracy = api.predict_onnx(path, data="mnist:test").accuracy
            rates = [
                images_per_second(
                    lambda session=session, batch=batch: session.run(None, {"input": images[:batch]}),
                    batch,
                    args.seconds,
                )
                for batch in BATCH_SIZES
            ]
            print(
                f"{name:<6} {path.stat().st_size / 1024:>6.1f} KiB {100 * accuracy:>8.2f}%"
                + "".join(f" {rate:>10,.0f}" for rate in rates)
            )


if __name__ == "__main__":
    main()
