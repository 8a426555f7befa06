"""What trains a run: the step function the training loop calls for each batch.

The loop (specforge.training.loop) owns everything around a step: batches and their order, progress,
validation, callbacks, checkpoints and the run directory. A backend owns the weights while they
train and the optimizer: ``numpy`` (the reference, specforge's own math) or ``torch`` (the graph
lowered to PyTorch, specforge.training.torch, on a CPU or a CUDA device). The ``ray`` backend is the
torch one run data-parallel by Ray Train (specforge.training.torch.ray_train), each worker a loop of
its own. Between epochs the loop reads the weights from the numpy ``Model`` (``pull``), which
evaluates, saves and hands weights to callbacks whichever backend trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np

from specforge.base.errors import RunError
from specforge.options.callbacks import LearningRateHolder
from specforge.options.losses import Loss
from specforge.options.optimizers import Optimizer
from specforge.training.model import Model

if TYPE_CHECKING:
    from specforge.spec import Spec

#: The names ``fit.backend`` and ``train --backend`` take.
BACKENDS = ("numpy", "torch", "ray")
#: The names ``train --device`` takes.
DEVICES = ("cpu", "cuda", "auto")


class Steps(Protocol):
    """A backend as the loop sees it."""

    #: what callbacks read and change (``learning_rate``)
    optimizer: LearningRateHolder

    def step(self, x: np.ndarray, labels: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
        """One gradient step on a batch: ``(loss value, outputs)``, the outputs as the model's forward
        gives them (probabilities for a softmax classifier), for the metrics."""

    def pull(self) -> None:
        """Copy the backend's current weights into the numpy model."""

    def push(self) -> None:
        """Copy the numpy model's weights into the backend (after a checkpoint or a callback set them)."""

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's (and the backend's random) state: arrays and JSON-able values."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""

    def manifest(self) -> dict[str, Any]:
        """What the run's manifest records about the backend (its name, device, versions)."""


class NumpySteps:
    """The numpy backend: ``Model.train_step`` with specforge's optimizer; the weights are the model's own."""

    def __init__(self, model: Model, spec: Spec, loss: Loss, optimizer: Optimizer, dropout_rng: np.random.Generator):
        self.model, self.loss, self.optimizer, self.dropout_rng = model, loss, optimizer, dropout_rng

    def step(self, x: np.ndarray, labels: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
        return self.model.train_step(x, targets, self.loss, self.optimizer, self.dropout_rng)

    def pull(self) -> None:
        """The weights are the model's: nothing to copy."""

    def push(self) -> None:
        """The weights are the model's: nothing to copy."""

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)

    def manifest(self) -> dict[str, Any]:
        return {"backend": "numpy"}


#: ``(model, spec, loss, optimizer, dropout generator) -> Steps``
StepsFactory = Callable[[Model, "Spec", Loss, Optimizer, np.random.Generator], Steps]


def steps_factory(backend: str, device: str = "cpu") -> StepsFactory:
    """The factory of ``backend``'s steps in this process (``ray``'s workers run ``torch`` steps)."""
    if backend == "numpy":
        return NumpySteps
    from specforge.training.torch import require_torch

    require_torch()
    from specforge.training.torch.backend import torch_steps_factory

    return torch_steps_factory(device)


#: Ray workers when ``--workers`` is not given: the local Ray's CPUs (specforge.base.raycluster.LOCAL_CPUS).
DEFAULT_WORKERS = 2


@dataclass(frozen=True)
class BackendChoice:
    """The backend a run trains with, the device asked for (cpu, cuda, auto) and, on Ray, its workers."""

    name: str
    device: str
    workers: int


def choose_backend(spec: Spec | None, resume: str | Path | None, backend: str | None, device: str | None,
                   workers: int | None) -> BackendChoice:
    """The backend of a new run (``backend``, else the spec's ``fit.backend``) or of a resumed one (the one it
    started with, and its device and workers unless given); RunError for a combination that cannot be."""
    if resume is not None:
        from specforge.runs import directory as runs

        manifest = runs.read_json(runs.resolve_run_path(resume) / runs.MANIFEST)
        recorded = manifest.get("backend", "numpy")
        if backend is not None and backend != recorded:
            raise RunError(f"the run was trained with the {recorded} backend and resumes on it; leave out --backend",
                           file=f"--backend {backend}")
        name = recorded
        device = device or manifest.get("device_request")
        workers = workers or manifest.get("workers")
    else:
        name = backend or (spec.config["fit"].get("backend", "numpy") if spec is not None else "numpy")
    if name not in BACKENDS:
        raise RunError(f"no backend {name!r}; the backends: {', '.join(BACKENDS)}", file=f"--backend {name}")
    if device is not None and device not in DEVICES:
        raise RunError(f"no device {device!r}; give one of {', '.join(DEVICES)}", file=f"--device {device}")
    if device is not None and name == "numpy":
        raise RunError("the numpy backend trains on this machine's CPU; --device is for --backend torch or ray",
                       file=f"--device {device}")
    if workers is not None and name != "ray":
        raise RunError("--workers is for --backend ray (data-parallel workers on a Ray cluster)",
                       file=f"--workers {workers}")
    return BackendChoice(name, device or "auto", workers or DEFAULT_WORKERS)
