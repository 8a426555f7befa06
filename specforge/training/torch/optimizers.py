"""specforge's optimizers (Keras 3's update rules and defaults) in PyTorch.

SGD, Adam, AdamW and Nadam are PyTorch's own, set up to take Keras' steps: Keras adds Adam's epsilon
to ``sqrt(v)`` before the bias correction of ``v``, PyTorch after it, so the PyTorch epsilon of step
``t`` is Keras' divided by ``sqrt(1 - beta_2^t)``; Keras' Nadam momentum schedule is PyTorch's with
``momentum_decay`` 1. RMSprop and Adagrad add epsilon under the square root in Keras and outside it
in PyTorch, which no setting changes: they are written here with PyTorch's tensor operations.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from specforge.options.optimizers import resolve
from specforge.options.schedules import create as create_schedule


class KerasEpsilon(torch.optim.Optimizer):
    """Put before PyTorch's Adam or AdamW among a class's bases: epsilon where Keras adds it."""

    def __init__(self, params: Iterable[torch.Tensor], **options: Any):
        super().__init__(params, **options)
        self.keras_epsilon = options["eps"]
        self.steps = 0

    def step(self, closure=None):
        self.steps += 1
        for group in self.param_groups:
            group["eps"] = self.keras_epsilon / math.sqrt(1 - group["betas"][1] ** self.steps)
        return super().step(closure)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "keras_steps": self.steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        self.steps = int(state_dict.pop("keras_steps"))
        super().load_state_dict(state_dict)


class KerasAdam(KerasEpsilon, torch.optim.Adam):
    pass


class KerasAdamW(KerasEpsilon, torch.optim.AdamW):
    pass


class ForeachOptimizer(torch.optim.Optimizer):
    """An optimizer whose update is written with PyTorch's ``torch._foreach_*`` operations: each operation
    runs over all of a group's weights in one call, rather than one Python call per weight."""

    #: each slot of a weight's state, and the value it starts at (an option of the group's, or a number)
    slots: dict[str, str | float] = {}

    def group_state(self, group: dict[str, Any]) -> tuple[list[torch.Tensor], list[torch.Tensor], dict[str, list]]:
        """The group's weights that have gradients, their gradients and their state by slot (made on their first
        step)."""
        params = [param for param in group["params"] if param.grad is not None]
        for param in params:
            state = self.state[param]
            if not state:
                for name, start in self.slots.items():
                    state[name] = torch.full_like(param, group[start] if isinstance(start, str) else start)
        slots = {name: [self.state[param][name] for param in params] for name in self.slots}
        return params, [param.grad for param in params], slots


class KerasRMSprop(ForeachOptimizer):
    """v = rho v + (1 - rho) g^2; step = lr g / sqrt(v + epsilon) (centered: sqrt(v - a^2 + epsilon),
    a = rho a + (1 - rho) g); with momentum: velocity = momentum * velocity + step; weights -= velocity."""

    slots = {"v": 0.0, "mean": 0.0, "velocity": 0.0}

    def __init__(
        self, params: Iterable[torch.Tensor], lr: float, rho: float, momentum: float, eps: float, centered: bool
    ):
        super().__init__(params, {"lr": lr, "rho": rho, "momentum": momentum, "eps": eps, "centered": centered})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params, grads, state = self.group_state(group)
            rho = group["rho"]
            torch._foreach_mul_(state["v"], rho)
            torch._foreach_addcmul_(state["v"], grads, grads, value=1 - rho)
            denominators = torch._foreach_add(state["v"], group["eps"])
            if group["centered"]:
                torch._foreach_mul_(state["mean"], rho)
                torch._foreach_add_(state["mean"], grads, alpha=1 - rho)
                torch._foreach_sub_(denominators, torch._foreach_mul(state["mean"], state["mean"]))
            torch._foreach_sqrt_(denominators)
            changes = torch._foreach_mul(grads, group["lr"])
            torch._foreach_div_(changes, denominators)
            momentum = group["momentum"]
            if momentum > 0:
                torch._foreach_mul_(state["velocity"], momentum)
                torch._foreach_add_(state["velocity"], changes)
            torch._foreach_sub_(params, state["velocity"] if momentum > 0 else changes)


class KerasAdagrad(ForeachOptimizer):
    """accumulator = initial_accumulator_value + sum of g^2 so far; weights -= lr g / sqrt(accumulator + epsilon)."""

    slots = {"accumulator": "initial"}

    def __init__(self, params: Iterable[torch.Tensor], lr: float, initial_accumulator_value: float, eps: float):
        super().__init__(params, {"lr": lr, "initial": initial_accumulator_value, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params, grads, state = self.group_state(group)
            torch._foreach_addcmul_(state["accumulator"], grads, grads)
            denominators = torch._foreach_add(state["accumulator"], group["eps"])
            torch._foreach_sqrt_(denominators)
            torch._foreach_addcdiv_(params, grads, denominators, value=-group["lr"])


def torch_optimizer(spec_value: str | dict, params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
    """The PyTorch optimizer taking the steps of a spec's ``compile.optimizer``."""
    options = resolve(spec_value)
    name, lr = options["name"], options["learning_rate"]
    if isinstance(lr, dict):  # a schedule: TwinTrainer sets each step's rate
        lr = create_schedule(lr)(0)
    if name == "sgd":
        momentum = options["momentum"]
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=options["nesterov"] and momentum > 0)
    if name in ("adam", "adamw"):
        betas, eps, amsgrad = (options["beta_1"], options["beta_2"]), options["epsilon"], options["amsgrad"]
        if name == "adam":
            return KerasAdam(params, lr=lr, betas=betas, eps=eps, amsgrad=amsgrad)
        return KerasAdamW(params, lr=lr, betas=betas, eps=eps, amsgrad=amsgrad, weight_decay=options["weight_decay"])
    if name == "nadam":
        return torch.optim.NAdam(
            params, lr=lr, betas=(options["beta_1"], options["beta_2"]), eps=options["epsilon"], momentum_decay=1.0
        )
    if name == "rmsprop":
        return KerasRMSprop(params, lr, options["rho"], options["momentum"], options["epsilon"], options["centered"])
    if name == "adagrad":
        return KerasAdagrad(params, lr, options["initial_accumulator_value"], options["epsilon"])
    raise ValueError(f"the PyTorch backend has no {name} optimizer")


def clip_gradients(params: Iterable[torch.Tensor], clipnorm: float | None, clipvalue: float | None) -> None:
    """Keras' clipnorm (per weight) or clipvalue, on the gradients in place (a spec's optimizer options)."""
    if clipnorm is None and clipvalue is None:
        return
    with torch.no_grad():
        for param in params:
            grad = param.grad
            if grad is None:
                continue
            if clipnorm is not None:
                norm = float(torch.linalg.vector_norm(grad))
                if norm > clipnorm:
                    grad.mul_(clipnorm / norm)
            elif clipvalue is not None:
                grad.clamp_(-clipvalue, clipvalue)
