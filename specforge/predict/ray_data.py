"""Batch prediction on Ray Data: ``specforge predict --backend ray``.

The inputs are read as ``specforge predict`` reads them (images, arrays, a data split), on the driver; the
examples then flow through Ray Data, one block per batch, to a pool of actors, each holding one
onnxruntime session that runs on as many threads as the CPUs it requested.  Batches keep their order
and their boundaries (every ``batch_size`` examples from the first), so the predictions are the local
path's, number for number.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from specforge.predict.session import OnBatch, OnnxPredictor


class _Session:
    """A Ray Data actor: one onnxruntime session (the model's whole ``run``, preprocessing included) giving the
    output ``output``."""

    def __init__(self, path: str, threads: int, output: str):
        self.model = OnnxPredictor(path, threads)
        self.model.choose_output(output)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"outputs": self.model.run(batch["data"], len(batch["data"]))}


class RayPredictor(OnnxPredictor):
    """An exported model whose ``run`` maps the examples over ``actors`` Ray actors of ``threads`` CPUs each
    (default: as many actors as the cluster's CPUs allow), each giving the output ``choose_output`` chose (one of
    a model of several outputs).  Needs a connected Ray."""

    def __init__(self, path: str | Path, *, threads: int = 1, actors: int | None = None):
        super().__init__(path, threads=1)  # here only for the interface and the metadata
        self.actor_threads = threads
        self.actors = actors

    def run(self, examples: np.ndarray, batch_size: int = 256, on_batch: OnBatch | None = None) -> np.ndarray:
        import ray
        import ray.data

        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-dataset progress lines on stderr
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        actors = self.actors or max(1, int(ray.cluster_resources().get("CPU", 1)) // self.actor_threads)
        blocks = [examples[start : start + batch_size] for start in range(0, len(examples), batch_size)]
        outputs = ray.data.from_numpy(blocks).map_batches(
            _Session,
            fn_constructor_kwargs={
                "path": str(self.path.resolve()),
                "threads": self.actor_threads,
                "output": self.output_name,
            },
            batch_size=batch_size,
            batch_format="numpy",
            concurrency=actors,
            num_cpus=self.actor_threads,
        )
        parts = [batch["outputs"] for batch in outputs.iter_batches(batch_size=None, batch_format="numpy")]
        if on_batch is not None:
            on_batch(len(examples), len(examples))
        return np.concatenate(parts) if parts else np.zeros((0,), dtype=np.float32)
