"""FSLSD-HiRes (cnnlstm/FSLSD_HiRes): latent-semantics-disentangled StyleGAN2 face swapping at 1024.

The names below are imported from .method on first use, so the registry can read METHODS without
loading the networks.
"""

METHODS = {"fslsd": "swapbench.methods.fslsd.method:FSLSD"}

__all__ = ["FSLSD", "FSLSD_FILE", "H3R_FILE", "PSP_FILE", "FSLSDOptions"]


def __getattr__(name: str):
    if name in __all__:
        from swapbench.methods.fslsd import method

        return getattr(method, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
