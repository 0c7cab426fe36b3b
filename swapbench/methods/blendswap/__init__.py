"""BlendSwap (mapooon/BlendFace, ICCV 2023): AEI-Net swapper conditioned on the BlendFace identity encoder.

The names below are imported from .method on first use, so the registry can read METHODS without
loading the networks.
"""

METHODS = {"blendswap": "swapbench.methods.blendswap.method:BlendSwap"}

__all__ = ["BLENDFACE_FILE", "BLENDSWAP_FILE", "BlendSwap"]


def __getattr__(name: str):
    if name in __all__:
        from swapbench.methods.blendswap import method

        return getattr(method, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
