"""specforge against PyTorch on the seed model: training and inference speed, GEMM rate, peak memory.

    pip install -e '.[bench]'          # the CPU build of torch
    python benchmarks/compare.py       # a few minutes on 2 cores
    python benchmarks/compare.py --full    # adds a full 3-epoch run of each, validation included

Everything runs in one process, in alternating rounds (specforge, then PyTorch, ...), and each
figure is the best of its rounds, so that both sides see the same machine; ratios are taken
within this one run. The PyTorch model is the same network (Conv2D 64 3x3 relu, Conv2D 32 3x3
relu, Flatten, Dense 10 softmax) starting from specforge's own glorot-uniform weights (converted to
NCHW), trained with Adam with Keras' defaults (learning rate 0.001, betas 0.9/0.999, epsilon 1e-7)
at batch 32 in float32 on the same MNIST arrays, with as many threads as there are cores.
Both training loops do what a training loop does: draw the shuffled batch from the data, take one
step, count the accuracy.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.matmul import gemm_gflops  # noqa: E402
from benchmarks.rates import best_rate  # noqa: E402
from benchmarks.train_throughput import training_images_per_second  # noqa: E402
from specforge.api import build, load_data, load_spec  # noqa: E402
from specforge.export.onnx import export_graph  # noqa: E402
from specforge.export.runtime import default_threads, make_session  # noqa: E402
from specforge.model import Model  # noqa: E402

SPEC = ROOT / "specs" / "mnist.yaml"
BATCH = 32
INFERENCE_BATCHES = (1, 32, 256)
TRAINING_TARGET, ONNX_TARGET, FULL_RUN_TARGET, MEMORY_TARGET_MB = 1.0, 0.95, 1.2, 1024


# -- the PyTorch twin -------------------------------------------------------------------------------
def torch_model(model: Model):
    """The seed network in PyTorch with ``model``'s weights (NHWC kernels turned NCHW); outputs logits."""
    import torch
    from torch import nn

    def tensor(array: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    layers = []
    for node, params in zip(model.graph.nodes, model.params):
        kind = node.layer.type
        if kind == "Conv2D":
            kh, kw, cin, cout = params["kernel"].shape
            layer = nn.Conv2d(cin, cout, (kh, kw))
            layer.weight.data, layer.bias.data = tensor(params["kernel"].transpose(3, 2, 0, 1)), tensor(params["bias"])
            layers.append(layer)
        elif kind == "Activation" and node.layer.config["activation"] == "relu":
            layers.append(nn.ReLU())
        elif kind == "Flatten":
            layers.append(nn.Flatten())
            height, width, channels = node.input_shape
        elif kind == "Dense":
            kernel = params["kernel"]
            layer = nn.Linear(*kernel.shape)
            # Keras flattens (h, w, c), PyTorch (c, h, w): the kernel's rows follow.
            rows = kernel.reshape(height, width, channels, -1).transpose(2, 0, 1, 3).reshape(kernel.shape)
            layer.weight.data, layer.bias.data = tensor(rows.T), tensor(params["bias"])
            layers.append(layer)
        elif kind != "Activation" or node is not model.graph.nodes[-1]:
            raise ValueError(f"the PyTorch twin has no {kind} layer; compare.py covers the seed model only")
    return nn.Sequential(*layers)


class TorchTrainer:
    """PyTorch's training loop on the same data: shuffled batches, a step, the accuracy count."""

    def __init__(self, model: Model, images: np.ndarray, labels: np.ndarray, seed: int = 0):
        import torch

        self.torch = torch
        self.net = torch_model(model)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
        self.loss = torch.nn.CrossEntropyLoss()
        self.x = torch.from_numpy(images.reshape(len(images), 1, *images.shape[1:3]).astype(np.float32))
        self.y = torch.from_numpy(labels.astype(np.int64))
        self.generator = torch.Generator().manual_seed(seed)
        self.order = self.torch.empty(0, dtype=torch.int64)
        self.position = 0

    def steps(self, count: int) -> None:
        self.net.train()
        for _ in range(count):
            if self.position + BATCH > len(self.order):
                self.order, self.position = self.torch.randperm(len(self.x), generator=self.generator), 0
            index = self.order[self.position:self.position + BATCH]
            self.position += BATCH
            x, y = self.x[index], self.y[index]
            self.optimizer.zero_grad(set_to_none=True)
            logits = self.net(x)
            self.loss(logits, y).backward()
            self.optimizer.step()
            (logits.argmax(dim=1) == y).sum().item()

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> float:
        """Accuracy on ``images`` in batches of 32, as Keras validates."""
        self.net.eval()
        x = self.torch.from_numpy(images.reshape(len(images), 1, *images.shape[1:3]).astype(np.float32))
        correct = 0
        with self.torch.no_grad():
            for start in range(0, len(x), BATCH):
                correct += (self.net(x[start:start + BATCH]).argmax(dim=1)
                            == self.torch.from_numpy(labels[start:start + BATCH])).sum().item()
        return correct / len(x)


def torch_onnx(model: Model) -> bytes:
    """The PyTorch twin with a final softmax, exported by torch.onnx (opset 13, batch axis symbolic)."""
    import torch

    net = torch.nn.Sequential(torch_model(model), torch.nn.Softmax(dim=1)).eval()
    buffer = io.BytesIO()
    example = torch.zeros(1, model.graph.input_shape[-1], *model.graph.input_shape[:2])
    torch.onnx.export(net, (example,), buffer, dynamo=False, opset_version=13, input_names=["input"],
                      output_names=["probabilities"],
                      dynamic_axes={"input": {0: "N"}, "probabilities": {0: "N"}})
    return buffer.getvalue()


# -- measuring ----------------------------------------------------------------------------------------
def alternate(measures: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """The best of ``rounds`` results of each measure, taken in turns."""
    best = {name: 0.0 for name in measures}
    for _ in range(rounds):
        for name, measure in measures.items():
            best[name] = max(best[name], measure())
    return best


def training(model: Model, train, batches: int, warmup: int, rounds: int) -> dict[str, float]:
    trainer = TorchTrainer(model, train.images, train.labels)

    def torch_rate() -> float:
        trainer.steps(warmup)
        start = time.perf_counter()
        trainer.steps(batches)
        return batches * BATCH / (time.perf_counter() - start)

    def specforge_rate() -> float:
        return training_images_per_second(SPEC, batches, warmup, BATCH)[0]

    return alternate({"specforge": specforge_rate, "pytorch": torch_rate}, rounds)


def inference(model: Model, rounds: int) -> tuple[dict[int, dict[str, float]], float]:
    """Images per second per batch size and engine, and the largest output difference between engines."""
    ours = make_session(export_graph(model.graph, model.params).SerializeToString())
    theirs = make_session(torch_onnx(model))
    rng = np.random.default_rng(0)
    results, difference = {}, 0.0
    for batch in INFERENCE_BATCHES:
        x = rng.integers(0, 256, size=(batch, *model.graph.input_shape)).astype(np.float32)
        x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        outputs = [model.forward(x), ours.run(None, {"input": x})[0], theirs.run(None, {"input": x_nchw})[0]]
        difference = max(difference, *(float(np.abs(o - outputs[0]).max()) for o in outputs[1:]))
        results[batch] = alternate({
            "numpy": lambda: best_rate(lambda: model.forward(x), batch),
            "onnx": lambda: best_rate(lambda: ours.run(None, {"input": x}), batch),
            "torch_onnx": lambda: best_rate(lambda: theirs.run(None, {"input": x_nchw}), batch),
        }, rounds)
    return results, difference


def specforge_command(epochs: int, out: Path) -> list[str]:
    return [sys.executable, "-m", "specforge", "train", str(SPEC.relative_to(ROOT)), "--set", f"fit.epochs={epochs}",
            "--out", str(out), "--quiet"]


def timed_run(command: list[str]) -> tuple[float, float, str]:
    """``(wall seconds, peak resident MB, last epoch's line)`` of ``command`` run in a subprocess from the
    repository root.

    The peak is the child's own VmHWM, read from /proc while it runs: ``ru_maxrss`` of children would
    count this process's memory, which a child shares until it execs.
    """
    output = tempfile.TemporaryFile("w+")
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=output)
    peak_kb = 0
    while child.poll() is None:
        try:
            status = Path(f"/proc/{child.pid}/status").read_text()
            peak_kb = max(peak_kb, int(status.split("VmHWM:")[1].split()[0]))
        except (OSError, IndexError):
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, command)
    output.seek(0)
    epochs = [line for line in output.read().splitlines() if line.startswith(("Epoch", "epoch"))]
    return seconds, peak_kb / 1024, epochs[-1] if epochs else ""


def torch_fit(epochs: int) -> None:
    """``--torch-fit``: the PyTorch equivalent of ``specforge train specs/mnist.yaml`` (a subprocess of --full)."""
    import torch

    torch.set_num_threads(default_threads())
    spec = load_spec(SPEC)
    data = load_data(spec)
    model = Model.initialize(build(spec), np.random.default_rng(spec.config["fit"]["seed"]))
    trainer = TorchTrainer(model, data.train.images, data.train.labels, spec.config["fit"]["seed"])
    steps = -(-len(data.train) // BATCH)
    for epoch in range(epochs):
        trainer.steps(steps)
        accuracy = trainer.evaluate(data.test.images, data.test.labels)
        print(f"epoch {epoch + 1}/{epochs} - val_accuracy: {accuracy:.4f}")


# -- report ---------------------------------------------------------------------------------------------
def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200, help="timed training batches per round")
    parser.add_argument("--warmup", type=int, default=20, help="untimed training batches before each round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--full", action="store_true", help="also time full 3-epoch runs of both")
    parser.add_argument("--torch-fit", type=int, metavar="EPOCHS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_fit:
        torch_fit(args.torch_fit)
        return

    import onnxruntime
    import torch

    threads = default_threads()
    torch.set_num_threads(threads)
    spec = load_spec(SPEC)
    graph = build(spec)
    model = Model.initialize(graph, np.random.default_rng(0))
    train = load_data(spec).train
    training_flops = 3 * graph.total_flops

    print(f"machine: {cpu_name()}, {threads} cores; numpy {np.__version__}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}")
    gemm = gemm_gflops()
    print(f"float32 GEMM 2048 x 2048: {gemm:.1f} GFLOP/s (benchmarks/matmul.py)")

    rates = training(model, train, args.batches, args.warmup, args.rounds)
    print(f"\ntraining the seed model, batch {BATCH}, float32: {args.batches} batches after {args.warmup} "
          f"warm-up, best of {args.rounds} alternating rounds; {training_flops / 1e6:.1f} MFLOP per image "
          f"(3 x forward)")
    print(f"{'':22}{'images/s':>10}{'GFLOP/s':>10}{'of GEMM':>9}")
    for name, label in (("specforge", "specforge (numpy)"), ("pytorch", "PyTorch eager")):
        achieved = rates[name] * training_flops / 1e9
        print(f"{label:22}{rates[name]:10,.0f}{achieved:10.1f}{achieved / gemm:9.0%}")
    ratio = rates["specforge"] / rates["pytorch"]
    print(f"specforge / PyTorch: {ratio:.2f}x (target >= {TRAINING_TARGET:.2f}x)")

    results, difference = inference(model, args.rounds)
    print(f"\ninference, images/s (best of {args.rounds} alternating rounds); both ONNX files under onnxruntime "
          f"with {threads} threads; largest output difference between the three: {difference:.1e}")
    print(f"{'batch':>5}{'numpy':>10}{'ours ONNX':>11}{'torch.onnx':>12}{'ours/torch.onnx':>17}{'numpy/torch.onnx':>18}")
    for batch, row in results.items():
        print(f"{batch:5}{row['numpy']:10,.0f}{row['onnx']:11,.0f}{row['torch_onnx']:12,.0f}"
              f"{row['onnx'] / row['torch_onnx']:16.2f}x{row['numpy'] / row['torch_onnx']:17.2f}x")
    print(f"target: ours ONNX >= {ONNX_TARGET:.2f}x torch.onnx at every batch size")

    with tempfile.TemporaryDirectory() as scratch_dir:
        command = specforge_command(1, Path(scratch_dir) / "run")
        seconds, peak, _ = timed_run(command)
        shown = " ".join(["python", *command[1:-3]])
        print(f"\npeak resident memory of `{shown}` (60,000 training images, validation on 10,000): "
              f"{peak:,.0f} MB (target < {MEMORY_TARGET_MB:,} MB); it took {seconds:.0f} s")
        if args.full:
            ours, ours_peak, ours_last = timed_run(specforge_command(3, Path(scratch_dir) / "full"))
            theirs, theirs_peak, theirs_last = timed_run([sys.executable, __file__, "--torch-fit", "3"])
            print(f"full 3-epoch run, validation included, process start to exit: specforge {ours:.0f} s "
                  f"({ours_peak:,.0f} MB), PyTorch {theirs:.0f} s ({theirs_peak:,.0f} MB), ratio "
                  f"{ours / theirs:.2f} (target <= {FULL_RUN_TARGET:.1f})")
            print(f"  specforge: {ours_last}\n  PyTorch:   {theirs_last}")


if __name__ == "__main__":
    main()
