"""Method registry: `bench list methods` prints it.

A method is one package under swapbench/methods/ whose `__init__.py` declares its registry entries,
`METHODS = {"name": "swapbench.methods.<package>.<module>:<Class>"}`, and imports no model code; the
registry finds such packages by itself, so adding a method touches nothing outside its package and
its tests. Entries are lazy, so listing names imports no model code. Other distributions add methods
through the `swapbench.methods` entry-point group (see swapbench.registry).
"""

from __future__ import annotations

import importlib
import pkgutil

from swapbench.methods.base import FaceBatch, SwapMethod
from swapbench.registry import Registry

# The baselines and the scorer of precomputed swaps are part of the core, not method packages.
CORE = {
    "source": "swapbench.methods.baselines:Source",
    "target": "swapbench.methods.baselines:Target",
    "classic": "swapbench.methods.baselines:Classic",
    "precomputed": "swapbench.methods.precomputed:Precomputed",
}


def _discover(registry: Registry) -> None:
    for name, target in CORE.items():
        registry.add(name, target)
    for info in pkgutil.iter_modules(__path__, prefix=f"{__name__}."):
        if info.ispkg:
            for name, target in getattr(importlib.import_module(info.name), "METHODS", {}).items():
                registry.add(name, target)


METHODS: Registry[type[SwapMethod]] = Registry("method", entry_point_group="swapbench.methods", discover=_discover)


def get(name: str) -> type[SwapMethod]:
    return METHODS.get(name)


def all_methods() -> dict[str, type[SwapMethod]]:
    return METHODS.all()


__all__ = ["FaceBatch", "SwapMethod", "METHODS", "get", "all_methods"]
