"""REFace (WACV 2025) on diffusers: see method.py for the pipeline, model.py for the networks, convert.py
for the checkpoint conversion."""

from swapbench.methods.reface.method import REFace

__all__ = ["REFace"]
