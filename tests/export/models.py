"""Models to export in tests: graphs of the example specs and a small classifier, with trained-looking weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from helpers import SEVERAL_IO_SPECS

from specforge.api import build_graph
from specforge.data import Dataset, load_dataset
from specforge.export.run_export import export_classifier, parity_batch
from specforge.graph.model import Model
from specforge.options import losses, optimizers
from specforge.spec import Spec, spec_from_dict

SPECS_DIR = Path(__file__).resolve().parents[2] / "specs"
#: The example specs of image classifiers (the table specs have their own export tests).
SPEC_FILES = [
    path
    for path in sorted(SPECS_DIR.glob("*.yaml"))
    if yaml.safe_load(path.read_text())["data"].get("source") != "table" and path.stem not in SEVERAL_IO_SPECS
]

#: A small CNN on MNIST with rescale and normalisation, quick to run through every path.
SMALL_SPEC = {
    "version": 1,
    "name": "small-cnn",
    "data": {"source": "mnist", "preprocessing": {"rescale": 1 / 255, "normalize": {"mean": 0.13, "std": 0.31}}},
    "model": {
        "input_shape": [28, 28, 1],
        "layers": [
            {"type": "Conv2D", "filters": 4, "kernel_size": [3, 2], "strides": 2, "activation": "relu"},
            {"type": "BatchNormalization"},
            {"type": "MaxPooling2D", "pool_size": 2, "padding": "same"},
            {"type": "Flatten"},
            {"type": "Dropout", "rate": 0.2},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
    },
    "compile": {"optimizer": "adam", "loss": "categorical_crossentropy"},
    "fit": {"epochs": 1, "batch_size": 32, "seed": 0},
}


def small_spec() -> Spec:
    return spec_from_dict(SMALL_SPEC)


def dataset_of(spec: Spec, graph) -> Dataset:
    return load_dataset(spec.config["data"], graph.input_shape, validation="none", base_dir=spec.base_dir)


def trained_model(spec: Spec, steps: int = 2, batch_size: int = 32) -> tuple[Model, Dataset]:
    """The spec's model, initialised from its seed and moved by ``steps`` training steps on the first
    training examples, so biases and batch statistics are no longer at their initial values."""
    graph = build_graph(spec)
    dataset = dataset_of(spec, graph)
    rng = np.random.default_rng(spec.config["fit"].get("seed", 0))
    model = Model.initialize(graph, rng)
    loss = losses.create(spec.config["compile"]["loss"])
    optimizer = optimizers.create(spec.config["compile"]["optimizer"])
    prep = dataset.preprocessing
    for step in range(steps):
        part = slice(step * batch_size, (step + 1) * batch_size)
        model.train_step(
            prep.images(dataset.train.images[part]), prep.labels(dataset.train.labels[part]), loss, optimizer, rng
        )
    return model, dataset


def export_spec(spec: Spec, **options):
    """``(onnx model, parity result, numpy model, dataset, raw parity batch)`` of the spec's trained model."""
    model, dataset = trained_model(spec)
    raw, data = parity_batch(spec.config, model.graph.input_shape, spec.base_dir)
    onnx_model, parity = export_classifier(
        model.graph,
        model.params,
        dataset.preprocessing,
        raw,
        spec_name=spec.name,
        spec_sha256=spec.sha256(),
        data=data,
        metrics={"loss": 0.5, "accuracy": 0.875},
        **options,
    )
    return onnx_model, parity, model, dataset, raw
