"""Learning-rate schedules with Keras 3's formulas, names (snake case) and arguments, stepped per batch.

A schedule is written where the learning rate is: ``compile.optimizer.learning_rate: {name: cosine_decay,
initial_learning_rate: 0.001, decay_steps: 2000, warmup_target: 0.01, warmup_steps: 200}``.  The optimizer
asks it for the rate before every update, at ``step`` = the updates done so far (Keras'
``optimizer.iterations``), which checkpoints keep, so a resumed run continues the schedule where it was.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from specforge.base.defaults import with_defaults
from specforge.base.registry import Kind, Registry, named_kind_schema


def _positive(description: str, **extra: Any) -> dict:
    return {"type": "number", "exclusiveMinimum": 0, "description": description, **extra}


def _steps(description: str, minimum: int = 1, **extra: Any) -> dict:
    return {"type": "integer", "minimum": minimum, "description": description, **extra}


_INITIAL = {"initial_learning_rate": {"type": "number", "minimum": 0, "description": "The learning rate at step 0."}}


#: Every schedule a spec may name, by name: each ``Schedule`` subclass with a ``name``, as it is defined.
SCHEDULES: Registry[type[Schedule]] = Registry("learning-rate schedule", lambda cls: cls.name)


class Schedule(Kind, registry=SCHEDULES, key="name"):
    """The learning rate as a function of the step (``rate(step)``); options are the schema's, with defaults."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: option -> JSON Schema, with defaults for the optional ones
    options: ClassVar[dict[str, dict]] = {}
    required: ClassVar[tuple[str, ...]] = ()
    examples: ClassVar[list[dict]] = []

    def __init__(self, **options: Any):
        self.config = with_defaults(options, {"properties": self.options})

    def __getattr__(self, name: str) -> Any:
        """An option's value, as an attribute (``self.decay_steps``)."""
        try:
            return self.__dict__["config"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"

    def __call__(self, step: int) -> float:
        return float(self.rate(step))

    def rate(self, step: int) -> float:
        raise NotImplementedError

    def warmup_length(self) -> int:
        """Steps spent warming up (0 for the schedules without warmup)."""
        return 0


class ExponentialDecay(Schedule):
    name = "exponential_decay"
    description = "initial_learning_rate * decay_rate ^ (step / decay_steps) (the exponent floored when staircase)."
    options = {
        **_INITIAL,
        "decay_steps": _steps("Steps per decay_rate factor."),
        "decay_rate": _positive("The factor per decay_steps."),
        "staircase": {
            "type": "boolean",
            "default": False,
            "description": "Decay in whole steps of decay_steps (floor the exponent).",
        },
    }
    required = ("initial_learning_rate", "decay_steps", "decay_rate")
    examples = [{"name": "exponential_decay", "initial_learning_rate": 0.01, "decay_steps": 100, "decay_rate": 0.9}]

    def rate(self, step):
        exponent = step / self.decay_steps
        return self.initial_learning_rate * self.decay_rate ** (math.floor(exponent) if self.staircase else exponent)


class PiecewiseConstantDecay(Schedule):
    name = "piecewise_constant_decay"
    description = "values[0] up to step boundaries[0], values[i] up to boundaries[i], the last value after."
    options = {
        "boundaries": {
            "type": "array",
            "items": {"type": "integer", "minimum": 0},
            "minItems": 1,
            "description": "Increasing steps where the rate changes.",
        },
        "values": {
            "type": "array",
            "items": {"type": "number", "exclusiveMinimum": 0},
            "minItems": 2,
            "description": "The rates: one more than boundaries.",
        },
    }
    required = ("boundaries", "values")
    examples = [{"name": "piecewise_constant_decay", "boundaries": [100, 200], "values": [0.01, 0.005, 0.001]}]

    def rate(self, step):
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]


class PolynomialDecay(Schedule):
    name = "polynomial_decay"
    description = (
        "(initial_learning_rate - end_learning_rate) * (1 - step / decay_steps) ^ power + "
        "end_learning_rate, then end_learning_rate (or restarting when cycle)."
    )
    options = {
        **_INITIAL,
        "decay_steps": _steps("Steps to reach end_learning_rate."),
        "end_learning_rate": {
            "type": "number",
            "minimum": 0,
            "default": 0.0001,
            "description": "The rate after decay_steps.",
        },
        "power": _positive("The polynomial's power (1: linear).", default=1.0),
        "cycle": {
            "type": "boolean",
            "default": False,
            "description": "Past decay_steps, decay again over the next multiple of decay_steps.",
        },
    }
    required = ("initial_learning_rate", "decay_steps")
    examples = [{"name": "polynomial_decay", "initial_learning_rate": 0.01, "decay_steps": 1000, "power": 2.0}]

    def rate(self, step):
        decay_steps = self.decay_steps
        if self.cycle:
            decay_steps *= max(math.ceil(step / decay_steps), 1)
        else:
            step = min(step, decay_steps)
        fraction = 1 - step / decay_steps
        return (self.initial_learning_rate - self.end_learning_rate) * fraction**self.power + self.end_learning_rate


def _cosine(fraction: float, alpha: float) -> float:
    return (1 - alpha) * 0.5 * (1 + math.cos(math.pi * fraction)) + alpha


class CosineDecay(Schedule):
    name = "cosine_decay"
    description = (
        "A linear warmup from initial_learning_rate to warmup_target over warmup_steps (when "
        "warmup_target is set), then a cosine decay to alpha times the rate over decay_steps."
    )
    options = {
        **_INITIAL,
        "decay_steps": _steps("Steps of the cosine decay."),
        "alpha": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.0,
            "description": "The final rate as a fraction of the rate the decay starts from.",
        },
        "warmup_target": {
            "type": ["number", "null"],
            "exclusiveMinimum": 0,
            "default": None,
            "description": "The rate the warmup reaches and the decay starts from; null: no "
            "warmup, the decay starts from initial_learning_rate.",
        },
        "warmup_steps": _steps("Steps of the linear warmup (with warmup_target).", minimum=0, default=0),
    }
    required = ("initial_learning_rate", "decay_steps")
    examples = [
        {
            "name": "cosine_decay",
            "initial_learning_rate": 0.0,
            "decay_steps": 1000,
            "warmup_target": 0.001,
            "warmup_steps": 100,
        },
        {"name": "cosine_decay", "initial_learning_rate": 0.01, "decay_steps": 500, "alpha": 0.1},
    ]

    def warmup_length(self) -> int:
        return self.config["warmup_steps"] if self.config["warmup_target"] is not None else 0

    def rate(self, step):
        if self.warmup_target is None:
            return self.initial_learning_rate * _cosine(min(step, self.decay_steps) / self.decay_steps, self.alpha)
        warmup = self.warmup_steps
        step = min(step, self.decay_steps + warmup)
        if step < warmup:
            return self.initial_learning_rate + (self.warmup_target - self.initial_learning_rate) * step / warmup
        return self.warmup_target * _cosine((step - warmup) / self.decay_steps, self.alpha)


class CosineDecayRestarts(Schedule):
    name = "cosine_decay_restarts"
    description = (
        "Cosine decays that restart: the first over first_decay_steps, each next one t_mul times "
        "longer and starting m_mul times lower (SGDR)."
    )
    options = {
        **_INITIAL,
        "first_decay_steps": _steps("Steps of the first decay."),
        "t_mul": _positive("How many times longer each period is than the one before.", default=2.0),
        "m_mul": _positive("The factor of each restart's initial rate.", default=1.0),
        "alpha": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.0,
            "description": "The lowest rate as a fraction of initial_learning_rate.",
        },
    }
    required = ("initial_learning_rate", "first_decay_steps")
    examples = [{"name": "cosine_decay_restarts", "initial_learning_rate": 0.01, "first_decay_steps": 100}]

    def rate(self, step):
        fraction = step / self.first_decay_steps
        if self.t_mul == 1:
            restart = math.floor(fraction)
            fraction -= restart
        else:
            restart = math.floor(math.log(1 - fraction * (1 - self.t_mul)) / math.log(self.t_mul))
            done = (1 - self.t_mul**restart) / (1 - self.t_mul)
            fraction = (fraction - done) / self.t_mul**restart
        cosine = 0.5 * self.m_mul**restart * (1 + math.cos(math.pi * fraction))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)


def learning_rate_schema(default: float) -> dict:
    """An optimizer's ``learning_rate``: a number, or a mapping naming a schedule and its options."""
    rules = named_kind_schema("learning-rate schedule", {name: cls.options for name, cls in SCHEDULES.items()})
    for rule, cls in zip(rules[2:], SCHEDULES.values()):
        rule["then"]["required"] = list(cls.required)
    return {
        "type": ["number", "object"],
        "exclusiveMinimum": 0,
        "default": default,
        "description": "Step size: a number, or a schedule stepped per batch, a mapping with its name and "
        f"options ({', '.join(SCHEDULES)}; Keras' LearningRateSchedules), e.g. "
        "{name: cosine_decay, initial_learning_rate: 0.001, decay_steps: 2000}.",
        "allOf": rules[1:],
    }


def create(spec_value: dict) -> Schedule:
    """The schedule a ``learning_rate`` mapping names (valid against ``learning_rate_schema``)."""
    options = dict(spec_value)
    return SCHEDULES[options.pop("name")](**options)
