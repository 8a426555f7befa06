"""The PyTorch backend: a spec's graph lowered to a ``torch.nn.Module`` (each layer kind's ``to_torch``
builds its module from ``modules.py``), Keras' optimizer update rules (``optimizers.py``) and specforge's
losses (``losses.py``) in PyTorch, the step the training loop calls (``backend.py``), and data-parallel
training on Ray Train (``ray_train.py``). PyTorch is the ``torch`` extra; nothing here is imported
unless a run asks for it, so this package's own ``__init__`` imports no PyTorch.
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
