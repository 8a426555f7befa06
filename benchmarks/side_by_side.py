"""One spec's model in specforge and in PyTorch (its lowering, specforge.training.torch), with what compare.py measures
of both: training steps per second, onnxruntime inference of either export, the memory a training step adds.

Batches are random values of the model's input shape with random class labels: the work of a step does
not depend on the values, so no data set is needed. The inputs and the labels of a small pool are paired
anew on every pass over it (``pairing``), so that neither side can learn them: a model that had learnt
its few batches by heart would push its softmax into underflow, and its steps into the slow arithmetic
of subnormal numbers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.rates import best_rate
from benchmarks.rounds import Measured, alternate
from specforge.api import build_graph, load_spec
from specforge.graph.model import Model
from specforge.options import losses, optimizers
from specforge.training.evaluate import labels_and_targets

#: distinct random batches a measurement cycles through
POOL = 4
SPECFORGE, PYTORCH = "specforge", "pytorch"


@dataclass
class Batch:
    x: np.ndarray
    labels: np.ndarray
    targets: np.ndarray


def pairing(index: int, pool: int) -> tuple[int, int]:
    """``(inputs, labels)``: which batch of the pool gives step ``index`` its inputs and which its labels; pass
    ``k`` over the pool shifts the labels by ``k`` batches, so no input keeps a label."""
    return index % pool, (index + index // pool) % pool


class SideBySide:
    """``path``'s model with fresh weights (its fit seed), in specforge and lowered to PyTorch from the same
    weights, each with the spec's loss and optimizer."""

    def __init__(self, path: str | Path):
        from specforge.training.torch.network import TorchNetwork
        from specforge.training.torch.step import TorchStep

        spec = load_spec(path)
        self.name = Path(path).stem
        self.config = spec.config
        self.graph = build_graph(spec)
        self.model = Model.initialize(self.graph, np.random.default_rng(self.config["fit"]["seed"]))
        self.loss = losses.create(self.config["compile"]["loss"])
        self.optimizer = optimizers.create(self.config["compile"]["optimizer"])
        self.twin = TorchNetwork(self.graph, self.model.get_weights())
        self.trainer = TorchStep(self.twin, self.loss, self.config["compile"]["optimizer"])
        self.dropout = np.random.default_rng(0)

    @property
    def batch_size(self) -> int:
        """The spec's own batch size (fit.batch_size)."""
        return self.config["fit"]["batch_size"]

    @property
    def training_flops(self) -> int:
        """FLOPs of training on one example: 3 x the forward's (forward, input and weight gradients)."""
        return 3 * self.graph.total_flops

    def batches(self, batch_size: int, count: int = POOL, seed: int = 0) -> list[Batch]:
        rng = np.random.default_rng(seed)
        units = self.graph.output_shape[-1]
        made = []
        shape = (batch_size, *self.graph.input_shape)
        ids = np.issubdtype(np.dtype(self.graph.input_dtype), np.integer)
        for _ in range(count):
            # a model of token ids takes ids below its Embedding's vocabulary, others values in [0, 1)
            x = (
                rng.integers(0, self.graph.nodes[0].layer.config["input_dim"], size=shape)
                if ids
                else rng.random(shape, dtype=np.float32)
            )
            labels, targets = labels_and_targets(self.loss, rng.integers(0, max(units, 2), size=batch_size), units)
            made.append(Batch(x, labels, targets))
        return made

    def specforge_step(self, batches: list[Batch]) -> Callable[[int], object]:
        """``step(i)``: specforge's training step (``Model.train_step``) on batch ``i`` of the pool."""

        def step(index: int) -> object:
            inputs, labels = pairing(index, len(batches))
            return self.model.train_step(
                batches[inputs].x, batches[labels].targets, self.loss, self.optimizer, self.dropout
            )

        return step

    def pytorch_step(self, batches: list[Batch]) -> Callable[[int], object]:
        """``step(i)``: the PyTorch training step on batch ``i`` (converted to PyTorch's layout beforehand)."""
        from specforge.layers.torch.layout import to_torch

        inputs = [to_torch(batch.x) for batch in batches]
        targets = [self.trainer.targets(batch.labels, batch.targets) for batch in batches]

        def step(index: int) -> object:
            x, y = pairing(index, len(batches))
            return self.trainer.step(inputs[x], targets[y])

        return step

    def step(self, framework: str, batches: list[Batch]) -> Callable[[int], object]:
        return self.specforge_step(batches) if framework == SPECFORGE else self.pytorch_step(batches)


def steps_per_second(step: Callable[[int], object], warmup: int, seconds: float) -> float:
    """Training steps per second of ``step``: ``warmup`` untimed steps, then steps for at least ``seconds``
    (and at least two)."""
    for index in range(warmup):
        step(index)
    count, start = 0, time.perf_counter()
    while True:
        step(count)
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and count >= 2:
            return count / elapsed


def training_rates(
    pair: SideBySide,
    batch_size: int,
    warmup: int,
    seconds: float,
    rounds: int,
) -> dict[str, Measured]:
    """Training images per second of specforge and PyTorch at ``batch_size``, best of alternating rounds."""
    batches = pair.batches(batch_size)
    steps = {framework: pair.step(framework, batches) for framework in (SPECFORGE, PYTORCH)}
    return alternate(
        {
            framework: lambda step=step: batch_size * steps_per_second(step, warmup, seconds)
            for framework, step in steps.items()
        },
        rounds,
    )


def inference_rates(
    pair: SideBySide,
    batch_sizes: Sequence[int],
    seconds: float,
    rounds: int,
) -> tuple[dict[int, dict[str, Measured]], float]:
    """Images per second of specforge's ONNX export and of the PyTorch model's torch.onnx export under onnxruntime
    (every core), per batch size, and the largest difference between their outputs and specforge's."""
    from benchmarks.torch_onnx import torch_onnx
    from specforge.export.onnx import export_graph
    from specforge.layers.torch.layout import to_torch
    from specforge.predict.session import make_session

    ours = make_session(export_graph(pair.graph, pair.model.params).SerializeToString())
    theirs = make_session(torch_onnx(pair.twin))
    results, difference = {}, 0.0
    for batch_size in batch_sizes:
        x = pair.batches(batch_size, count=1)[0].x
        x_torch = to_torch(x).numpy()
        expected = pair.model.forward(x)
        for output in (ours.run(None, {"input": x})[0], theirs.run(None, {"input": x_torch})[0]):
            difference = max(difference, float(np.abs(output.reshape(expected.shape) - expected).max()))
        results[batch_size] = alternate(
            {
                "onnx": lambda x=x, n=batch_size: best_rate(lambda: ours.run(None, {"input": x}), n, seconds),
                "torch_onnx": lambda x=x_torch, n=batch_size: best_rate(
                    lambda: theirs.run(None, {"input": x}), n, seconds
                ),
            },
            rounds,
        )
    return results, difference


def step_memory_mib(step: Callable[[int], object], steps: int = 3) -> float:
    """MiB of resident memory that ``steps`` training steps add at their peak over what the process held
    before the first (the model, its weights and the batches): Linux's VmHWM, reset just before, minus
    VmRSS then. Meant for a fresh process that runs one framework: freed memory a process keeps would
    otherwise be reused unseen."""
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    for index in range(steps):
        step(index)
    return (_status_kib("VmHWM") - before) / 1024


def _status_kib(field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+)", Path("/proc/self/status").read_text(), re.MULTILINE).group(1))
