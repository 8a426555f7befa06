"""The layer registry: every Layer subclass defined in this package, by its spec ``type``."""

from __future__ import annotations

import importlib
import pkgutil

from specforge.base.registry import Registry
from specforge.layers.base import LAYERS, Layer

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
LAYERS.sort()

#: The layer kinds by ``type``, in name order (the order of the schema and the README's reference).
REGISTRY: Registry[type[Layer]] = LAYERS

__all__ = ["REGISTRY", "Layer"]
