"""INSwapper (insightface's inswapper_128.onnx, run as insightface's INSwapper class runs it).

The names below are imported from .method on first use, so the registry can read METHODS without
loading onnx or onnxruntime.
"""

METHODS = {"inswapper": "swapbench.methods.inswapper.method:INSwapper"}

__all__ = ["INSWAPPER_128", "INSWAPPER_128_FP16", "INSwapper", "paste_back"]


def __getattr__(name: str):
    if name in __all__:
        from swapbench.methods.inswapper import method

        return getattr(method, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
