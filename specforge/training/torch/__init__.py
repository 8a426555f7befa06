"""The PyTorch backend: a spec's graph lowered to a ``torch.nn.Module`` (``network.py``, from each layer
kind's ``to_torch``, whose modules are in specforge.layers.torch), Keras' optimizer update rules
(``optimizers.py``) and specforge's losses (``losses.py``) in PyTorch, one training step (``step.py``), the
step function the training loop calls (``backend.py``), and data-parallel training on Ray Train
(``ray_train.py``). PyTorch is the ``torch`` extra: those modules are imported only when a run asks for
them, and this ``__init__``, which says what to install when PyTorch is missing, imports no PyTorch.

PyTorch's CPU kernels run on OpenMP threads, which by default spin for milliseconds after each parallel
region waiting for the next one. A training step alternates PyTorch's kernels with Python (the loop, the
optimizer's small updates, the metrics in numpy), so the spinning threads take the cores that work needs, and
on a machine other processes share they wait on each other's descheduled threads: on 2 busy cores a step
took several times its CPU time. ``require_torch`` has them sleep instead (``OMP_WAIT_POLICY=PASSIVE``), which
OpenMP reads once, when PyTorch loads it; an ``OMP_WAIT_POLICY`` set in the environment is kept.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from specforge.base.errors import RunError

INSTALL = "pip install 'specforge[torch]'"
#: How OpenMP's idle threads wait (see above), unless the environment says otherwise.
OPENMP_WAIT_POLICY = "PASSIVE"


def require_torch(what: str = "--backend torch") -> Any:
    """The ``torch`` module, or a one-line error naming the install command."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", OPENMP_WAIT_POLICY)
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise RunError(f"{what} needs PyTorch; install it with: {INSTALL}", file="specforge train") from None
