"""The Lightning pieces of a run: data sets, prediction writers and the evaluation module.

Swapping and feature extraction are `Trainer.predict` passes whose writers persist every batch to
the store as soon as it is computed, so a killed run loses at most the batch in flight. Scoring is
a `Trainer.test` pass of the Evaluator, whose metrics are torchmetrics Metrics fed from stored
features; it is cheap and recomputed as a whole, so its result never depends on where a run was cut.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from PIL import Image
from torch.utils.data import Dataset

from swapbench.bench import layout
from swapbench.bench.prepare import save_png
from swapbench.bench.store import Store
from swapbench.datasets.images import pixel_sha
from swapbench.faces import warp


def read_png(path: Path) -> torch.Tensor:
    return warp.from_uint8(np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8))


def _store_arg(store):
    """A writer writes through the run's own Store (a rank's shard on several nodes), or opens one at a path."""
    return (store.path, store) if isinstance(store, Store) else (Path(store), None)


class SwapInputs(Dataset):
    """Aligned source and target crops of the pairs still to swap."""

    def __init__(self, items):
        self.items = items  # (pair_id, source Crop, target Crop, source location, target location)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        pair_id, src, tgt, src_location, tgt_location = self.items[i]
        return {
            "pair_id": pair_id,
            "source": read_png(src.path),
            "target": read_png(tgt.path),
            "source_landmarks": torch.from_numpy(src.landmarks),
            "target_landmarks": torch.from_numpy(tgt.landmarks),
            "source_matrix": torch.as_tensor(src.matrix, dtype=torch.float64),
            "target_matrix": torch.as_tensor(tgt.matrix, dtype=torch.float64),
            "source_location": src_location,
            "target_location": tgt_location,
        }


class SwapWriter(BasePredictionWriter):
    """Writes each batch of swaps to disk and records it in the store.

    paste: {pair_id: (target Crop in the method's convention, target Crop in the eval convention)}
    when the two differ; the method's own output is kept under raw/ and the scored image is the
    swap carried into the eval crop (swapbench.faces.warp.carry_into).
    """

    def __init__(self, store: Store | Path, run_id: str, paste: dict | None = None):
        super().__init__(write_interval="batch")
        self.run_id, self.paste = run_id, paste
        self.store_path, self._store = _store_arg(store)
        self.files = layout.files_dir(self.store_path)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        self._store = self._store or Store(self.store_path)
        done = [(p, img) for p, img, err in zip(prediction["pair_id"], prediction["image"], prediction["error"]) if err is None]
        rows = [(p, False, err, None) for p, err in zip(prediction["pair_id"], prediction["error"]) if err is not None]
        if done and self.paste is not None:
            for pair_id, image in done:
                save_png(warp.to_uint8(image), layout.raw_swap_path(self.files, self.run_id, pair_id))
            done = list(zip([p for p, _ in done], self._carry(done)))
        for pair_id, image in done:
            arr = warp.to_uint8(image)
            save_png(arr, layout.swap_path(self.files, self.run_id, pair_id))
            rows.append((pair_id, True, None, pixel_sha(arr)))
        self._store.put_swaps(self.run_id, rows)
        notes = [(p, "note", n) for p, n in zip(prediction["pair_id"], prediction.get("note", ())) if n]
        if notes:  # remarks on swaps that are not failures (SwapMethod.note)
            self._store.put_failures(self.run_id, notes)

    def _carry(self, done) -> torch.Tensor:
        """The batch's swaps blended into the targets' eval crops, in one batched warp."""
        method_crops, eval_crops = zip(*(self.paste[pair_id] for pair_id, _ in done))
        targets = torch.stack([read_png(c.path) for c in eval_crops])
        swaps = torch.stack([image.detach().cpu().float() for _, image in done])
        return warp.carry_into(targets, swaps, np.stack([c.matrix for c in method_crops]),
                               np.stack([c.matrix for c in eval_crops]), np.stack([c.landmarks for c in eval_crops]))


class ImageFiles(Dataset):
    def __init__(self, items):
        self.items = items  # (image sha, path)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        sha, path = self.items[i]
        return {"sha": sha, "image": read_png(path)}


class FeatureExtractor(L.LightningModule):
    """Runs one feature backend over images; the backend follows the module's device."""

    def __init__(self, backend):
        super().__init__()
        self.backend = backend
        # A torch backend's network becomes a submodule, so Lightning moves it to the device.
        self.net = backend.module

    def on_predict_start(self):
        self.backend.device = self.device

    def predict_step(self, batch, batch_idx=0):
        feats = self.backend.extract(batch["image"])
        return {"sha": list(batch["sha"]), "values": feats.values.float().cpu(), "ok": feats.ok.cpu(),
                "reasons": list(feats.reasons)}


class FeatureWriter(BasePredictionWriter):
    def __init__(self, store: Store | Path, backend_name: str):
        super().__init__(write_interval="batch")
        self.backend_name = backend_name
        self.store_path, self._store = _store_arg(store)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        self._store = self._store or Store(self.store_path)
        rows = [
            (sha, bool(ok), reason, values.numpy() if ok else None)
            for sha, values, ok, reason in zip(prediction["sha"], prediction["values"], prediction["ok"],
                                               prediction["reasons"])
        ]
        self._store.put_features(self.backend_name, rows)


class PairFeatures(Dataset):
    """Per pair and metric family: the stored features the metric compares, and whether they exist.

    Held as one tensor per batch entry, its first axis the pairs; an item is that row of each."""

    def __init__(self, columns: dict[str, torch.Tensor]):
        self.columns = columns

    def __len__(self):
        return len(self.columns["pair_index"])

    def __getitem__(self, i):
        return {name: column[i] for name, column in self.columns.items()}


class Evaluator(L.LightningModule):
    """Scores pairs from stored features with one torchmetrics Metric per family.

    Each batch holds, per family, a `valid` mask (features exist for this pair) and the inputs the
    family's metric takes; invalid rows are counted as failures by the engine, not fed.
    """

    def __init__(self, metrics: dict, inputs: dict[str, tuple[str, ...]]):
        super().__init__()
        self.metrics = torch.nn.ModuleDict(metrics)
        self.inputs = inputs  # family -> names of the batch entries passed to update()
        self.results: dict = {}

    def test_step(self, batch, batch_idx=0):
        for family, metric in self.metrics.items():
            valid = batch[f"{family}/valid"]
            if valid.any():
                args = [batch[f"{family}/{name}"][valid] for name in self.inputs[family]]
                metric.update(batch["pair_index"][valid], *args)

    def on_test_epoch_end(self):
        self.results = {family: {k: v.cpu() for k, v in metric.compute().items()}
                        for family, metric in self.metrics.items()}
