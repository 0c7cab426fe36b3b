"""Metric families, their columns and their feature backends.

A run chooses one backend per family (`metrics:` in the config). Every value in the results store
names the backend that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass

from swapbench.metrics.backends.base import BACKENDS, FeatureBackend, Features


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    higher_is_better: bool
    percent: bool = False  # 0/1 per pair, shown as a percentage


@dataclass(frozen=True)
class Family:
    name: str
    compares_with: str  # "source" (identity), "target" (attributes) or "reference" (the real set)
    columns: tuple[Column, ...]


FAMILIES = {
    "identity": Family("identity", "source", (
        Column("id_cosine", "ID cos", True),
        Column("id_top1", "ID top-1 %", True, percent=True),
        Column("id_top5", "ID top-5 %", True, percent=True),
    )),
    "pose": Family("pose", "target", (Column("pose_error", "Pose err (°)", False),)),
    "expression": Family("expression", "target", (Column("expression_error", "Expr err", False),)),
    "gaze": Family("gaze", "target", (Column("gaze_error", "Gaze err (°)", False),)),
    "inception": Family("inception", "reference", (
        Column("fid", "FID", False),
        Column("prd_f8", "PRD F8", True),
        Column("prd_f1_8", "PRD F1/8", True),
        Column("precision", "P (k=3)", True),
        Column("recall", "R (k=3)", True),
    )),
}

COLUMNS = {c.name: c for f in FAMILIES.values() for c in f.columns}


def backend_class(name: str) -> type[FeatureBackend]:
    _load_builtin()
    try:
        return BACKENDS[name]
    except KeyError:
        raise KeyError(f"unknown metric backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None


def all_backends() -> dict[str, type[FeatureBackend]]:
    _load_builtin()
    return dict(BACKENDS)


def feature_name(backend) -> str:
    """The name features and values are stored under: the backend, plus its resize policy if it has one."""
    return getattr(backend, "protocol_name", backend.name)


def make_backend(cls, files, cfg) -> FeatureBackend:
    if cls.family == "inception":
        return cls(files, policy=cfg["fid"]["policy"])
    return cls(files)


def make_metric(family: str, **context):
    """The torchmetrics Metric of a family; context carries what it needs (e.g. the identity gallery)."""
    if family == "identity":
        from swapbench.metrics.identity import IdentityMetric

        return IdentityMetric(context["gallery"], context["gallery_identity"])
    if family in ("pose", "expression", "gaze"):
        from swapbench.metrics.expression import ExpressionError
        from swapbench.metrics.gaze import GazeError
        from swapbench.metrics.pose import PoseError

        return {"pose": PoseError, "expression": ExpressionError, "gaze": GazeError}[family]()
    raise KeyError(f"unknown metric family {family!r}; known: {', '.join(FAMILIES)}")


def _load_builtin() -> None:
    from swapbench.metrics import inception  # noqa: F401
    from swapbench.metrics.backends import arcface_onnx, dlib_identity, expression, gaze, irse50, pose  # noqa: F401


__all__ = ["FAMILIES", "COLUMNS", "Features", "backend_class", "all_backends", "make_backend", "make_metric", "feature_name"]
