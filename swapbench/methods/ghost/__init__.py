"""GHOST (ai-forever/sber-swap): AEI-Net generator + ArcFace IResNet-100, ported for swapbench.

Three methods, one per released generator: "ghost" (2 AAD blocks, the main model), "ghost_1block"
and "ghost_3blocks". The names below are imported from .method on first use, so the registry can
read METHODS without loading the networks.
"""

METHODS = {
    "ghost": "swapbench.methods.ghost.method:Ghost",
    "ghost_1block": "swapbench.methods.ghost.method:Ghost1Block",
    "ghost_3blocks": "swapbench.methods.ghost.method:Ghost3Blocks",
}

# (random_weights, the function, is in .method: the name of this package's random_weights module wins here)
__all__ = ["ARCFACE_FILE", "GENERATOR_FILES", "Ghost", "Ghost1Block", "Ghost3Blocks"]


def __getattr__(name: str):
    if name in __all__:
        from swapbench.methods.ghost import method

        return getattr(method, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
