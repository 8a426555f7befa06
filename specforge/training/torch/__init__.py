"""The PyTorch backend: a spec's graph lowered to a ``torch.nn.Module`` (``network.py``, from each layer
kind's ``to_torch``, whose modules are in specforge.layers.torch), Keras' optimizer update rules
(``optimizers.py``) and specforge's losses (``losses.py``) in PyTorch, one training step (``step.py``), the
step function the training loop calls (``backend.py``), and data-parallel training on Ray Train
(``ray_train.py``). PyTorch is the ``torch`` extra: those modules are imported only when a run asks for
them, and this ``__init__``, which says what to install when PyTorch is missing, imports no PyTorch.
"""

from __future__ import annotations

import importlib
from typing import Any

from specforge.base.errors import RunError

INSTALL = "pip install 'specforge[torch]'"


def require_torch(what: str = "--backend torch") -> Any:
    """The ``torch`` module, or a one-line error naming the install command."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise RunError(f"{what} needs PyTorch; install it with: {INSTALL}", file="specforge train") from None
