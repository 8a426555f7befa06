"""Optimizers with Keras 3's update rules, updating parameters in place.

An optimizer keeps its state (moments, velocities) in buffers allocated on the
first step with the parameters' shapes and dtypes, laid end to end in one flat
buffer per kind of state (specforge.ops.flat), and scratch buffers of a
block's size, so a step allocates nothing the size of the weights.  When the parameters
are themselves consecutive views of one buffer (a Model's are), the gradients are
gathered into one and every formula runs over all weights at once, block by
block; otherwise weight by weight.  The updates are elementwise, so either way
gives the same bits.  SGD and Adam (with AdamW) run their update as one pass of a compiled kernel when
the kernels are in use (specforge.ops.kernels), the same float32 operations in the same order.  ``state_dict`` and ``load_state_dict`` carry the state, the
step counter and the current learning rate, so a resumed run continues bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from specforge.base.defaults import with_defaults
from specforge.base.errors import RunError
from specforge.base.registry import Kind, Registry, named_kind_schema
from specforge.ops import flat, kernels
from specforge.ops.scratch import scratch
from specforge.options.schedules import Schedule, learning_rate_schema
from specforge.options.schedules import create as create_schedule


def _number(description: str, default: float, **bounds: float) -> dict:
    return {"type": "number", "description": description, "default": default, **bounds}


def _flag(description: str) -> dict:
    return {"type": "boolean", "description": description, "default": False}


def _clip(description: str) -> dict:
    return {
        "type": ["number", "null"],
        "exclusiveMinimum": 0,
        "default": None,
        "description": description + " null: no clipping. Only one of clipnorm and clipvalue may be set.",
    }


_EPSILON = _number(
    "Small constant added to the denominator for numerical stability; above 0, so that a weight "
    "whose gradient is 0 stays finite.",
    1e-7,
    exclusiveMinimum=0,
)
_MOMENTS = {
    "beta_1": _number(
        "Decay rate of the running mean of the gradients (first moment).", 0.9, minimum=0, exclusiveMaximum=1
    ),
    "beta_2": _number(
        "Decay rate of the running mean of the squared gradients (second moment).", 0.999, minimum=0, exclusiveMaximum=1
    ),
    "epsilon": _EPSILON,
}
_ADAM = {
    **_MOMENTS,
    "amsgrad": _flag("Use the AMSGrad variant: divide by the maximum of the second moments seen so far."),
}


def resolve(spec_value: str | dict) -> dict[str, Any]:
    """The spec's ``compile.optimizer`` (valid against ``OPTIMIZER_SCHEMA``) as a mapping with every option,
    Keras defaults filled in: done once, when the spec is resolved."""
    return with_defaults({"name": spec_value} if isinstance(spec_value, str) else dict(spec_value), OPTIMIZER_SCHEMA)


def create(resolved: Mapping[str, Any]) -> Optimizer:
    """The optimizer a resolved ``compile.optimizer`` (every option given, see ``resolve``) describes."""
    options = dict(resolved)
    return OPTIMIZERS[options.pop("name")](**options)


#: Every optimizer a spec may name, by name: each ``Optimizer`` subclass with a ``name``, as it is defined.
OPTIMIZERS: Registry[type[Optimizer]] = Registry("optimizer", lambda cls: cls.name)


@dataclass(kw_only=True, eq=False)
class Optimizer(Kind, registry=OPTIMIZERS, key="name"):
    """Updates a fixed list of parameters from their gradients, one ``step`` per batch.

    A kind is a keyword-only dataclass whose fields are its options, every one given (``create`` takes them
    from the resolved spec); it is registered by being defined with a ``name``.
    ``learning_rate`` may be changed between steps (schedules do); ``iterations`` counts the steps.
    """

    name: ClassVar[str]
    #: Keras 3's default learning rate.
    default_learning_rate: ClassVar[float] = 0.001
    #: Options besides name, learning_rate, clipnorm and clipvalue: property -> JSON Schema, with defaults.
    hyperparameters: ClassVar[dict[str, dict]] = {}
    #: Valid ``compile.optimizer`` values naming this optimizer, for the documentation and the generic tests.
    examples: ClassVar[list[str | dict]] = []
    #: scratch arrays of a parameter's size that one update needs.
    scratch_count: ClassVar[int] = 1
    learning_rate: float
    clipnorm: float | None
    clipvalue: float | None
    #: Keras' moving average of the weights (``specforge.training.ema``, which the training loop keeps)
    use_ema: bool = False
    ema_momentum: float = 0.99
    ema_overwrite_frequency: int | None = None
    #: the learning-rate schedule asked before every step, when ``learning_rate`` names one
    schedule: Schedule | None = field(default=None, init=False, repr=False)
    iterations: int = field(default=0, init=False)
    _slots: dict[str, list[np.ndarray]] | None = field(default=None, init=False, repr=False)
    _gathered: np.ndarray | None = field(default=None, init=False, repr=False)
    #: the weights of the last step, and their flat view with the state's (None: weight by weight)
    _weights: tuple[np.ndarray, ...] = field(default=(), init=False, repr=False)
    _runs: tuple[np.ndarray, dict[str, np.ndarray]] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.learning_rate, Mapping):
            self.schedule = create_schedule(dict(self.learning_rate))
            self.learning_rate = self.schedule(0)
        self.learning_rate = float(self.learning_rate)

    @property
    def config(self) -> dict[str, Any]:
        """The options, as the resolved spec gives them (without the name)."""
        config = {option.name: getattr(self, option.name) for option in fields(self) if option.init}
        if self.schedule is not None:
            config["learning_rate"] = {"name": self.schedule.name, **self.schedule.config}
        return config

    def slot_names(self) -> tuple[str, ...]:
        """Names of the per-parameter state buffers this configuration needs."""
        return ()

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Update ``params`` in place from ``grads``. Clipping, when configured, rescales ``grads`` in place."""
        if self._slots is None:
            self._slots = {slot: flat.pack(params, self.slot_start(slot)) for slot in self.slot_names()}
            self._weights = ()
        if len(params) != len(self._weights) or any(a is not b for a, b in zip(params, self._weights)):
            self._check_shapes(params)
            self._weights, self._runs = tuple(params), self._flat_runs(params)
        self._clip(grads)
        if self.schedule is not None:
            self.learning_rate = self.schedule(self.iterations)
        t = self.iterations + 1
        self._begin_step(t)
        for param, grad, slots in self._pieces(params, grads):
            for block in flat.blocks(param.size):
                self._update(
                    param[block],
                    grad[block],
                    {slot: value[block] for slot, value in slots.items()},
                    t,
                    self._scratch_for(param[block]),
                )
        self.iterations = t

    def state_dict(self) -> dict[str, np.ndarray | int | float]:
        """Copies of everything a resumed run needs: ``iterations``, ``learning_rate``, ``SLOT.INDEX`` arrays."""
        state: dict[str, np.ndarray | int | float] = {
            "iterations": self.iterations,
            "learning_rate": self.learning_rate,
        }
        for slot, buffers in (self._slots or {}).items():
            state.update({f"{slot}.{index}": buffer.copy() for index, buffer in enumerate(buffers)})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state_dict()`` of an optimizer with the same configuration."""
        slots = self.slot_names()
        arrays = {key: value for key, value in state.items() if key not in ("iterations", "learning_rate")}
        count = len(arrays) // len(slots) if slots else 0
        expected = {f"{slot}.{index}" for slot in slots for index in range(count)}
        if set(arrays) != expected or (slots and not arrays and state["iterations"] > 0):
            raise RunError(
                f"the saved {self.name} state holds {', '.join(sorted(arrays)) or 'no buffers'}, but "
                f"this configuration keeps {', '.join(slots) or 'none'} per weight; resume with the "
                "optimizer settings the run started with"
            )
        self.iterations = int(state["iterations"])
        self.learning_rate = float(state["learning_rate"])
        self._slots = (
            {slot: flat.pack([np.asarray(arrays[f"{slot}.{index}"]) for index in range(count)]) for slot in slots}
            if arrays
            else None
        )
        self._weights = ()

    # -- subclasses ----------------------------------------------------------------------------
    def slot_start(self, slot: str) -> float:
        """The value a state buffer starts from."""
        return 0.0

    def _begin_step(self, t: int) -> None:
        """State shared by all weights, moved once per step before the updates (``t`` counts from 1)."""

    def _update(
        self, param: np.ndarray, grad: np.ndarray, slots: dict[str, np.ndarray], t: int, tmp: list[np.ndarray]
    ) -> None:
        """Update a flat piece of the weights in place from its gradient and its piece of each state buffer
        (``slots``); ``t`` counts steps from 1; ``tmp`` are scratch arrays of its size."""
        raise NotImplementedError

    # -- helpers -------------------------------------------------------------------------------
    def _clip(self, grads: list[np.ndarray]) -> None:
        """Keras' clipnorm (per weight) and clipvalue, in place."""
        if self.clipnorm is not None:
            for grad in grads:
                norm = math.sqrt(float(np.vdot(grad, grad)))
                if norm > self.clipnorm:
                    grad *= self.clipnorm / norm
        elif self.clipvalue is not None:
            for grad in grads:
                np.clip(grad, -self.clipvalue, self.clipvalue, out=grad)

    def _state(self) -> dict[str, list[np.ndarray]]:
        """The state buffers, which ``step`` makes before anything reads them."""
        assert self._slots is not None, "step makes the state buffers first"
        return self._slots

    def _flat_runs(self, params: list[np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        """The flat views of the weights and of each state buffer, when each is one flat buffer."""
        run = flat.run_of(params)
        slot_runs = {slot: flat.run_of(buffers) for slot, buffers in self._state().items()}
        if run is None:
            return None
        flat_slots = {slot: slot_run for slot, slot_run in slot_runs.items() if slot_run is not None}
        return (run, flat_slots) if len(flat_slots) == len(slot_runs) else None

    def _pieces(
        self,
        params: list[np.ndarray],
        grads: list[np.ndarray],
    ) -> list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]]:
        """``(weights, gradients, state)`` as flat arrays: one piece for all the weights when they and the state
        buffers are each one flat buffer (the gradients gathered into one), else one piece per weight."""
        if self._runs is not None:
            run, slot_runs = self._runs
            if self._gathered is None or self._gathered.shape != run.shape or self._gathered.dtype != run.dtype:
                self._gathered = np.empty_like(run)
            np.concatenate([flat_grad.reshape(-1) for flat_grad in grads], out=self._gathered, casting="same_kind")
            return [(run, self._gathered, slot_runs)]
        return [
            (
                flat.flat_view(param),
                grad.reshape(-1),
                {slot: flat.flat_view(buffers[index]) for slot, buffers in self._state().items()},
            )
            for index, (param, grad) in enumerate(zip(params, grads, strict=True))
        ]

    def _scratch_for(self, param: np.ndarray) -> list[np.ndarray]:
        """Scratch arrays of the piece's size."""
        buffer = scratch("optimizer", (self.scratch_count, flat.BLOCK), param.dtype)
        return [row[: param.size] for row in buffer]

    def _check_shapes(self, params: list[np.ndarray]) -> None:
        for buffers in self._state().values():
            if [b.shape for b in buffers] != [p.shape for p in params]:
                raise RunError(
                    f"the {self.name} state was made for weights of shapes {[b.shape for b in buffers]}, "
                    f"not {[p.shape for p in params]}"
                )


def _compiled(*arrays: np.ndarray) -> ModuleType | None:
    """The compiled kernels when they are in use and take these arrays (float32, contiguous), else None."""
    return kernels.active() if kernels.takes(*arrays) else None


def move_moments(
    m: np.ndarray, v: np.ndarray, grad: np.ndarray, beta_1: float, beta_2: float, work: np.ndarray
) -> None:
    """Adam's running means, in place: m += (g - m)(1 - beta_1); v += (g^2 - v)(1 - beta_2)."""
    np.subtract(grad, m, out=work)
    work *= 1 - beta_1
    m += work
    np.multiply(grad, grad, out=work)
    work -= v
    work *= 1 - beta_2
    v += work


@dataclass(kw_only=True, eq=False)
class SGD(Optimizer):
    """velocity = momentum * velocity - lr * g; weights += velocity
    (Nesterov: weights += momentum * velocity - lr * g). Without momentum: weights -= lr * g."""

    name = "sgd"
    default_learning_rate = 0.01
    hyperparameters = {
        "momentum": _number(
            "Momentum: velocity = momentum * velocity - learning_rate * gradient. 0 is plain gradient descent.",
            0.0,
            minimum=0,
            maximum=1,
        ),
        "nesterov": _flag("Use Nesterov momentum."),
    }
    examples = [{"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True}]
    scratch_count = 2
    momentum: float
    nesterov: bool

    def slot_names(self):
        return ("velocity",) if self.momentum != 0 else ()

    def _update(self, param, grad, slots, t, tmp):
        compiled = _compiled(param, grad, *slots.values())
        if compiled is not None:
            velocity = slots.get("velocity", param[:0])
            compiled.sgd(
                param, grad, velocity, *np.array([self.learning_rate, self.momentum], np.float32), self.nesterov
            )
            return
        scaled = np.multiply(grad, self.learning_rate, out=tmp[0])
        if self.momentum == 0:
            param -= scaled
            return
        velocity = slots["velocity"]
        velocity *= self.momentum
        velocity -= scaled
        if self.nesterov:
            change = np.multiply(velocity, self.momentum, out=tmp[1])
            change -= scaled
            param += change
        else:
            param += velocity


@dataclass(kw_only=True, eq=False)
class Adam(Optimizer):
    """m += (g - m)(1 - beta_1); v += (g^2 - v)(1 - beta_2);
    weights -= lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon).
    AMSGrad divides by the running maximum of v instead."""

    name = "adam"
    hyperparameters = _ADAM
    examples = ["adam", {"name": "adam", "learning_rate": 0.0005, "amsgrad": True, "clipnorm": 1.0}]
    beta_1: float
    beta_2: float
    epsilon: float
    amsgrad: bool

    def slot_names(self):
        return ("m", "v", "v_hat") if self.amsgrad else ("m", "v")

    def _update(self, param, grad, slots, t, tmp):
        (work,) = tmp
        m, v = slots["m"], slots["v"]
        alpha = self.learning_rate * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        compiled = _compiled(param, grad, *slots.values())
        if compiled is not None:
            scalars = np.array([1 - self.beta_1, 1 - self.beta_2, self.epsilon, alpha], np.float32)
            compiled.adam(param, grad, m, v, slots.get("v_hat", param[:0]), self.amsgrad, *scalars)
            return
        move_moments(m, v, grad, self.beta_1, self.beta_2, work)
        if self.amsgrad:
            v = np.maximum(slots["v_hat"], v, out=slots["v_hat"])
        np.sqrt(v, out=work)
        work += self.epsilon
        np.divide(m, work, out=work)
        work *= alpha
        param -= work


@dataclass(kw_only=True, eq=False)
class AdamW(Adam):
    """Adam with decoupled weight decay: each step first does weights -= lr * weight_decay * weights."""

    name = "adamw"
    hyperparameters = {
        "weight_decay": _number(
            "Decoupled weight decay: each step first does weights -= learning_rate * weight_decay * weights.",
            0.004,
            minimum=0,
        ),
        **_ADAM,
    }
    examples = [{"name": "adamw", "weight_decay": 0.01, "clipvalue": 0.5}]
    weight_decay: float

    def _update(self, param, grad, slots, t, tmp):
        if self.weight_decay:
            decay = np.multiply(param, self.learning_rate * self.weight_decay, out=tmp[0])
            param -= decay
        super()._update(param, grad, slots, t, tmp)


@dataclass(kw_only=True, eq=False)
class RMSprop(Optimizer):
    """v = rho v + (1 - rho) g^2; step = lr g / sqrt(v + epsilon) (centered: sqrt(v - a^2 + epsilon),
    a = rho a + (1 - rho) g); with momentum: velocity = momentum * velocity + step; weights -= velocity."""

    name = "rmsprop"
    hyperparameters = {
        "rho": _number("Decay rate of the running mean of the squared gradients.", 0.9, minimum=0, exclusiveMaximum=1),
        "momentum": _number("Momentum applied to the scaled update; 0: none.", 0.0, minimum=0, maximum=1),
        "epsilon": _EPSILON,
        "centered": _flag(
            "Divide by an estimate of the gradient's variance instead of its raw second "
            "moment (slower, sometimes more stable)."
        ),
    }
    examples = ["rmsprop", {"name": "rmsprop", "rho": 0.95, "momentum": 0.5, "centered": True}]
    scratch_count = 2
    rho: float
    momentum: float
    epsilon: float
    centered: bool

    def slot_names(self):
        return ("v",) + (("mean_gradient",) if self.centered else ()) + (("velocity",) if self.momentum > 0 else ())

    def _update(self, param, grad, slots, t, tmp):
        denominator, change = tmp
        v = slots["v"]
        v *= self.rho
        np.multiply(grad, grad, out=denominator)
        denominator *= 1 - self.rho
        v += denominator
        if self.centered:
            mean = slots["mean_gradient"]
            mean *= self.rho
            np.multiply(grad, 1 - self.rho, out=denominator)
            mean += denominator
            np.multiply(mean, mean, out=denominator)
            np.subtract(v, denominator, out=denominator)
            denominator += self.epsilon
        else:
            np.add(v, self.epsilon, out=denominator)
        np.sqrt(denominator, out=denominator)
        np.multiply(grad, self.learning_rate, out=change)
        change /= denominator
        if self.momentum > 0:
            velocity = slots["velocity"]
            velocity *= self.momentum
            velocity += change
            param -= velocity
        else:
            param -= change


@dataclass(kw_only=True, eq=False)
class Adagrad(Optimizer):
    """accumulator = initial_accumulator_value + sum of g^2 so far; weights -= lr g / sqrt(accumulator + epsilon)."""

    name = "adagrad"
    hyperparameters = {
        "initial_accumulator_value": _number(
            "Starting value of each weight's sum of squared gradients.", 0.1, minimum=0
        ),
        "epsilon": _EPSILON,
    }
    examples = ["adagrad", {"name": "adagrad", "learning_rate": 0.01, "initial_accumulator_value": 0.05}]
    initial_accumulator_value: float
    epsilon: float

    def slot_names(self):
        return ("accumulator",)

    def slot_start(self, slot):
        return self.initial_accumulator_value

    def _update(self, param, grad, slots, t, tmp):
        (work,) = tmp
        accumulator = slots["accumulator"]
        np.multiply(grad, grad, out=work)
        accumulator += work
        np.add(accumulator, self.epsilon, out=work)
        np.sqrt(work, out=work)
        np.divide(grad, work, out=work)
        work *= self.learning_rate
        param -= work


@dataclass(kw_only=True, eq=False)
class Nadam(Optimizer):
    """Adam with Nesterov momentum, as Keras 3: with the momentum schedule u_t = beta_1 (1 - 0.5 * 0.96^t)
    and its running product U_t = u_1 ... u_t,
    m += (g - m)(1 - beta_1); v += (g^2 - v)(1 - beta_2);
    m_hat = u_{t+1} m / (1 - U_t u_{t+1}) + (1 - u_t) g / (1 - U_t); v_hat = v / (1 - beta_2^t);
    weights -= lr m_hat / (sqrt(v_hat) + epsilon)."""

    name = "nadam"
    hyperparameters = _MOMENTS
    examples = ["nadam", {"name": "nadam", "beta_1": 0.95, "clipnorm": 1.0}]
    scratch_count = 2
    beta_1: float
    beta_2: float
    epsilon: float

    _u_product: float = field(default=1.0, init=False, repr=False)

    def slot_names(self):
        return ("m", "v")

    def momentum_at(self, t: int) -> float:
        """The momentum schedule u_t."""
        return self.beta_1 * (1.0 - 0.5 * 0.96**t)

    def _begin_step(self, t):
        self._u_product *= self.momentum_at(t)

    def load_state_dict(self, state):
        """The running product is a function of the step count: redone in the order training did it."""
        super().load_state_dict(state)
        self._u_product = 1.0
        for t in range(1, self.iterations + 1):
            self._begin_step(t)

    def _update(self, param, grad, slots, t, tmp):
        work, m_hat = tmp
        m, v = slots["m"], slots["v"]
        u_t, u_next = self.momentum_at(t), self.momentum_at(t + 1)
        move_moments(m, v, grad, self.beta_1, self.beta_2, work)
        np.multiply(m, u_next / (1 - self._u_product * u_next), out=m_hat)
        np.multiply(grad, (1 - u_t) / (1 - self._u_product), out=work)
        m_hat += work
        np.divide(v, 1 - self.beta_2**t, out=work)
        np.sqrt(work, out=work)
        work += self.epsilon
        np.divide(m_hat, work, out=work)
        work *= self.learning_rate
        param -= work


def _properties(name: str) -> dict[str, dict]:
    """Every option of optimizer ``name`` besides the name, with its Keras default."""
    return {
        "learning_rate": learning_rate_schema(OPTIMIZERS[name].default_learning_rate),
        **OPTIMIZERS[name].hyperparameters,
        "clipnorm": _clip("Rescale each weight's gradient so that its L2 norm is at most this value."),
        "clipvalue": _clip("Clip each gradient element to [-clipvalue, clipvalue]."),
        **_EMA,
    }


_EMA = {
    "use_ema": _flag(
        "Keep an exponential moving average of the weights (Keras' use_ema): validation runs on "
        "it and the run's final weights, and so its export, are the averages."
    ),
    "ema_momentum": _number(
        "Momentum of the average: average = m * average + (1 - m) * weights after each step.",
        0.99,
        minimum=0,
        maximum=1,
    ),
    "ema_overwrite_frequency": {
        "type": ["integer", "null"],
        "minimum": 1,
        "default": None,
        "description": "Overwrite the weights with their averages every this many steps; "
        "null: only at the end of training.",
    },
}


OPTIMIZER_NAMES = OPTIMIZERS.names()


OPTIMIZER_SCHEMA = {
    "description": "How the weights are updated (Keras 3 update rules and defaults): a name, e.g. adam, for "
    "the defaults, or a mapping with the name and the options to change, e.g. "
    "{name: adam, learning_rate: 0.0005}.",
    "type": ["string", "object"],
    "default": "rmsprop",
    "allOf": named_kind_schema("optimizer", {name: _properties(name) for name in OPTIMIZER_NAMES}),
    "examples": ["adam", {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True}],
}
