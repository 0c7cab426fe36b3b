"""Metric families, their metric classes (which own their columns) and their feature backends.

A run chooses one backend per family (`metrics:` in the config). Every value in the results store
names the backend that produced it. Built-in backends are lazy "module:Class" entries of one
registry, so listing them imports no model code.
"""

from __future__ import annotations

from dataclasses import dataclass

from swapbench import weights
from swapbench.metrics.backends.base import FeatureBackend, Features
from swapbench.metrics.cmmd import CMMDScores
from swapbench.metrics.columns import Column
from swapbench.metrics.distribution import DINOV2_COLUMNS, DistributionScores
from swapbench.metrics.expression import ExpressionError
from swapbench.metrics.gaze import GazeError
from swapbench.metrics.identity import IdentityMetric
from swapbench.metrics.pose import PoseError
from swapbench.metrics.shape import ShapeError
from swapbench.metrics.temporal import TEMPORAL_COLUMNS
from swapbench.registry import Registry, UnknownName


@dataclass(frozen=True)
class Family:
    name: str
    compares_with: str  # "source" (identity, shape), "target" (attributes) or "reference" (the real set)
    metric: type  # the class computing the family's columns
    retrieval: bool = False  # compared with the gallery of every source (identity), not only the pair's own

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.metric.columns


FAMILIES = {f.name: f for f in (
    Family("identity", "source", IdentityMetric, retrieval=True),
    Family("shape", "source", ShapeError),
    Family("pose", "target", PoseError),
    Family("expression", "target", ExpressionError),
    Family("gaze", "target", GazeError),
    Family("inception", "reference", DistributionScores),
    Family("clip", "reference", CMMDScores),
)}

# backend -> {family column: the column its values are shown under}: a family's values from another kind of
# feature get their own columns (FD-DINOv2, not FID), so tables never mix them.
COLUMN_VARIANTS = {"dinov2_vitl14": DINOV2_COLUMNS}
VARIANT_OF = {c.name: m for v in COLUMN_VARIANTS.values() for m, c in v.items()}  # variant column -> family column
COLUMNS = {c.name: c for f in FAMILIES.values() for c in f.columns} | {
    c.name: c for v in COLUMN_VARIANTS.values() for c in v.values()}
# The temporal family of video protocols: per clip, scored by bench.clips from the swaps, the target crops
# and the identity family's embeddings; it has no feature backend of its own.
COLUMNS.update({c.name: c for c in TEMPORAL_COLUMNS})


def shown_as(metric: str, backend: str | None) -> str:
    """The column a stored value is shown under: its own, or its backend's variant (e.g. fid on DINOv2: fd_dinov2)."""
    variants = COLUMN_VARIANTS.get((backend or "").partition("/")[0], {})
    return variants[metric].name if metric in variants else metric

BACKENDS: Registry[type[FeatureBackend]] = Registry("metric backend", entry_point_group="swapbench.backends")
for _name, _target in {
    "dlib_resnet_v1": "swapbench.metrics.backends.dlib_identity:DlibIdentity",
    "arcface_irse50_reface": "swapbench.metrics.backends.irse50:ArcFaceIRSE50REFace",
    "arcface_irse50_reface_ffpp": "swapbench.metrics.backends.irse50:ArcFaceIRSE50REFaceFFpp",
    "insightface_w600k_r50": "swapbench.metrics.backends.arcface_onnx:InsightfaceW600kR50",
    "insightface_glint360k_r100": "swapbench.metrics.backends.arcface_onnx:InsightfaceGlint360kR100",
    "cosface_sphere20_casia": "swapbench.metrics.backends.cosface:CosFaceSphere20CASIA",
    "cosface_sphere20_vggface2": "swapbench.metrics.backends.cosface:CosFaceSphere20VGGFace2",
    "blendface_r100": "swapbench.metrics.backends.blendface:BlendFaceR100",
    "mediapipe_pose": "swapbench.metrics.backends.pose:MediapipePose",
    "pnp68_pose": "swapbench.metrics.backends.pose:Pnp68Pose",
    "hopenet": "swapbench.metrics.backends.pose:HopenetPose",
    "mediapipe_blendshapes": "swapbench.metrics.backends.expression:MediapipeBlendshapes",
    "hsemotion": "swapbench.metrics.backends.expression:HSEmotion",
    "deep3d_exp": "swapbench.metrics.backends.expression:Deep3DExpression",
    "deep3d_id": "swapbench.metrics.backends.expression:Deep3DShape",
    "mediapipe_iris_gaze": "swapbench.metrics.backends.gaze:MediapipeIrisGaze",
    "l2cs": "swapbench.metrics.backends.gaze:L2CSGaze",
    "dinov2_vitl14": "swapbench.metrics.backends.dinov2:DINOv2Features",
    "clip_vitl14_336": "swapbench.metrics.backends.clip:CLIPEmbeddings",
    "fid_helper_inception": "swapbench.metrics.inception:FidHelperInception",
    "torch_fidelity_inception": "swapbench.metrics.inception:TorchFidelityInception",
}.items():
    BACKENDS.add(_name, _target)


def backend_class(name: str) -> type[FeatureBackend]:
    return BACKENDS.get(name)


def all_backends() -> dict[str, type[FeatureBackend]]:
    return BACKENDS.all()


def build_backend(backend: str | type[FeatureBackend], cfg: dict | None = None, weights_dir=None) -> FeatureBackend:
    """Resolve a backend's declared files (one WeightsError naming every missing one) and build it.

    With a run config, the backend reads its options from it (e.g. inception: `fid.policy`)."""
    cls = backend_class(backend) if isinstance(backend, str) else backend
    files = weights.resolve(cls.weights, cfg["weights_dir"] if cfg else weights_dir)
    return cls.from_config(files, cfg) if cfg else cls(files)


def make_metric(family: str, **context):
    """The torchmetrics Metric of a family; context carries what it needs (e.g. the identity gallery)."""
    if family not in FAMILIES or FAMILIES[family].compares_with == "reference":
        raise UnknownName(f"no per-pair metric for family {family!r}; per-pair families: "
                       f"{', '.join(f for f, v in FAMILIES.items() if v.compares_with != 'reference')}")
    return FAMILIES[family].metric(**context)


__all__ = ["FAMILIES", "COLUMNS", "COLUMN_VARIANTS", "VARIANT_OF", "shown_as", "BACKENDS", "Column", "Features",
           "backend_class", "all_backends", "build_backend", "make_metric"]
