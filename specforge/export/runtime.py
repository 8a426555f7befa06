"""onnxruntime sessions with explicit thread counts, shared by the parity gate and ``predict``."""

from __future__ import annotations

import os
from pathlib import Path


def default_threads() -> int:
    """The CPU cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def make_session(model: bytes | str | Path, threads: int | None = None):
    """An onnxruntime CPU session for ``model`` (serialized bytes or a path).

    One operator runs on ``threads`` cores (``intra_op_num_threads``; default: every core this
    process may use); operators run one after another (sequential mode, ``inter_op_num_threads=1``),
    the fastest arrangement for a chain of layers.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
