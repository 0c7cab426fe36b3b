"""Feature backends: models that map face crops to the vectors the metrics compare.

A backend takes swapped or reference face crops (float [B, 3, H, W] in [0, 1], RGB, the crop
convention of the run) and returns one vector per image, plus a flag per image saying whether a
vector could be computed (e.g. no face found in a swap) and why not. Backends are named in every
result, so two numbers from different backends are never mistaken for one another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from swapbench.bench.weights import WeightFile


@dataclass
class Features:
    values: torch.Tensor  # [B, D] float32; rows where ok is False are ignored
    ok: torch.Tensor  # [B] bool
    reasons: list  # [B] str or None: why a row could not be computed


class FeatureBackend:
    name: ClassVar[str]  # e.g. "dlib_resnet_v1"
    family: ClassVar[str]  # "identity" | "pose" | "expression" | "gaze" | "inception"
    dim: ClassVar[int]
    weights: ClassVar[tuple[WeightFile, ...]] = ()
    input: ClassVar[str] = ""  # human-readable input convention, shown by `bench weights`
    licence: ClassVar[str] = ""

    def __init__(self, files: dict[str, Path] | None = None, device: str | torch.device = "cpu"):
        self.files = files or {}
        self.device = torch.device(device)

    def extract(self, images: torch.Tensor) -> Features:
        raise NotImplementedError


BACKENDS: dict[str, type[FeatureBackend]] = {}


def register_backend(cls: type[FeatureBackend]) -> type[FeatureBackend]:
    if cls.name in BACKENDS:
        raise ValueError(f"backend {cls.name!r} registered twice")
    BACKENDS[cls.name] = cls
    return cls
