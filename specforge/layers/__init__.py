"""The layer registry: every Layer subclass defined in this package, by its spec ``type``."""

from __future__ import annotations

import importlib
import pkgutil

from specforge.base.registry import Registry
from specforge.layers.base import Layer


def _collect() -> Registry[type[Layer]]:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    kinds: list[type[Layer]] = []
    pending = list(Layer.__subclasses__())
    while pending:
        cls = pending.pop(0)
        pending.extend(cls.__subclasses__())
        if "type" in cls.__dict__:
            kinds.append(cls)
    return Registry("layer", lambda cls: cls.type, sorted(kinds, key=lambda cls: cls.type))


REGISTRY: Registry[type[Layer]] = _collect()

__all__ = ["REGISTRY", "Layer"]
