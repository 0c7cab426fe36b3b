"""DiffSwap (wl-zhao/DiffSwap, CVPR 2023) rebuilt on diffusers: the method "diffswap".

The names below are imported from .method on first use, so the registry can read METHODS without
loading the networks.
"""

METHODS = {"diffswap": "swapbench.methods.diffswap.method:DiffSwap"}

__all__ = ["CHECKPOINT", "DiffSwap"]


def __getattr__(name: str):
    if name in __all__:
        from swapbench.methods.diffswap import method

        return getattr(method, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
