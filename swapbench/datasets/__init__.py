"""Data sets and protocols (pair lists)."""

from __future__ import annotations

from swapbench.datasets.protocol import ImageRef, Pair, Protocol
from swapbench.datasets.samples import samples

PROTOCOLS = {"samples": samples}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]()
    except KeyError:
        raise KeyError(f"unknown protocol {name!r}; known: {', '.join(sorted(PROTOCOLS))}") from None


__all__ = ["ImageRef", "Pair", "Protocol", "get_protocol", "PROTOCOLS"]
