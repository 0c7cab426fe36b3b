"""MegaFS (zyainfal/One-Shot-Face-Swapping-on-Megapixels): HieRFE + FTM/injection/LCR + StyleGAN2.

Three methods, one per released swap module: "megafs" (FTM, the paper's main model),
"megafs_injection" and "megafs_lcr". The names below are imported from .method on first use, so the
registry can read METHODS without loading the networks.
"""

METHODS = {
    "megafs": "swapbench.methods.megafs.method:MegaFS",
    "megafs_injection": "swapbench.methods.megafs.method:MegaFSInjection",
    "megafs_lcr": "swapbench.methods.megafs.method:MegaFSLCR",
}

__all__ = ["STYLEGAN_FILE", "SWAP_FILES", "MegaFS", "MegaFSInjection", "MegaFSLCR", "MegaFSOptions"]


def __getattr__(name: str):
    if name in __all__:
        from swapbench.methods.megafs import method

        return getattr(method, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
