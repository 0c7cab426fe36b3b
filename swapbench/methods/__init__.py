"""Method registry: `bench list methods` prints it.

Built-in methods are lazy "module:Class" entries, so listing names imports no model code; other
packages add methods through the `swapbench.methods` entry-point group (see swapbench.registry).
"""

from __future__ import annotations

from swapbench.methods.base import FaceBatch, SwapMethod
from swapbench.registry import Registry

METHODS: Registry[type[SwapMethod]] = Registry("method", entry_point_group="swapbench.methods")
for _name, _target in {
    "source": "swapbench.methods.baselines:Source",
    "target": "swapbench.methods.baselines:Target",
    "classic": "swapbench.methods.baselines:Classic",
    "precomputed": "swapbench.methods.precomputed:Precomputed",
    "ghost": "swapbench.methods.ghost.method:Ghost",
    "ghost_1block": "swapbench.methods.ghost.method:Ghost1Block",
    "ghost_3blocks": "swapbench.methods.ghost.method:Ghost3Blocks",
    "megafs": "swapbench.methods.megafs.method:MegaFS",
    "megafs_injection": "swapbench.methods.megafs.method:MegaFSInjection",
    "megafs_lcr": "swapbench.methods.megafs.method:MegaFSLCR",
}.items():
    METHODS.add(_name, _target)


def get(name: str) -> type[SwapMethod]:
    return METHODS.get(name)


def all_methods() -> dict[str, type[SwapMethod]]:
    return METHODS.all()


__all__ = ["FaceBatch", "SwapMethod", "METHODS", "get", "all_methods"]
