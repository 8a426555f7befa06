"""Registries of named kinds: layers, activations, initializers, losses, metrics, optimizers, callbacks and
data sources are each looked up by the name a spec gives, and a second kind under a taken name is refused."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar, Generic, TypeVar

T = TypeVar("T")

#: What a user-chosen name (a spec's ``name``, the run directory) may look like.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class DuplicateKind(ValueError):
    """Two kinds of one family were registered under the same name."""


class Registry(Generic[T]):
    """The kinds of one ``family`` by name, in registration order; ``name_of`` gives an entry's name."""

    def __init__(self, family: str, name_of: Callable[[T], str], entries: Iterable[T] = ()):
        self.family = family
        self._name_of = name_of
        self._entries: dict[str, T] = {}
        for entry in entries:
            self.register(entry)

    def register(self, entry: T) -> T:
        """Add ``entry``; DuplicateKind when its name is taken."""
        name = self._name_of(entry)
        if name in self._entries:
            raise DuplicateKind(f"two {self.family} kinds are named {name!r}: {self._entries[name]!r} and {entry!r}")
        self._entries[name] = entry
        return entry

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def sort(self) -> None:
        """Order the entries by name, so that a family whose modules load in any order lists them the same."""
        self._entries = dict(sorted(self._entries.items()))

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def items(self) -> Iterable[tuple[str, T]]:
        return self._entries.items()

    def values(self) -> Iterable[T]:
        return self._entries.values()


class Kind:
    """The base of a family's base class, so that its kinds register by being defined.

    ``class Optimizer(Kind, registry=OPTIMIZERS, key="name")`` makes ``Optimizer`` a family; a subclass that
    sets ``key`` in its own body (``name = "adam"``) joins ``registry`` as it is defined, one that does not
    (a shared base such as ``_Monitoring``) does not. ``register=False`` defines a kind without registering
    it (a test's own kind, registered for the test's length).
    """

    _registry: ClassVar[Registry[Any]]
    _key: ClassVar[str]

    def __init_subclass__(
        cls, registry: Registry[Any] | None = None, key: str = "name", register: bool = True, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if registry is not None:
            cls._registry, cls._key = registry, key
        elif register and cls._key in cls.__dict__:
            cls._registry.register(cls)


def named_kind_schema(family: str, options: dict[str, dict[str, dict]]) -> list[dict]:
    """The JSON Schema rules (for an ``allOf``) of a value naming a kind of ``family``: the kind's name alone,
    or a mapping with its ``name`` and only that kind's ``options`` (property -> JSON Schema, by kind)."""
    names = list(options)
    return [
        {"if": {"type": "string"}, "then": {"enum": names}},
        {
            "if": {"type": "object"},
            "then": {"required": ["name"], "properties": {"name": {"description": f"The {family}.", "enum": names}}},
        },
        *(
            {
                "if": {"type": "object", "properties": {"name": {"const": name}}, "required": ["name"]},
                "then": {
                    "properties": {"name": {"const": name, "description": f"The {family}."}, **kind_options},
                    "additionalProperties": False,
                },
            }
            for name, kind_options in options.items()
        ),
    ]


__all__ = ["NAME_PATTERN", "DuplicateKind", "Kind", "Registry", "named_kind_schema"]
