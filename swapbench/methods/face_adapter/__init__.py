"""Face-Adapter (FaceAdapter/Face-Adapter, ECCV 2024) on diffusers: the method "face_adapter".

method.py holds the pipeline, tokens.py the token decoders, condition.py the crops, landmark image and
masks. The class is imported from .method on first use, so the registry can read METHODS without loading
diffusers or transformers.
"""

METHODS = {"face_adapter": "swapbench.methods.face_adapter.method:FaceAdapter"}

__all__ = ["FaceAdapter"]


def __getattr__(name: str):
    if name in __all__:
        from swapbench.methods.face_adapter import method

        return getattr(method, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
