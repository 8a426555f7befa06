"""The PyTorch twin of a specforge model: the same graph, weights, loss and optimizer in PyTorch.

    from benchmarks.torch_twin import TorchTwin, TwinTrainer, to_torch
    twin = TorchTwin(model)                       # a specforge.graph.model.Model, its current weights
    trainer = TwinTrainer(twin, loss, spec.config["compile"]["optimizer"])
    trainer.step(to_torch(x), trainer.targets(labels, targets))

benchmarks/compare.py measures specforge against it; tests/test_torch_twin.py checks that it computes
what specforge computes (forward, gradients, one training step), for every spec in specs/ and every
layer kind's examples. It needs PyTorch: ``pip install -e '.[bench]'``.
"""

from benchmarks.torch_twin.export import twin_onnx
from benchmarks.torch_twin.layers import TWIN_LAYERS, UnsupportedLayer
from benchmarks.torch_twin.layout import to_numpy, to_torch
from benchmarks.torch_twin.network import TorchTwin
from benchmarks.torch_twin.training import TwinTrainer

__all__ = ["TWIN_LAYERS", "TorchTwin", "TwinTrainer", "UnsupportedLayer", "to_numpy", "to_torch", "twin_onnx"]
