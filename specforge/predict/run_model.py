"""A trained run used where an exported model is (``specforge predict RUN``): the numpy model with the run's
preprocessing and class names, so that predicting needs no export first."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from specforge.data import Preprocessing
from specforge.predict.session import DEFAULT_BATCH_SIZE, OnBatch, output_classes, unknown_output
from specforge.predict.table import rows_only
from specforge.predict.text import model_inputs
from specforge.runs.directory import MANIFEST, Run, open_run
from specforge.spec.model_io import output_class_names, output_label_maps


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a run directory (it has a manifest)."""
    return (Path(path) / MANIFEST).is_file()


class RunPredictor:
    """The interface of ``specforge.predict.session.OnnxPredictor`` (input shape, classes, ``run``) over a run's
    numpy model."""

    from_specforge = True
    metadata: dict[str, str] = {}
    image_shape: tuple[int, ...] | None = None  # a run's inputs are its model's: no stored shape of their own

    def __init__(self, path: str | Path):
        run: Run = open_run(path)
        self.path = Path(path)
        self.steps = Preprocessing.from_dict(run.preprocessing)
        #: the run's preprocessing, as an exported model's metadata holds it
        self.saved = self.steps
        #: a text run's saved vectorizer turns documents into its model's input
        self.vectorizer = self.steps.vectorizer
        self.takes_documents = self.vectorizer is not None
        if self.steps.table is not None:
            raise rows_only(path)
        self.model = run.model
        self.input_shape: tuple[int, ...] = tuple(self.steps.input_shape)
        self.class_names: list[str] = list(self.steps.class_names)
        graph = run.graph
        #: the model's outputs by name (``output`` for a model of one), and the one whose classes ``run`` gives
        self.output_names = list(graph.output_names)
        self.output_index = 0
        self.output_shapes = [graph.nodes[node].output_shape for node in graph.output_nodes]
        self.num_classes: int | None = output_classes(self.output_shapes[0])
        several = len(graph.output_nodes) > 1
        widths = [shape[-1] for shape in self.output_shapes]
        self.output_class_names = output_class_names(run.config, widths, self.class_names) if several else {}
        self.output_label_maps = output_label_maps(run.config) if several else {}
        #: the map from the data's labels to the chosen output's classes (None: they are the labels)
        self.label_map: list[int] | None = None

    def class_name(self, index: int) -> str:
        return self.class_names[index] if index < len(self.class_names) else str(index)

    def choose_output(self, name: str) -> None:
        """Predict ``name``'s classes: one of the outputs of a model of several (``output_names``)."""
        if name not in self.output_names:
            raise unknown_output(name, self.output_names)
        self.output_index = self.output_names.index(name)
        self.num_classes = output_classes(self.output_shapes[self.output_index])
        self.class_names = self.output_class_names.get(name, self.class_names)
        self.label_map = self.output_label_maps.get(name)

    def run(
        self, examples: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE, on_batch: OnBatch | None = None
    ) -> np.ndarray:
        """The model's outputs for raw ``examples`` or a text run's documents (the run's preprocessing applied),
        ``batch_size`` at a time."""
        parts = []
        for start in range(0, len(examples), batch_size):
            batch = examples[start : start + batch_size]
            batch = self.steps.images(model_inputs(batch, self.vectorizer) if self.takes_documents else batch)
            parts.append(self.model.outputs(batch)[self.output_index])
            if on_batch is not None:
                on_batch(min(start + batch_size, len(examples)), len(examples))
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)
