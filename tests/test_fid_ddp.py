"""FID under DDP: 2 CPU processes (gloo) give the same statistics and value as 1 process."""

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from _tiny_extractor import TinyExtractor, image_set

from swapbench.metrics.fid import FID
from swapbench.metrics.refcache import ReferenceStats

N_REAL, N_FAKE = 37, 29  # odd: the last shard is padded with a repeated sample, masked by keep


def _shard(images: torch.Tensor, rank: int, world: int):
    """Like DistributedSampler: pad to a multiple of world with repeats; return the shard and its keep mask."""
    idx = list(range(len(images)))
    pad = (-len(idx)) % world
    idx += idx[:pad]
    mine = idx[rank::world]
    keep = torch.tensor([i < len(images) and pos < len(images) for pos, i in
                         zip(range(rank, len(idx), world), mine)])
    return images[mine], keep


def _run(rank: int, world: int, port: int, out: str):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    real, fake = image_set(N_REAL, seed=1), image_set(N_FAKE, seed=2, gamma=1.4)
    ext = TinyExtractor()

    fid = FID(ext, keep_features=True, min_samples=30)
    for side, images in (("real", real), ("fake", fake)):
        shard, keep = _shard(images, rank, world)
        for chunk, k in zip(shard.split(5), keep.split(5)):
            fid.update(chunk, real=side == "real", keep=k)
    res = fid.result()
    stats = fid.reference_stats("k")
    fake_features = fid.gathered_features(real=False)

    # Reference from the cache, set on every rank: counted once, not once per rank.
    cached = FID(ext, min_samples=30)
    cached.set_reference(ReferenceStats.from_features(ext(real), "k"))
    shard, keep = _shard(fake, rank, world)
    cached.update(shard, real=False, keep=keep)
    res_cached = cached.result()
    if rank == 0:
        np.savez(out, fid=res.fid, n_fake=res.n_fake, n_ref=res.n_ref, meaningful=res.meaningful,
                 mean=stats.mean, cov=stats.cov, n=stats.n, real_features=stats.features,
                 fake_features=fake_features.numpy(), cached_fid=res_cached.fid, cached_n_ref=res_cached.n_ref,
                 cached_n_fake=res_cached.n_fake)
    dist.barrier()
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sorted_rows(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T[::-1])]


def test_ddp_two_processes_equal_one(tmp_path):
    out = str(tmp_path / "ddp.npz")
    mp.spawn(_run, args=(2, _free_port(), out), nprocs=2, join=True)
    got = dict(np.load(out))

    real, fake = image_set(N_REAL, seed=1), image_set(N_FAKE, seed=2, gamma=1.4)
    ext = TinyExtractor()
    single = FID(ext, keep_features=True, min_samples=30)
    single.update(real, real=True)
    single.update(fake, real=False)
    res = single.result()
    stats = single.reference_stats("k")

    assert (int(got["n_ref"]), int(got["n_fake"])) == (N_REAL, N_FAKE)  # padding masked out
    assert bool(got["meaningful"]) == res.meaningful is False  # 29 < 30
    # Features are float32 and a batch of 5 rounds differently from a batch of 37 (matmul blocking,
    # ~1e-7 relative); the float64 sums add nothing measurable. Measured FID difference: 1.3e-9 relative.
    assert float(got["fid"]) == pytest.approx(res.fid, rel=1e-6)
    np.testing.assert_allclose(got["mean"], stats.mean, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got["cov"], stats.cov, rtol=1e-5, atol=1e-7)
    assert int(got["n"]) == N_REAL
    np.testing.assert_allclose(_sorted_rows(got["real_features"]), _sorted_rows(stats.features), atol=1e-6)
    np.testing.assert_allclose(_sorted_rows(got["fake_features"]),
                               _sorted_rows(single.gathered_features(real=False).numpy()), atol=1e-6)
    assert int(got["cached_n_ref"]) == N_REAL and int(got["cached_n_fake"]) == N_FAKE
    assert float(got["cached_fid"]) == pytest.approx(res.fid, rel=1e-6)
    assert float(got["fid"]) > 0.1  # the two sets differ, so the comparison above is not of zeros
