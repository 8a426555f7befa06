"""Callbacks: early stopping, keep-best checkpoint and learning-rate schedules."""

from __future__ import annotations

CALLBACK_TYPES = ("EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau", "LearningRateScheduler")
SCHEDULES = ("step", "exponential", "cosine")

_MONITOR = {
    "type": "string", "minLength": 1, "default": "val_loss",
    "description": "The quantity watched: loss or a metric name (accuracy, precision, ...), with the prefix "
                   "val_ for its value on the validation data.",
}
_MODE = {
    "enum": ["auto", "min", "max"], "default": "auto",
    "description": "min: better when the monitored value goes down; max: when it goes up; "
                   "auto: min for losses, max for metrics.",
}


def _patience(default: int, what: str) -> dict:
    return {"type": "integer", "minimum": 0, "default": default,
            "description": f"Epochs without improvement before {what}."}


def _min_delta(default: float) -> dict:
    return {"type": "number", "minimum": 0, "default": default,
            "description": "A change smaller than this does not count as an improvement."}


#: Options of each callback type besides ``type``.
OPTIONS: dict[str, dict[str, dict]] = {
    "EarlyStopping": {
        "monitor": _MONITOR,
        "min_delta": _min_delta(0),
        "patience": _patience(0, "training stops"),
        "mode": _MODE,
        "restore_best_weights": {
            "type": "boolean", "default": False,
            "description": "At the end of training, go back to the weights of the best epoch.",
        },
        "start_from_epoch": {
            "type": "integer", "minimum": 0, "default": 0,
            "description": "Epochs to train before watching for improvement (warm-up).",
        },
    },
    "ModelCheckpoint": {
        "monitor": _MONITOR,
        "mode": _MODE,
        "save_best_only": {
            "type": "boolean", "default": True,
            "description": "true: write best.npz in the run directory when the monitored value improves; "
                           "false: write it after every epoch.",
        },
    },
    "ReduceLROnPlateau": {
        "monitor": _MONITOR,
        "factor": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": 0.1,
                   "description": "new learning rate = learning rate * factor."},
        "patience": _patience(10, "the learning rate is reduced"),
        "mode": _MODE,
        "min_delta": _min_delta(1e-4),
        "cooldown": {"type": "integer", "minimum": 0, "default": 0,
                     "description": "Epochs to wait after a reduction before counting epochs without "
                                    "improvement again."},
        "min_lr": {"type": "number", "minimum": 0, "default": 0,
                   "description": "The learning rate is never reduced below this."},
    },
}

#: Options of each learning-rate schedule besides ``type`` and ``schedule``.
SCHEDULE_OPTIONS: dict[str, dict[str, dict]] = {
    "step": {
        "step_size": {"type": "integer", "minimum": 1,
                      "description": "Multiply the learning rate by gamma every step_size epochs. Required."},
        "gamma": {"type": "number", "exclusiveMinimum": 0, "default": 0.1,
                  "description": "Factor applied every step_size epochs: lr = initial_lr * gamma ** "
                                 "floor(epoch / step_size), epochs counted from 0."},
    },
    "exponential": {
        "decay_rate": {"type": "number", "exclusiveMinimum": 0,
                       "description": "Factor applied every epoch: lr = initial_lr * decay_rate ** epoch, "
                                      "epochs counted from 0. Required."},
    },
    "cosine": {
        "total_epochs": {"type": ["integer", "null"], "minimum": 1, "default": None,
                         "description": "Epochs over which the learning rate falls along a half cosine from "
                                        "initial_lr to alpha * initial_lr: lr = initial_lr * (alpha + (1 - alpha) "
                                        "* (1 + cos(pi * min(epoch, total_epochs) / total_epochs)) / 2). "
                                        "null: fit.epochs."},
        "alpha": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.0,
                  "description": "The final learning rate as a fraction of the initial one."},
    },
}
_REQUIRED_SCHEDULE_OPTIONS = {"step": ["step_size"], "exponential": ["decay_rate"], "cosine": []}

_DESCRIPTIONS = {
    "EarlyStopping": "Stop training when the monitored value has stopped improving (Keras' EarlyStopping).",
    "ModelCheckpoint": "Keep the weights of the best epoch in the run directory as best.npz "
                       "(Keras' ModelCheckpoint with save_weights_only).",
    "ReduceLROnPlateau": "Multiply the learning rate by factor when the monitored value has stopped improving.",
    "LearningRateScheduler": "Set the learning rate at the start of each epoch from the optimizer's initial "
                             "learning rate: step, exponential or cosine decay.",
}


def _when(key: str, value: str) -> dict:
    return {"type": "object", "properties": {key: {"const": value}}, "required": [key]}


def _type_property(kind: str) -> dict:
    return {"type": {"const": kind, "description": _DESCRIPTIONS[kind]}}


_SCHEDULER_BRANCH = {
    "required": ["schedule"],
    "properties": {"schedule": {"enum": list(SCHEDULES), "description": "The schedule."}},
    "allOf": [
        {"if": _when("schedule", schedule),
         "then": {"properties": {**_type_property("LearningRateScheduler"),
                                 "schedule": {"const": schedule, "description": "The schedule."}, **options},
                  "required": _REQUIRED_SCHEDULE_OPTIONS[schedule],
                  "additionalProperties": False}}
        for schedule, options in SCHEDULE_OPTIONS.items()
    ],
}

CALLBACK_ITEM_SCHEMA = {
    "description": "A callback: `type` picks it; the other keys are its options (Keras names).",
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"enum": list(CALLBACK_TYPES), "description": "The callback."}},
    "allOf": [
        *({"if": _when("type", kind),
           "then": {"properties": {**_type_property(kind), **options}, "additionalProperties": False}}
          for kind, options in OPTIONS.items()),
        {"if": _when("type", "LearningRateScheduler"), "then": _SCHEDULER_BRANCH},
    ],
}

CALLBACKS_SCHEMA = {
    "description": "Called during training, in this order, at the start and end of each epoch. Epochs are "
                   "counted from 0.",
    "type": "array",
    "items": CALLBACK_ITEM_SCHEMA,
    "default": [],
    "examples": [[{"type": "EarlyStopping", "monitor": "val_loss", "patience": 2, "restore_best_weights": True},
                  {"type": "LearningRateScheduler", "schedule": "cosine"}]],
}
