"""Optimizers with Keras 3's update rules, updating float32 parameters in place."""

from __future__ import annotations

OPTIMIZER_NAMES = ("sgd", "adam", "adamw", "rmsprop")
#: Keras 3's default learning rate of each optimizer.
DEFAULT_LEARNING_RATES = {"sgd": 0.01, "adam": 0.001, "adamw": 0.001, "rmsprop": 0.001}


def _number(description: str, default: float, **bounds: float) -> dict:
    return {"type": "number", "description": description, "default": default, **bounds}


def _flag(description: str) -> dict:
    return {"type": "boolean", "description": description, "default": False}


def _clip(description: str) -> dict:
    return {"type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
            "description": description + " null: no clipping. Only one of clipnorm and clipvalue may be set."}


_EPSILON = _number("Small constant added to the denominator for numerical stability.", 1e-7, minimum=0)
_ADAM = {
    "beta_1": _number("Decay rate of the running mean of the gradients (first moment).", 0.9,
                      minimum=0, exclusiveMaximum=1),
    "beta_2": _number("Decay rate of the running mean of the squared gradients (second moment).", 0.999,
                      minimum=0, exclusiveMaximum=1),
    "epsilon": _EPSILON,
    "amsgrad": _flag("Use the AMSGrad variant: divide by the maximum of the second moments seen so far."),
}
#: Hyperparameters of each optimizer besides name, learning_rate, clipnorm and clipvalue.
HYPERPARAMETERS: dict[str, dict[str, dict]] = {
    "sgd": {
        "momentum": _number("Momentum: velocity = momentum * velocity - learning_rate * gradient. "
                            "0 is plain gradient descent.", 0.0, minimum=0, maximum=1),
        "nesterov": _flag("Use Nesterov momentum."),
    },
    "adam": _ADAM,
    "adamw": {
        "weight_decay": _number("Decoupled weight decay: each step first does "
                                "weights -= learning_rate * weight_decay * weights.", 0.004, minimum=0),
        **_ADAM,
    },
    "rmsprop": {
        "rho": _number("Decay rate of the running mean of the squared gradients.", 0.9,
                       minimum=0, exclusiveMaximum=1),
        "momentum": _number("Momentum applied to the scaled update; 0: none.", 0.0, minimum=0, maximum=1),
        "epsilon": _EPSILON,
        "centered": _flag("Divide by an estimate of the gradient's variance instead of its raw second "
                          "moment (slower, sometimes more stable)."),
    },
}


def _properties(name: str) -> dict[str, dict]:
    """Every option of optimizer ``name``, with its Keras default."""
    return {
        "name": {"const": name, "description": "The optimizer."},
        "learning_rate": _number("Step size.", DEFAULT_LEARNING_RATES[name], exclusiveMinimum=0),
        **HYPERPARAMETERS[name],
        "clipnorm": _clip("Rescale each weight's gradient so that its L2 norm is at most this value."),
        "clipvalue": _clip("Clip each gradient element to [-clipvalue, clipvalue]."),
    }


def _object_of(name: str) -> dict:
    return {"type": "object", "properties": {"name": {"const": name}}, "required": ["name"]}


OPTIMIZER_SCHEMA = {
    "description": "How the weights are updated (Keras 3 update rules and defaults): a name, e.g. adam, for "
                   "the defaults, or a mapping with the name and the options to change, e.g. "
                   "{name: adam, learning_rate: 0.0005}.",
    "type": ["string", "object"],
    "default": "rmsprop",
    "allOf": [
        {"if": {"type": "string"}, "then": {"enum": list(OPTIMIZER_NAMES)}},
        {"if": {"type": "object"},
         "then": {"required": ["name"],
                  "properties": {"name": {"description": "The optimizer.", "enum": list(OPTIMIZER_NAMES)}}}},
        *({"if": _object_of(name), "then": {"properties": _properties(name), "additionalProperties": False}}
          for name in OPTIMIZER_NAMES),
    ],
    "examples": ["adam", {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True}],
}
