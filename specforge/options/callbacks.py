"""Callbacks: early stopping, keep-best checkpoint and learning-rate schedules.

The protocol between the training loop and a callback:

- The loop passes itself as ``trainer`` (see ``Trainer``): ``trainer.optimizer.learning_rate`` is read
  and set by the schedules, ``trainer.stop_training = True`` asks the loop to stop after the current
  epoch, ``get_weights()`` returns copies of the weights, ``set_weights(weights)`` restores them, and
  ``save_best(epoch, logs)`` writes the current weights to best.npz in the run directory atomically.
- Calls, in the order of the callbacks list: ``on_train_begin(trainer)`` once per ``fit`` (again after
  a resume), then per epoch ``on_epoch_begin(epoch, trainer)`` and ``on_epoch_end(epoch, logs,
  trainer)``, finally ``on_train_end(trainer)``, also when a callback stopped training. Epochs count
  from 0 across resumes. ``logs`` maps the names Keras reports (``loss``, ``accuracy``, ``val_loss``,
  ``val_accuracy``, ...) to the epoch's values.
- Resume: ``state_dict()`` returns what a callback has learned so far (numbers, None, and arrays under
  ``NAME.INDEX`` keys), saved with each epoch's checkpoint; a resumed run builds its callbacks afresh,
  calls ``load_state_dict(state)`` and then ``on_train_begin``, which never resets learned state, so it
  continues exactly as an uninterrupted run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from specforge.base.defaults import with_defaults
from specforge.base.errors import SpecError
from specforge.base.registry import Kind, Registry

SCHEDULES = ("step", "exponential", "cosine")

_MONITOR = {
    "type": "string",
    "minLength": 1,
    "default": "val_loss",
    "description": "The quantity watched: loss or a metric name (accuracy, precision, ...), with the prefix "
    "val_ for its value on the validation data.",
}
_MODE = {
    "enum": ["auto", "min", "max"],
    "default": "auto",
    "description": "min: better when the monitored value goes down; max: when it goes up; "
    "auto: min for losses, max for metrics.",
}


def _patience(default: int, what: str) -> dict:
    return {
        "type": "integer",
        "minimum": 0,
        "default": default,
        "description": f"Epochs without improvement before {what}.",
    }


def _min_delta(default: float) -> dict:
    return {
        "type": "number",
        "minimum": 0,
        "default": default,
        "description": "A change smaller than this does not count as an improvement.",
    }


#: Options of each learning-rate schedule besides ``type`` and ``schedule``.
SCHEDULE_OPTIONS: dict[str, dict[str, dict]] = {
    "step": {
        "step_size": {
            "type": "integer",
            "minimum": 1,
            "description": "Multiply the learning rate by gamma every step_size epochs. Required.",
        },
        "gamma": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 0.1,
            "description": "Factor applied every step_size epochs: lr = initial_lr * gamma ** "
            "floor(epoch / step_size), epochs counted from 0.",
        },
    },
    "exponential": {
        "decay_rate": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "Factor applied every epoch: lr = initial_lr * decay_rate ** epoch, "
            "epochs counted from 0. Required.",
        },
    },
    "cosine": {
        "total_epochs": {
            "type": ["integer", "null"],
            "minimum": 1,
            "default": None,
            "description": "Epochs over which the learning rate falls along a half cosine from "
            "initial_lr to alpha * initial_lr: lr = initial_lr * (alpha + (1 - alpha) "
            "* (1 + cos(pi * min(epoch, total_epochs) / total_epochs)) / 2). "
            "null: fit.epochs.",
        },
        "alpha": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.0,
            "description": "The final learning rate as a fraction of the initial one.",
        },
    },
}
_REQUIRED_SCHEDULE_OPTIONS = {"step": ["step_size"], "exponential": ["decay_rate"], "cosine": []}


class LearningRateHolder(Protocol):
    learning_rate: float


class Trainer(Protocol):
    """What the training loop offers to callbacks."""

    @property
    def optimizer(self) -> LearningRateHolder:
        """The optimizer, whose learning rate a callback may set (the callbacks never replace it)."""

    stop_training: bool

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights, in a fixed order."""

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Replace the weights with ``weights`` (as returned by ``get_weights``)."""

    def save_best(self, epoch: int, logs: dict[str, float]) -> None:
        """Write the current weights to best.npz in the run directory, atomically."""


def resolve(spec_list: list[dict], epochs: int | None = None) -> list[dict[str, Any]]:
    """The spec's ``fit.callbacks`` (valid against ``CALLBACKS_SCHEMA``) with every option filled in; a cosine
    schedule's ``total_epochs`` defaults to ``epochs`` (fit.epochs)."""
    return [_resolve_item(item, f"fit.callbacks[{index}]", epochs) for index, item in enumerate(spec_list)]


def create(resolved: Sequence[Mapping[str, Any]], log_names: Iterable[str] | None = None) -> list[Callback]:
    """The callbacks of a resolved ``fit.callbacks`` (every option given, see ``resolve``). With ``log_names``
    (the names in each epoch's logs), a monitor that is not among them is reported now rather than at the end
    of the first epoch."""
    callbacks = []
    for index, item in enumerate(resolved):
        options = dict(item)
        callback = CALLBACKS[options.pop("type")](path=f"fit.callbacks[{index}]", **options)
        if log_names is not None and isinstance(callback, _Monitoring):
            callback.check_monitor(list(log_names))
        callbacks.append(callback)
    return callbacks


def _resolve_item(item: dict, path: str, epochs: int | None) -> dict[str, Any]:
    resolved = with_defaults(item, CALLBACK_ITEM_SCHEMA)
    if resolved.get("schedule") == "cosine" and resolved["total_epochs"] is None:
        if epochs is None:
            raise SpecError("the cosine schedule needs total_epochs (default: fit.epochs)", path=path)
        resolved["total_epochs"] = epochs
    return resolved


#: Every callback a spec may name, by type: each ``Callback`` subclass with a ``type``, as it is defined.
CALLBACKS: Registry[type[Callback]] = Registry("callback", lambda cls: cls.type)


@dataclass(kw_only=True, eq=False)
class Callback(Kind, registry=CALLBACKS, key="type"):
    """Base of the callbacks: hooks that do nothing, and state made of the attributes in ``state_fields``.

    A kind is a keyword-only dataclass whose fields are its options, every one given (``create`` takes them
    from the resolved spec); it is registered by being defined with a ``type``."""

    type: ClassVar[str]
    description: ClassVar[str]
    #: The callback's options in the spec besides ``type``: property -> JSON Schema, with defaults.
    options: ClassVar[dict[str, dict]] = {}
    #: Valid ``fit.callbacks`` items of this type, for the documentation and the generic tests.
    examples: ClassVar[list[dict]] = []
    #: Whether it sets the optimizer's learning rate (a spec may have one such callback).
    sets_learning_rate: ClassVar[bool] = False
    state_fields: ClassVar[tuple[str, ...]] = ()
    #: where the spec lists it, for error messages
    path: str = field(default="fit.callbacks", repr=False)

    def on_train_begin(self, trainer: Trainer) -> None:
        pass

    def on_epoch_begin(self, epoch: int, trainer: Trainer) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, float], trainer: Trainer) -> None:
        pass

    def on_train_end(self, trainer: Trainer) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.state_fields}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.state_fields:
            setattr(self, name, state[name])


@dataclass(kw_only=True, eq=False)
class _Monitoring(Callback):
    """A callback that watches one value of the logs and remembers the best seen."""

    monitor: str
    mode: str
    min_delta: float
    best: float | None = field(default=None, init=False)

    @property
    def higher_is_better(self) -> bool:
        """mode max, or auto on a metric (every metric here grows as the model improves; losses shrink)."""
        return self.mode == "max" or (self.mode == "auto" and self.monitor.removeprefix("val_") != "loss")

    def improved(self, current: float) -> bool:
        """Whether ``current`` beats the best so far by more than ``min_delta`` (the first value always does)."""
        if self.best is None:
            return True
        if self.higher_is_better:
            return current - self.min_delta > self.best
        return current + self.min_delta < self.best

    def check_monitor(self, log_names: list[str]) -> None:
        if self.monitor not in log_names:
            hint = (
                " (there is no validation data: set fit.validation, or monitor a training value)"
                if self.monitor.startswith("val_") and not any(n.startswith("val_") for n in log_names)
                else ""
            )
            raise SpecError(
                f"{self.type} monitors {self.monitor!r}, which training does not report{hint}; "
                f"reported: {', '.join(log_names)}",
                path=f"{self.path}.monitor",
            )

    def current(self, logs: dict[str, float]) -> float:
        if self.monitor not in logs:
            self.check_monitor(list(logs))
        return float(logs[self.monitor])


@dataclass(kw_only=True, eq=False)
class EarlyStopping(_Monitoring):
    """Keras 3's EarlyStopping: stop when ``patience`` epochs in a row did not improve on the best.

    With ``restore_best_weights`` the weights of the best epoch are put back at the end of training,
    whether or not training stopped early.
    """

    type = "EarlyStopping"
    description = "Stop training when the monitored value has stopped improving (Keras' EarlyStopping)."
    options = {
        "monitor": _MONITOR,
        "min_delta": _min_delta(0),
        "patience": _patience(0, "training stops"),
        "mode": _MODE,
        "restore_best_weights": {
            "type": "boolean",
            "default": False,
            "description": "At the end of training, go back to the weights of the best epoch.",
        },
        "start_from_epoch": {
            "type": "integer",
            "minimum": 0,
            "default": 0,
            "description": "Epochs to train before watching for improvement (warm-up).",
        },
    }
    examples = [{"type": "EarlyStopping", "monitor": "val_loss", "patience": 2, "restore_best_weights": True}]
    state_fields = ("best", "wait", "best_epoch", "stopped_epoch")
    patience: int
    restore_best_weights: bool
    start_from_epoch: int
    wait: int = field(default=0, init=False)
    best_epoch: int = field(default=0, init=False)
    stopped_epoch: int = field(default=0, init=False)
    best_weights: list[np.ndarray] | None = field(default=None, init=False, repr=False)

    def on_epoch_end(self, epoch, logs, trainer):
        current = self.current(logs)
        if epoch < self.start_from_epoch:
            return
        self.wait += 1
        if self.improved(current):
            self.best = current
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = trainer.get_weights()
        elif self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def on_train_end(self, trainer):
        if self.restore_best_weights and self.best_weights is not None:
            trainer.set_weights(self.best_weights)

    def state_dict(self):
        state = super().state_dict()
        state.update({f"best_weights.{index}": weight for index, weight in enumerate(self.best_weights or [])})
        return state

    def load_state_dict(self, state):
        super().load_state_dict(state)
        count = sum(1 for key in state if key.startswith("best_weights."))
        self.best_weights = [np.array(state[f"best_weights.{index}"]) for index in range(count)] or None


@dataclass(kw_only=True, eq=False)
class ModelCheckpoint(_Monitoring):
    """Keep the best weights as best.npz: written when the monitored value improves (every epoch when
    ``save_best_only`` is false)."""

    type = "ModelCheckpoint"
    description = (
        "Keep the weights of the best epoch in the run directory as best.npz "
        "(Keras' ModelCheckpoint with save_weights_only)."
    )
    options = {
        "monitor": _MONITOR,
        "mode": _MODE,
        "save_best_only": {
            "type": "boolean",
            "default": True,
            "description": "true: write best.npz in the run directory when the monitored value improves; "
            "false: write it after every epoch.",
        },
    }
    examples = [{"type": "ModelCheckpoint", "monitor": "val_accuracy"}]
    state_fields = ("best",)
    save_best_only: bool
    #: every improvement counts: the kind has no min_delta option
    min_delta: float = field(default=0.0, init=False)

    def on_epoch_end(self, epoch, logs, trainer):
        if not self.save_best_only:
            trainer.save_best(epoch, logs)
            return
        current = self.current(logs)
        if self.improved(current):
            self.best = current
            trainer.save_best(epoch, logs)


@dataclass(kw_only=True, eq=False)
class ReduceLROnPlateau(_Monitoring):
    """Keras' ReduceLROnPlateau: after ``patience`` epochs without improvement, lr = max(lr * factor,
    min_lr), then ``cooldown`` epochs in which epochs without improvement are not counted."""

    type = "ReduceLROnPlateau"
    description = "Multiply the learning rate by factor when the monitored value has stopped improving."
    options = {
        "monitor": _MONITOR,
        "factor": {
            "type": "number",
            "exclusiveMinimum": 0,
            "exclusiveMaximum": 1,
            "default": 0.1,
            "description": "new learning rate = learning rate * factor.",
        },
        "patience": _patience(10, "the learning rate is reduced"),
        "mode": _MODE,
        "min_delta": _min_delta(1e-4),
        "cooldown": {
            "type": "integer",
            "minimum": 0,
            "default": 0,
            "description": "Epochs to wait after a reduction before counting epochs without improvement again.",
        },
        "min_lr": {
            "type": "number",
            "minimum": 0,
            "default": 0,
            "description": "The learning rate is never reduced below this.",
        },
    }
    examples = [{"type": "ReduceLROnPlateau", "monitor": "loss", "factor": 0.5, "patience": 1}]
    sets_learning_rate = True
    state_fields = ("best", "wait", "cooldown_counter")
    factor: float
    patience: int
    cooldown: int
    min_lr: float
    wait: int = field(default=0, init=False)
    cooldown_counter: int = field(default=0, init=False)

    def on_epoch_end(self, epoch, logs, trainer):
        current = self.current(logs)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.improved(current):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience and trainer.optimizer.learning_rate > self.min_lr:
                trainer.optimizer.learning_rate = max(trainer.optimizer.learning_rate * self.factor, self.min_lr)
                self.cooldown_counter = self.cooldown
                self.wait = 0


@dataclass(kw_only=True, eq=False)
class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch from the optimizer's initial learning rate."""

    type = "LearningRateScheduler"
    description = (
        "Set the learning rate at the start of each epoch from the optimizer's initial "
        "learning rate: step, exponential or cosine decay."
    )
    examples = [
        {"type": "LearningRateScheduler", "schedule": "cosine"},
        {"type": "LearningRateScheduler", "schedule": "step", "step_size": 3, "gamma": 0.5},
        {"type": "LearningRateScheduler", "schedule": "exponential", "decay_rate": 0.9},
    ]
    sets_learning_rate = True
    state_fields = ("initial_lr",)
    schedule: str
    #: the options of the other schedules are None (see SCHEDULE_OPTIONS)
    step_size: int | None = None
    gamma: float | None = None
    decay_rate: float | None = None
    total_epochs: int | None = None
    alpha: float | None = None
    initial_lr: float | None = field(default=None, init=False)

    def on_train_begin(self, trainer):
        if self.initial_lr is None:
            self.initial_lr = float(trainer.optimizer.learning_rate)

    def on_epoch_begin(self, epoch, trainer):
        trainer.optimizer.learning_rate = self.learning_rate(epoch)

    def learning_rate(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (counted from 0)."""
        # on_train_begin has set initial_lr; the schema fills in the chosen schedule's options (SCHEDULE_OPTIONS)
        assert self.initial_lr is not None
        if self.schedule == "step":
            assert self.gamma is not None and self.step_size is not None
            return self.initial_lr * self.gamma ** (epoch // self.step_size)
        if self.schedule == "exponential":
            assert self.decay_rate is not None
            return self.initial_lr * self.decay_rate**epoch
        assert self.total_epochs is not None and self.alpha is not None
        progress = min(epoch, self.total_epochs) / self.total_epochs
        return self.initial_lr * (self.alpha + (1 - self.alpha) * 0.5 * (1 + math.cos(math.pi * progress)))


CALLBACK_TYPES = CALLBACKS.names()
#: Options of each callback type besides ``type`` (LearningRateScheduler's depend on its schedule).
OPTIONS: dict[str, dict[str, dict]] = {kind: cls.options for kind, cls in CALLBACKS.items() if cls.options}


def _when(key: str, value: str) -> dict:
    return {"type": "object", "properties": {key: {"const": value}}, "required": [key]}


def _type_property(kind: str) -> dict:
    return {"type": {"const": kind, "description": CALLBACKS[kind].description}}


_SCHEDULER_BRANCH = {
    "required": ["schedule"],
    "properties": {"schedule": {"enum": list(SCHEDULES), "description": "The schedule."}},
    "allOf": [
        {
            "if": _when("schedule", schedule),
            "then": {
                "properties": {
                    **_type_property("LearningRateScheduler"),
                    "schedule": {"const": schedule, "description": "The schedule."},
                    **options,
                },
                "required": _REQUIRED_SCHEDULE_OPTIONS[schedule],
                "additionalProperties": False,
            },
        }
        for schedule, options in SCHEDULE_OPTIONS.items()
    ],
}

CALLBACK_ITEM_SCHEMA = {
    "description": "A callback: `type` picks it; the other keys are its options (Keras names).",
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"enum": list(CALLBACK_TYPES), "description": "The callback."}},
    "allOf": [
        *(
            {
                "if": _when("type", kind),
                "then": {"properties": {**_type_property(kind), **options}, "additionalProperties": False},
            }
            for kind, options in OPTIONS.items()
        ),
        {"if": _when("type", "LearningRateScheduler"), "then": _SCHEDULER_BRANCH},
    ],
}

CALLBACKS_SCHEMA = {
    "description": "Called during training, in this order, at the start and end of each epoch. Epochs are "
    "counted from 0.",
    "type": "array",
    "items": CALLBACK_ITEM_SCHEMA,
    "default": [],
    "examples": [
        [
            {"type": "EarlyStopping", "monitor": "val_loss", "patience": 2, "restore_best_weights": True},
            {"type": "LearningRateScheduler", "schedule": "cosine"},
        ]
    ],
}
