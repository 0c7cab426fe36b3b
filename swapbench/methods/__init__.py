"""Method registry: `bench list methods` prints it."""

from __future__ import annotations

from swapbench.methods.base import FaceBatch, SwapMethod

METHODS: dict[str, type[SwapMethod]] = {}


def register(cls: type[SwapMethod]) -> type[SwapMethod]:
    if cls.name in METHODS:
        raise ValueError(f"method {cls.name!r} registered twice")
    METHODS[cls.name] = cls
    return cls


def get(name: str) -> type[SwapMethod]:
    _load_builtin()
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}") from None


def all_methods() -> dict[str, type[SwapMethod]]:
    _load_builtin()
    return dict(METHODS)


def _load_builtin() -> None:
    # Importing the modules registers their methods.
    from swapbench.methods import baselines, ghost, megafs, precomputed  # noqa: F401


__all__ = ["FaceBatch", "SwapMethod", "register", "get", "all_methods"]
