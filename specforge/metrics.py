"""Metrics: accumulators over the batches of an epoch, named as Keras reports them."""

from __future__ import annotations

METRIC_NAMES = ("accuracy", "top_k_accuracy", "precision", "recall")

_NAME = {"description": "The metric.", "enum": list(METRIC_NAMES)}
_THRESHOLD_OPTIONS = {
    "thresholds": {
        "type": "number", "minimum": 0, "maximum": 1, "default": 0.5,
        "description": "An output unit whose probability is above this value is a positive prediction.",
    },
    "class_id": {
        "type": ["integer", "null"], "minimum": 0, "default": None,
        "description": "Count only this class's output unit. null: every unit (micro-average over all classes).",
    },
}
#: Options of each metric besides its name.
OPTIONS: dict[str, dict[str, dict]] = {
    "accuracy": {},
    "top_k_accuracy": {
        "k": {"type": "integer", "minimum": 1, "default": 5,
              "description": "A prediction is correct when the true class is among the k most probable."},
    },
    "precision": _THRESHOLD_OPTIONS,
    "recall": _THRESHOLD_OPTIONS,
}


def _object_of(name: str) -> dict:
    return {"type": "object", "properties": {"name": {"const": name}}, "required": ["name"]}


METRIC_ITEM_SCHEMA = {
    "description": "A metric: its name for the defaults, or a mapping with the name and its options. "
                   "accuracy: fraction of examples whose most probable class is the label (one sigmoid unit: "
                   "probability > 0.5 compared with the 0/1 label). top_k_accuracy: the label is among the k "
                   "most probable classes. precision and recall, as Keras' Precision and Recall: every output "
                   "unit is a yes/no prediction (probability > thresholds) compared with the one-hot label, "
                   "counted over all units unless class_id picks one; precision = TP / (TP + FP), "
                   "recall = TP / (TP + FN), 0 when the denominator is 0.",
    "type": ["string", "object"],
    "allOf": [
        {"if": {"type": "string"}, "then": {"enum": list(METRIC_NAMES)}},
        {"if": {"type": "object"}, "then": {"required": ["name"], "properties": {"name": _NAME}}},
        *({"if": _object_of(name),
           "then": {"properties": {"name": {"const": name, "description": "The metric."}, **options},
                    "additionalProperties": False}}
          for name, options in OPTIONS.items()),
    ],
}

METRICS_SCHEMA = {
    "description": "Metrics reported after each epoch besides the loss (Keras' compile metrics); "
                   "validation values get the prefix val_.",
    "type": "array",
    "items": METRIC_ITEM_SCHEMA,
    "default": ["accuracy"],
    "examples": [["accuracy", {"name": "top_k_accuracy", "k": 3}]],
}
