"""The swap interface every method implements.

The engine detects, aligns and crops faces once per crop convention, so every method sees identical
inputs; a method only maps aligned source/target crops to aligned swapped crops. Methods never read
files or download anything: the engine resolves the weight files a method declares and hands it the
loaded state dicts through `load_weights`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import lightning as L
import torch

from swapbench.bench.weights import WeightFile


@dataclass
class FaceBatch:
    """Aligned face crops of one crop convention.

    image: float tensor [B, 3, S, S] in [0, 1], RGB.
    landmarks: float tensor [B, 68, 2], dlib 68-point landmarks in crop pixel coordinates (x, y).
    """

    image: torch.Tensor
    landmarks: torch.Tensor
    pair_id: list[str] | None = None  # one id per row; seeds the pair's random draws (pair_generator)

    def __len__(self) -> int:
        return self.image.shape[0]


class SwapMethod(L.LightningModule):
    """Base class of every face-swap method.

    Subclasses set the class attributes and implement `swap`. `predict_step` turns a batch from the
    engine into two FaceBatches, calls `swap` and returns the swapped crops with the pair ids. If a
    batch fails, each pair is retried alone so one bad pair cannot take the batch down; the reason
    of every failed pair is returned for the results store.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    crop: ClassVar[str] = "ffhq"  # crop convention, see swapbench.faces.templates
    size: ClassVar[int] = 256  # crop side in pixels
    weights: ClassVar[tuple[WeightFile, ...]] = ()
    # True for reference rows (e.g. methods run with random weights in tests): never published.
    publishable: ClassVar[bool] = True

    @property
    def convention(self) -> str:
        return f"{self.crop}_{self.size}"

    seed: int = 0  # run seed (engine.seed); with the pair id it seeds every random draw of a swap

    def pair_generator(self, pair_id: str, device: torch.device | str = "cpu") -> torch.Generator:
        """A torch.Generator on `device` seeded by (run seed, pair id): a swap never depends on its batch."""
        from swapbench.methods.diffusion.noise import pair_generator

        return pair_generator(self.seed, pair_id, device)

    def load_weights(self, state: dict[str, object]) -> None:
        """Receive the loaded contents of `weights`, keyed by WeightFile.name."""
        if self.weights:
            raise NotImplementedError(f"{self.name} declares weights but does not load them")

    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        """Return the swapped faces, [B, 3, S, S] in [0, 1]: source identity, target attributes."""
        raise NotImplementedError

    def predict_step(self, batch, batch_idx: int = 0):
        ids = list(batch["pair_id"])
        src = FaceBatch(batch["source"], batch["source_landmarks"], ids)
        tgt = FaceBatch(batch["target"], batch["target_landmarks"], ids)
        try:
            out = self._checked_swap(src, tgt)
            return {"pair_id": ids, "image": out, "error": [None] * len(ids)}
        except Exception as exc:  # noqa: BLE001 - isolate the failing pair below
            if len(ids) == 1:
                return {"pair_id": ids, "image": torch.zeros_like(tgt.image), "error": [f"{type(exc).__name__}: {exc}"]}
        images, errors = [], []
        for i in range(len(ids)):
            one = slice(i, i + 1)
            try:
                images.append(self._checked_swap(
                    FaceBatch(src.image[one], src.landmarks[one], ids[one]),
                    FaceBatch(tgt.image[one], tgt.landmarks[one], ids[one]),
                ))
                errors.append(None)
            except Exception as exc:  # noqa: BLE001 - recorded per pair, never dropped
                images.append(torch.zeros_like(tgt.image[one]))
                errors.append(f"{type(exc).__name__}: {exc}")
        return {"pair_id": ids, "image": torch.cat(images), "error": errors}

    def _checked_swap(self, src: FaceBatch, tgt: FaceBatch) -> torch.Tensor:
        out = self.swap(src, tgt)
        if out.shape != tgt.image.shape:
            raise ValueError(f"{self.name} returned shape {tuple(out.shape)}, expected {tuple(tgt.image.shape)}")
        if not torch.isfinite(out).all():
            raise ValueError(f"{self.name} returned non-finite values")
        return out.clamp(0, 1)
