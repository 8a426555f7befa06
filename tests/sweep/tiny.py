"""A tiny spec with a sweep section, quick enough to run several trials in a test."""

from __future__ import annotations

from pathlib import Path

import yaml

#: An MLP on MNIST with two searched values; trials run on slices of the data (LIMITS).
TINY = {
    "version": 1,
    "name": "tiny-mlp",
    "data": {"source": "mnist", "preprocessing": {"rescale": 1 / 255}},
    "model": {
        "input_shape": [28, 28, 1],
        "layers": [
            {"type": "Flatten"},
            {"type": "Dense", "units": 16, "activation": "relu"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
    },
    "compile": {"optimizer": "adam", "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
    "fit": {"epochs": 2, "batch_size": 32, "validation": "test", "seed": 0},
    "sweep": {
        "parameters": {
            "compile.optimizer.learning_rate": {"loguniform": [1.0e-3, 1.0e-2]},
            "model.layers[1].units": {"choice": [8, 16]},
        },
        "metric": "val_accuracy",
        "trials": 2,
        "pruner": "none",
    },
}
LIMITS = {"limit_train": 256, "limit_test": 64}


def write_spec(directory: Path, name: str = "tiny.yaml", **changes: dict) -> Path:
    """TINY with each top-level section in ``changes`` merged in, written to ``directory/name``."""
    spec = {
        key: ({**value, **changes[key]} if isinstance(value, dict) and key in changes else value)
        for key, value in TINY.items()
    }
    path = directory / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path
