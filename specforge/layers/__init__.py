"""The layer registry: every Layer subclass defined in this package, by its spec ``type``."""

from __future__ import annotations

import importlib
import pkgutil

from specforge.layers.base import Layer


def _collect() -> dict[str, type[Layer]]:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    registry: dict[str, type[Layer]] = {}
    pending = list(Layer.__subclasses__())
    while pending:
        cls = pending.pop(0)
        pending.extend(cls.__subclasses__())
        if "type" in cls.__dict__:
            registry[cls.type] = cls
    return dict(sorted(registry.items()))


REGISTRY: dict[str, type[Layer]] = _collect()

__all__ = ["Layer", "REGISTRY"]
