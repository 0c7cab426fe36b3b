"""E4S (CVPR 2023): face swapping by regional GAN inversion (e4s2022/e4s).

rgi.py: the RGI model (Net3); compose.py: parser input, mask and texture swap, blend; method.py: the
method `e4s`. Reenactment (FaceVid2Vid, reenact.py) and restoration (GPEN, restore.py) are separate
modules the method calls when its `reenact` / `restore` options are on. The names below are imported
from .method on first use, so the registry reads METHODS without loading the networks.
"""

METHODS = {"e4s": "swapbench.methods.e4s.method:E4S"}

__all__ = ["E4S", "E4SOptions", "E4S_WEIGHTS"]


def __getattr__(name: str):
    if name in __all__:
        from swapbench.methods.e4s import method

        return getattr(method, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
