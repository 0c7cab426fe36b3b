"""Shared pieces of the BlendSwap tests: the narrow network of the parity golden, loaded with its weights."""

from __future__ import annotations

import functools

from swapbench.methods.blendswap import BLENDSWAP_FILE, BlendSwap
from swapbench.methods.blendswap import random_weights as rw
from swapbench.faces.iresnet import iresnet18

NARROW = rw.narrow(8)  # the official widths / 8: what tests/golden/blendswap_parity.npz was made with


class NarrowBlendSwap(BlendSwap):
    """BlendSwap with the golden's reduced widths and an iresnet18 identity encoder (same code paths)."""

    channels = NARROW
    identity_net = staticmethod(iresnet18)


@functools.cache
def narrow_state(seed: int = 0) -> dict:
    """The golden's random blendswap.pth (narrow layout); do not mutate."""
    return rw.checkpoint(NARROW, "iresnet18", seed)


def loaded(options=None, seed: int = 0) -> NarrowBlendSwap:
    m = NarrowBlendSwap(options)
    m.load_weights({BLENDSWAP_FILE.name: narrow_state(seed)})
    return m
