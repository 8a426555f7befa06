"""The PyTorch backend's step function for the training loop (specforge.training.backends.Steps).

The network starts from the numpy model's initial weights (the same seed gives the same weights on
both backends), batches come in the loop's order, and dropout draws from PyTorch's generator, seeded
from ``fit.seed`` and saved with the optimizer's state in every checkpoint. On a CPU PyTorch runs
its deterministic algorithms, so that a resumed run ends with the weights of one never stopped.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from specforge.base.errors import RunError
from specforge.graph.model import Batch, Model
from specforge.layers.torch.layout import to_numpy, to_torch
from specforge.layers.torch.modules import Augmentation
from specforge.options.losses import Loss
from specforge.options.optimizers import Optimizer
from specforge.spec.model_io import model_outputs
from specforge.training.torch.ema import TorchWeightAverage
from specforge.training.torch.network import TorchNetwork
from specforge.training.torch.step import TorchStep

#: Keys of the random state among the optimizer's arrays in a checkpoint.
CPU_RNG, CUDA_RNG = "rng.torch", "rng.cuda"


def resolve_device(request: str) -> torch.device:
    """``cpu``, ``cuda`` (RunError when PyTorch sees no GPU) or ``auto`` (cuda when it sees one)."""
    if request == "cuda" and not torch.cuda.is_available():
        raise RunError(
            "PyTorch sees no CUDA GPU here (torch.cuda.is_available() is False: no GPU, no driver or a "
            "CPU build of PyTorch); use --device cpu, or auto to take a GPU where there is one",
            file="--device cuda",
        )
    if request == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(request)


def deterministic_algorithms() -> None:
    """PyTorch's deterministic algorithms, as ``torch.use_deterministic_algorithms(True)`` turns them on, less two
    costs that buy nothing here: that function imports TorchInductor to set its flag too (seconds of start-up;
    the backend compiles nothing), and the mode fills every new tensor's memory with NaN
    (``torch.utils.deterministic.fill_uninitialized_memory``, a check for kernels that read memory they never
    wrote; a step's results do not depend on it)."""
    torch._C._set_deterministic_algorithms(True)
    torch._C._set_deterministic_fill_uninitialized_memory(False)


class LearningRate:
    """The optimizer's learning rate as callbacks see it (``trainer.optimizer.learning_rate``)."""

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: Any):
        self._optimizer = optimizer
        #: the learning-rate schedule (specforge.options.schedules), applied by TorchStep; None for a fixed rate
        self.schedule = schedule

    @property
    def learning_rate(self) -> float:
        return float(self._optimizer.param_groups[0]["lr"])

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        for group in self._optimizer.param_groups:
            group["lr"] = float(value)


class TorchSteps:
    """Steps of the spec's graph in PyTorch on ``device``; ``wrap`` puts the network in a wrapper that
    runs the forward pass (DistributedDataParallel on a Ray worker)."""

    def __init__(
        self,
        model: Model,
        spec: Any,
        loss: Loss | list[Loss],
        optimizer: Optimizer,
        dropout_rng: np.random.Generator,
        device: torch.device,
        request: str,
        seed_offset: int = 0,
        wrap=None,
    ):
        if device.type == "cpu":
            deterministic_algorithms()
        torch.manual_seed(spec.config["fit"]["seed"] + seed_offset)
        self.model, self.device, self.request = model, device, request
        #: each model output's loss
        self.losses = [loss] if isinstance(loss, Loss) else list(loss)
        self.network = TorchNetwork(model.graph, model.params).to(device)
        module = wrap(self.network) if wrap is not None else None
        weights = [output.loss_weight for output in model_outputs(spec.config)]
        self.torch_step = TorchStep(self.network, loss, spec.config["compile"]["optimizer"], module, weights)
        self.optimizer = LearningRate(self.torch_step.optimizer, self.torch_step.schedule)
        for layer in self.network.nodes():
            if isinstance(layer, Augmentation):  # specforge's transforms, from the run's saved generator
                layer.numpy_masks(dropout_rng)

    def tensors(self, x: Batch, labels: Batch, targets: Batch) -> tuple[Any, Any]:
        """A batch on the device, as the network and the losses take it (a list per model input and per output
        for a model of several)."""
        inputs = [self._on_device(to_torch(each)) for each in (x if isinstance(x, list) else [x])]
        made = self.torch_step.targets(labels, targets)
        wanted = [self._on_device(each) for each in (made if isinstance(made, list) else [made])]
        return (
            inputs if isinstance(x, list) else inputs[0],
            wanted if self.torch_step.several else wanted[0],
        )

    def _on_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self.device, non_blocking=True)

    def example_weights(self, loss: Loss | list[Loss], rows: Any = slice(None)) -> torch.Tensor | None:
        """The weights of the batch's examples ``rows`` on the device (``loss.weights``, which the loop sets for
        a spec that weights its examples, which a model of several outputs cannot), or None."""
        if not isinstance(loss, Loss) or loss.weights is None:
            return None
        return torch.from_numpy(np.asarray(loss.weights[rows], dtype=np.float32)).to(self.device)

    def results(self, value: Any, outputs: Any) -> tuple[list[float], list[np.ndarray]]:
        """Each output's loss value and outputs (what its metrics take: probabilities where the loss took the
        logits) from a step's tensors."""
        values = value if self.torch_step.several else [value]
        outs = outputs if self.torch_step.several else [outputs]
        return [float(each) for each in values], [
            loss.to_probabilities(to_numpy(out.cpu()), fused)
            for loss, out, fused in zip(self.losses, outs, self.torch_step.fused_each, strict=True)
        ]

    def as_taken(self, values: list[float], outputs: list[np.ndarray]) -> tuple[Any, Any]:
        """What the loop takes of a step (``Steps.step``): the values themselves for one output, lists for several."""
        return (values, outputs) if self.torch_step.several else (values[0], outputs[0])

    def step(self, x: Batch, labels: Batch, targets: Batch, loss: Loss | list[Loss]) -> tuple[Any, Any]:
        value, outputs = self.torch_step.step(*self.tensors(x, labels, targets), weights=self.example_weights(loss))
        return self.as_taken(*self.results(value, outputs))

    def weight_average(self, momentum: float, overwrite_frequency: int | None) -> TorchWeightAverage:
        return TorchWeightAverage(self.network, self.model, momentum, overwrite_frequency)

    def pull(self) -> None:
        self.model.set_weights(self.network.specforge_params())

    def push(self) -> None:
        self.network.load_specforge_params(self.model.params)

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's tensors as arrays (``state.PARAM.SLOT``), the rest as JSON values, and the random
        state of PyTorch's generators."""
        state = self.torch_step.optimizer.state_dict()
        flat: dict[str, Any] = {key: value for key, value in state.items() if key != "state"}
        for index, slots in state["state"].items():
            for name, value in slots.items():
                flat[f"state.{index}.{name}"] = value.cpu().numpy() if torch.is_tensor(value) else value
        flat["schedule_steps"] = self.torch_step.steps
        flat[CPU_RNG] = torch.get_rng_state().numpy()
        if self.device.type == "cuda":
            flat[CUDA_RNG] = torch.cuda.get_rng_state(self.device).numpy()
        return flat

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "param_groups" not in state:
            raise RunError(
                "the checkpoint holds another backend's optimizer state; resume the run with the backend "
                "it was trained with"
            )
        slots: dict[int, dict[str, Any]] = {}
        plain: dict[str, Any] = {}
        for key, value in state.items():
            if key.startswith("state."):
                _, index, name = key.split(".", 2)
                slots.setdefault(int(index), {})[name] = torch.from_numpy(np.array(value))
            elif key not in (CPU_RNG, CUDA_RNG, "schedule_steps"):
                plain[key] = value
        self.torch_step.optimizer.load_state_dict({**plain, "state": slots})
        self.torch_step.steps = int(state["schedule_steps"])
        torch.set_rng_state(torch.from_numpy(np.array(state[CPU_RNG], dtype=np.uint8)))
        if self.device.type == "cuda" and CUDA_RNG in state:
            torch.cuda.set_rng_state(torch.from_numpy(np.array(state[CUDA_RNG], dtype=np.uint8)), self.device)

    def manifest(self) -> dict[str, Any]:
        device = str(self.device)
        if self.device.type == "cuda":
            device += f" ({torch.cuda.get_device_name(self.device)})"
        return {"backend": "torch", "device": device, "device_request": self.request, "torch": torch.__version__}


def torch_steps_factory(request: str):
    """The factory of TorchSteps on the device ``request`` names (checked now: before a run directory exists)."""
    return functools.partial(TorchSteps, device=resolve_device(request), request=request)
