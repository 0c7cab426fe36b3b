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

from swapbench import weights
from swapbench.weights import WeightFile, WeightsError


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
    # The backend's torch network, if any: the engine's feature extractor moves it to the run's device.
    module: torch.nn.Module | None = None
    licence: ClassVar[str] = ""

    def __init__(self, files: dict[str, Path] | None = None, device: str | torch.device = "cpu"):
        self.files = files or {}  # registry name -> resolved path, for every declared file
        self.device = torch.device(device)
        missing = [f.filename for f in self.weights if f.name not in self.files]
        if missing:
            raise WeightsError(f"backend {self.name} was built without its weight files {', '.join(missing)}: "
                               f"resolve them first (swapbench.weights.resolve({type(self).__name__}.weights))")

    def open(self, f: WeightFile):
        """One of the declared files, opened by the weights layer the way its format is opened."""
        return weights.load(f, self.files[f.name])

    @classmethod
    def from_config(cls, files: dict[str, Path], cfg: dict) -> "FeatureBackend":
        """The backend of a run: its resolved files and the config (e.g. inception reads `fid.policy`)."""
        return cls(files)

    @property
    def feature_name(self) -> str:
        """The name features and values are stored under (the backend, plus e.g. its resize policy)."""
        return self.name

    def extract(self, images: torch.Tensor) -> Features:
        raise NotImplementedError

