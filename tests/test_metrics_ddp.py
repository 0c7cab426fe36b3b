"""The pairwise metrics under DDP (2 CPU processes, gloo) give the single-process values.

DistributedSampler pads 101 pairs to 102 on 2 processes by repeating a pair; the metrics must
count it once.
"""

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DistributedSampler

from swapbench.metrics.expression import ExpressionError
from swapbench.metrics.gaze import GazeError
from swapbench.metrics.pose import PoseError

N_PAIRS = 101
METRICS = {"pose": (PoseError, 3), "expression": (ExpressionError, 8), "gaze": (GazeError, 2)}


def pair_features(dim):
    g = torch.Generator().manual_seed(dim)
    return 30 * torch.randn(N_PAIRS, dim, generator=g), 30 * torch.randn(N_PAIRS, dim, generator=g)


def run_metric(name, indices):
    cls, dim = METRICS[name]
    swap, target = pair_features(dim)
    metric = cls()
    for start in range(0, len(indices), 8):
        idx = torch.tensor(indices[start : start + 8])
        metric.update(idx, swap[idx], target[idx])
    return {k: (v.item() if v.ndim == 0 else v.tolist()) for k, v in metric.compute().items()}


def _worker(rank, world_size, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        sampler = DistributedSampler(range(N_PAIRS), num_replicas=world_size, rank=rank, shuffle=False)
        indices = list(sampler)
        results = {name: run_metric(name, indices) for name in METRICS}
        results["shard"] = indices
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(2, free_port(), str(out)), nprocs=2, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


def test_sampler_pads_with_a_repeated_pair(ddp_results):
    shards = [r["shard"] for r in ddp_results]
    assert sum(len(s) for s in shards) == N_PAIRS + 1
    assert len(set(shards[0]) | set(shards[1])) == N_PAIRS


@pytest.mark.parametrize("name", list(METRICS))
def test_ddp_equals_single_process(ddp_results, name):
    single = run_metric(name, list(range(N_PAIRS)))
    for rank in range(2):
        got = ddp_results[rank][name]
        assert got["pair_index"] == single["pair_index"] == list(range(N_PAIRS))
        np.testing.assert_allclose(got["pair_values"], single["pair_values"], rtol=1e-12)
        assert got["value"] == pytest.approx(single["value"], rel=1e-12)
    # counting the padded pair twice would have moved the mean
    padded = ddp_results[0]["shard"] + ddp_results[1]["shard"]
    naive = np.mean([single["pair_values"][i] for i in padded])
    assert abs(naive - single["value"]) > 1e-6
