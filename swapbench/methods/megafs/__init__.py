"""MegaFS (zyainfal/One-Shot-Face-Swapping-on-Megapixels): HieRFE + FTM/injection/LCR + StyleGAN2.

Importing this package registers the methods "megafs" (FTM), "megafs_injection" and "megafs_lcr".
"""

from swapbench.methods.megafs.method import (
    STYLEGAN_FILE,
    SWAP_FILES,
    MegaFS,
    MegaFSInjection,
    MegaFSLCR,
    MegaFSOptions,
)

__all__ = ["STYLEGAN_FILE", "SWAP_FILES", "MegaFS", "MegaFSInjection", "MegaFSLCR", "MegaFSOptions"]
