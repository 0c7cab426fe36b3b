"""Lightning plumbing of a run: trainers, loaders, prediction passes, rank and stage timing."""

from __future__ import annotations

import logging
import time
import warnings
from contextlib import contextmanager

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data._utils.collate import collate, default_collate_fn_map


def loader(dataset, cfg) -> DataLoader:
    e = cfg["engine"]
    # num_workers null: the face stage uses every core; the loaders read PNGs in-process
    return DataLoader(dataset, batch_size=e["batch_size"], num_workers=e["num_workers"] or 0, shuffle=False,
                      collate_fn=collate_batch)


def collate_batch(batch):
    """torch's default collation (its documented registry of collate functions), CPU tensors stacked by
    numpy: torch.stack splits the copy over the intra-op threads and, on a busy CPU, waited about 10 ms
    a batch for them."""
    return collate(batch, collate_fn_map={**default_collate_fn_map, torch.Tensor: _stack})


def _stack(batch, *, collate_fn_map=None):
    if batch[0].device.type != "cpu":
        return default_collate_fn_map[torch.Tensor](batch, collate_fn_map=collate_fn_map)
    return torch.from_numpy(np.stack([t.numpy() for t in batch]))


def predict(cfg, module, dataset, writer, progress=None) -> None:
    """One `Trainer.predict` pass whose writer persists every batch."""
    trainer = make_trainer(cfg, [writer] + ([progress] if progress else []))
    trainer.predict(module, loader(dataset, cfg), return_predictions=False)
    # Under DDP every rank writes its shard; all of them must be in the store before anyone reads it.
    trainer.strategy.barrier("predictions written")


def make_trainer(cfg, callbacks=()) -> L.Trainer:
    e = cfg["engine"]
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*predict_dataloader.*|.*test_dataloader.*")
    warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
    # Metrics key values by pair index and keep one row per pair, so DistributedSampler's padding is harmless.
    warnings.filterwarnings("ignore", message=".*Using `DistributedSampler` with the dataloaders.*")
    callbacks = list(callbacks)
    return L.Trainer(accelerator=e["accelerator"], devices=e["devices"], num_nodes=e["num_nodes"], strategy=e["strategy"],
                     precision=e["precision"], logger=False, enable_checkpointing=False,
                     enable_model_summary=False, enable_progress_bar=any(_is_progress(c) for c in callbacks),
                     callbacks=callbacks, deterministic=True)


def _is_progress(callback) -> bool:
    from lightning.pytorch.callbacks.progress import ProgressBar

    return isinstance(callback, ProgressBar)


def world(cfg) -> tuple[int, int]:
    """(global rank, world size) of this process, from Lightning's cluster environment (SLURM, torchrun,
    or NODE_RANK/LOCAL_RANK as Lightning's own launcher sets them), before any process group exists."""
    strategy = make_trainer(cfg).strategy
    env = strategy.cluster_environment
    if env is None:
        return 0, 1
    world_size = cfg["engine"]["num_nodes"] * len(strategy.parallel_devices or [None])
    return env.node_rank() * len(strategy.parallel_devices or [None]) + env.local_rank(), world_size


def is_global_zero() -> bool:
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


@contextmanager
def timed(store, run_id, stage):
    t0 = time.perf_counter()
    yield
    if is_global_zero():
        store.add_timing(run_id, stage, time.perf_counter() - t0)


def device(cfg) -> str:
    """This process's torch device as Lightning places the run ('cpu', 'cuda:<local rank>'), known
    before any process group exists."""
    strategy = make_trainer(cfg).strategy
    devices = getattr(strategy, "parallel_devices", None) or [strategy.root_device]
    env = getattr(strategy, "cluster_environment", None)
    local = env.local_rank() if env is not None else 0
    return str(devices[local % len(devices)])
