"""One registry type for everything swapbench looks up by name: methods, metric backends, face
detectors and weight files.

An entry is either the object itself or a lazy reference ``"package.module:Attribute"`` that is
imported on first use, so listing names never imports a model's code (the way lm-evaluation-harness
registers its models). Third-party packages add entries through an entry-point group, e.g.::

    [project.entry-points."swapbench.methods"]
    my_swap = "my_package.method:MySwap"

One rule for duplicates everywhere: registering the same target again under a name is a no-op,
registering a different target under a taken name is an error.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownName(KeyError):
    """A name the user gave (method, backend, protocol, option, config key, file) that is not known.

    A KeyError, so code that looks names up keeps working; its message is the plain sentence."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _reference(obj) -> str:
    """The "module:qualname" a class or function is importable as (other objects: their repr)."""
    if hasattr(obj, "__module__") and hasattr(obj, "__qualname__"):
        return f"{obj.__module__}:{obj.__qualname__}"
    return repr(obj)


def _import(reference: str):
    module, _, attr = reference.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Named entries of one kind (e.g. "method"), optionally extended by an entry-point group."""

    def __init__(self, kind: str, entry_point_group: str | None = None, discover=None):
        """discover: called once before the first lookup, to add entries found by other means."""
        self.kind = kind
        self.group = entry_point_group
        self.discover = discover
        self._entries: dict[str, object] = {}  # name -> object or "module:attr"
        self._plugins_loaded = entry_point_group is None and discover is None

    def add(self, name: str, target: T | str) -> None:
        """Register `target` (an object or a "module:attr" reference) under `name`."""
        known = self._entries.get(name)
        if known is not None and not self._same(known, target):
            raise ValueError(f"{self.kind} {name!r} registered twice: {self._describe(known)} and {self._describe(target)}")
        if known is None or not isinstance(target, str):
            self._entries[name] = target

    def register(self, obj: T) -> T:
        """Decorator: register an object under its `name` attribute."""
        self.add(obj.name, obj)
        return obj

    def discard(self, name: str) -> None:
        """Remove an entry if present (tests that register temporary entries)."""
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        """Every registered name, sorted, without importing any entry."""
        self._load_plugins()
        return sorted(self._entries)

    def reference(self, name: str) -> str:
        """Where an entry lives ("module:attr"), without importing it."""
        entry = self._entry(name)
        return entry if isinstance(entry, str) else _reference(entry)

    def get(self, name: str) -> T:
        entry = self._entry(name)
        if isinstance(entry, str):
            try:
                obj = _import(entry)
            except (ImportError, AttributeError) as exc:
                raise ValueError(f"{self.kind} {name!r} could not be loaded from {entry}: {exc}") from exc
            self._entries[name] = entry = obj
        return entry

    def all(self) -> dict[str, T]:
        return {name: self.get(name) for name in self.names()}

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._entries

    def _entry(self, name: str):
        self._load_plugins()
        if name not in self._entries:
            raise UnknownName(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries)) or 'none'}")
        return self._entries[name]

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        if self.discover is not None:
            self.discover(self)
        for ep in metadata.entry_points(group=self.group) if self.group else ():
            self.add(ep.name, ep.value)

    @staticmethod
    def _same(a, b) -> bool:
        def ref(x):
            return x if isinstance(x, str) else _reference(x)

        return a is b or a == b or ref(a) == ref(b)

    @staticmethod
    def _describe(target) -> str:
        return target if isinstance(target, str) else _reference(target)
