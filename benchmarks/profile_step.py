"""Where a training step of a spec's model spends its time: forward and backward per layer, loss, optimizer.

    python benchmarks/profile_step.py                       # the seed model at its batch size (32), float32
    python benchmarks/profile_step.py specs/mnist.yaml --batches 300 --batch-size 32

The step is the one ``Model.gradients`` + ``optimizer.step`` run (its steps, in topological order: a
layer with the activation it applies to its own output; softmax fused into the loss; no input
gradient for the layers that take the model's input; gradients summed where outputs fan out), taken
apart so that each phase is timed on its own, followed by the metrics' count of the batch, as the
training loop does.
Batches are drawn at random from the spec's training split, preprocessed as training does (values in
the range training sees, so that no phase times overflowing or non-finite arithmetic).
Prints the peak memory of one whole ``Model.train_step`` (traced numpy allocations), then, per
phase and slowest first, the wall-clock milliseconds per batch, their share of the step, and the CPU
milliseconds of all threads together (on a machine that other processes keep busy, CPU time is the
steadier of the two; CPU / wall is how many cores the phase kept busy).
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from specforge.api import build_graph, load_data, load_spec
from specforge.data import Split
from specforge.graph.model import Model, StepValues, gather_gradients
from specforge.options import metrics, optimizers
from specforge.options.losses import create as create_loss
from specforge.training.evaluate import labels_and_targets, update_metrics


def random_batch(
    train: Split,
    model: Model,
    loss,
    batch_size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(inputs, class labels, the loss's targets)`` of ``batch_size`` examples of ``train`` drawn at random."""
    index = np.sort(rng.choice(len(train), size=batch_size, replace=batch_size > len(train)))
    steps = train.preprocessing
    labels, targets = labels_and_targets(loss, steps.labels(train.labels[index]), model.graph.output_shape[-1])
    # a model of token ids takes them as its input's dtype says, as training feeds them
    return steps.images(train.images[index]).astype(model.graph.input_dtype, copy=False), labels, targets


class PhaseClock:
    """Wall-clock and process CPU seconds summed per phase name."""

    def __init__(self):
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.enabled = False

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        if self.enabled:
            self.wall[phase] += time.perf_counter() - wall
            self.cpu[phase] += time.process_time() - cpu


def profile(
    train: Split, model: Model, loss, optimizer, metrics, batches: int, batch_size: int, warmup: int = 20
) -> PhaseClock:
    """Seconds per phase summed over ``batches`` timed steps (after ``warmup`` untimed ones)."""
    rng = np.random.default_rng(0)
    fused = model.fuses(loss)
    steps = model.steps(len(model.graph.nodes) - 1 if fused else None)
    names = [
        " + ".join(node.layer.name for node in model.graph.nodes[step.index : step.index + step.nodes])
        for step in steps
    ]
    trainable = [
        (index, name)
        for index, node in enumerate(model.graph.nodes)
        for name in node.layer.param_shapes(node.input_shape)
        if name not in node.layer.non_trainable
    ]
    clock = PhaseClock()
    for batch in range(warmup + batches):
        x, labels, y = random_batch(train, model, loss, batch_size, rng)
        clock.enabled = batch >= warmup
        caches = []
        values = StepValues(steps, x, graph=model.graph)
        for step, name in zip(steps, names):
            with clock(f"forward  {name}"):
                out, cache = step.forward(model.params[step.index], values.take(step), True, rng, values.mask(step))
                values.put(step, out)
            caches.append(cache)
        with clock("loss (value, gradient, probabilities)"):
            _, dy = loss.value_and_grad(values.last, y, from_logits=fused)
            outputs = loss.to_probabilities(values.last, fused)
        grads: list[dict] = [{} for _ in model.params]
        upstream = {steps[-1].output: dy}
        for position in range(len(steps) - 1, -1, -1):
            step = steps[position]
            with clock(f"backward {names[position]}"):
                dx, grads[step.index] = step.backward(
                    model.params[step.index], caches[position], upstream.pop(step.output), need_dx=step.needs_dx
                )
                if step.needs_dx:
                    gather_gradients(upstream, step, dx)
        with clock(f"optimizer {optimizer.name}"):
            optimizer.step(model.trainable_params(), [grads[index][name] for index, name in trainable])
        with clock("metrics"):
            update_metrics(metrics, outputs, labels, y, train.preprocessing)
    return clock


def step_peak_memory(train: Split, model: Model, loss, optimizer, batch_size: int) -> int:
    """Bytes allocated at the peak of one ``Model.train_step`` beyond what was held before it (numpy
    reports its array buffers to tracemalloc): the activations, caches and gradients a step keeps alive."""
    rng = np.random.default_rng(1)
    x, _, y = random_batch(train, model, loss, batch_size, rng)
    model.train_step(x, y, loss, optimizer, rng)
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    model.train_step(x, y, loss, optimizer, rng)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default=str(ROOT / "specs" / "mnist.yaml"))
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--batch-size", type=int, help="default: the spec's fit.batch_size")
    args = parser.parse_args()

    spec = load_spec(args.spec)
    args.batch_size = args.batch_size or spec.config["fit"]["batch_size"]
    graph = build_graph(spec)
    model = Model.initialize(graph, np.random.default_rng(0))
    loss = create_loss(spec.config["compile"]["loss"])
    optimizer = optimizers.create(spec.config["compile"]["optimizer"])
    tracked = metrics.create(spec.config["compile"]["metrics"], graph.output_shape[-1])
    train = load_data(spec).train
    clock = profile(train, model, loss, optimizer, tracked, args.batches, args.batch_size)
    peak = step_peak_memory(train, model, loss, optimizer, args.batch_size)

    step, cpu = sum(clock.wall.values()), sum(clock.cpu.values())
    print(
        f"{spec.name}: batch {args.batch_size}, {args.batches} batches, {step / args.batches * 1e3:.2f} ms per "
        f"step ({cpu / args.batches * 1e3:.2f} CPU ms), {args.batches * args.batch_size / step:,.0f} images/s"
    )
    print(f"peak memory of one Model.train_step (numpy allocations, tracemalloc): {peak / 2**20:.1f} MiB")
    print(f"{'phase':<40} {'ms/batch':>9} {'share':>7} {'CPU ms':>8}")
    for phase, seconds in sorted(clock.wall.items(), key=lambda item: -item[1]):
        print(
            f"{phase:<40} {seconds / args.batches * 1e3:9.3f} {seconds / step:7.1%} "
            f"{clock.cpu[phase] / args.batches * 1e3:8.3f}"
        )


if __name__ == "__main__":
    main()
