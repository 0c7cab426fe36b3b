"""REFace (WACV 2025) on diffusers: method.py holds the pipeline, model.py the networks, convert.py the
checkpoint conversion. The class is imported from .method on first use, so the registry can read METHODS
without loading diffusers or transformers."""

METHODS = {"reface": "swapbench.methods.reface.method:REFace"}

__all__ = ["REFace"]


def __getattr__(name: str):
    if name in __all__:
        from swapbench.methods.reface import method

        return getattr(method, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
