"""DiffSwap (wl-zhao/DiffSwap, CVPR 2023) on diffusers. Importing this package registers the method "diffswap"."""

from swapbench.methods.diffswap.method import CHECKPOINT, DiffSwap

__all__ = ["CHECKPOINT", "DiffSwap"]
