"""The FID metric inside a Lightning test loop, the way the engine uses it."""

import lightning as L
import pytest
import torch
from _tiny_extractor import TinyExtractor, image_set
from torch.utils.data import DataLoader, TensorDataset

from swapbench.metrics.fid import FID
from swapbench.metrics.refcache import ReferenceStats


class Evaluator(L.LightningModule):
    def __init__(self, reference: ReferenceStats):
        super().__init__()
        self.fid = FID(TinyExtractor(), extractor_name="tiny", policy="none", min_samples=10, keep_features=True)
        self.fid.set_reference(reference)
        self.results = None

    def test_step(self, batch, batch_idx):
        swaps, ok = batch
        self.fid.update(swaps, real=False, keep=ok)

    def on_test_epoch_end(self):
        self.results = self.fid.result()
        self.log("fid", self.results.fid)


def test_fid_in_lightning_test_loop():
    real, fake = image_set(40, seed=1), image_set(30, seed=2, gamma=1.4)
    ok = torch.ones(30, dtype=torch.bool)
    ok[[3, 17]] = False  # failed swaps are not counted
    ext = TinyExtractor()
    model = Evaluator(ReferenceStats.from_features(ext(real), "k"))
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False)
    logged = trainer.test(model, DataLoader(TensorDataset(fake, ok), batch_size=8), verbose=False)

    direct = FID(ext)
    direct.set_reference(ReferenceStats.from_features(ext(real), "k"))
    direct.update(fake[ok], real=False)
    assert model.results.n_fake == 28 and model.results.n_ref == 40 and model.results.meaningful
    assert model.results.fid == pytest.approx(direct.result().fid, rel=1e-6)
    assert logged[0]["fid"] == pytest.approx(model.results.fid, rel=1e-6)
    assert model.fid.gathered_features().shape == (28, 32)
