"""InfoSwap (Gao et al., CVPR 2021): information-bottleneck identity disentanglement, ported for swapbench.

The names below are imported from .method on first use, so the registry can read METHODS without
loading the networks.
"""

METHODS = {"infoswap": "swapbench.methods.infoswap.method:InfoSwap"}

__all__ = ["InfoSwap", "InfoSwapOptions", "model_files", "readout_files"]


def __getattr__(name: str):
    if name in __all__:
        from swapbench.methods.infoswap import method

        return getattr(method, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
