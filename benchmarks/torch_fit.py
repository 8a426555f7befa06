"""The PyTorch counterpart of ``specforge train SPEC``: the spec's graph in PyTorch (specforge.training.torch)
trained on the spec's data, with its batch size, shuffled each epoch, counting the training accuracy as it goes and
validating on the test split after each epoch. compare.py --full times it against specforge's run.

    python benchmarks/torch_fit.py specs/mnist.yaml --epochs 3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np
import torch

from specforge.api import build_graph, load_data, load_spec
from specforge.data import iterate_batches
from specforge.graph.model import Model
from specforge.layers.torch.layout import to_torch
from specforge.options import losses
from specforge.predict.session import default_threads
from specforge.training.evaluate import labels_and_targets
from specforge.training.loop import generators
from specforge.training.torch.network import TorchNetwork
from specforge.training.torch.step import TorchStep


def whole_split(split, loss, units: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, labels, targets)`` of a whole split, preprocessed as training batches are."""
    x, y = next(iterate_batches(split, len(split), shuffle=False))
    return (x, *labels_and_targets(loss, y, units))


def fit(path: str | Path, epochs: int) -> None:
    torch.set_num_threads(default_threads())
    spec = load_spec(path)
    config = spec.config
    data = load_data(spec)
    model = Model.initialize(build_graph(spec), generators(config["fit"]["seed"])[0])
    loss = losses.create(config["compile"]["loss"])
    trainer = TorchStep(TorchNetwork(model.graph, model.params), loss, config["compile"]["optimizer"])
    units = model.graph.output_shape[-1]
    x, labels, targets = whole_split(data.train, loss, units)
    x, labels, y = to_torch(x), torch.from_numpy(labels), trainer.targets(labels, targets)
    test_x, test_labels, _ = whole_split(data.test, loss, units)
    test_x, test_labels = to_torch(test_x), torch.from_numpy(test_labels)
    batch_size = config["fit"]["batch_size"]
    generator = torch.Generator().manual_seed(config["fit"]["seed"])
    for epoch in range(epochs):
        order, correct = torch.randperm(len(x), generator=generator), 0
        for start in range(0, len(x), batch_size):
            index = order[start : start + batch_size]
            _, outputs = trainer.step(x[index], y[index])
            correct += int((outputs.argmax(dim=1) == labels[index]).sum())
        trainer.network.eval()
        with torch.no_grad():
            right = sum(
                int(
                    (
                        trainer.network(test_x[start : start + batch_size]).argmax(dim=1)
                        == test_labels[start : start + batch_size]
                    ).sum()
                )
                for start in range(0, len(test_x), batch_size)
            )
        print(
            f"epoch {epoch + 1}/{epochs} - accuracy: {correct / len(x):.4f} - val_accuracy: {right / len(test_x):.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default=str(ROOT / "specs" / "mnist.yaml"))
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    fit(args.spec, args.epochs)


if __name__ == "__main__":
    main()
