import numpy as np
import torch

from swapbench.metrics.refcache import (
    ReferenceStats,
    RefStatsCache,
    file_digest,
    image_digests,
    reference_key,
)


def _features(seed=0, n=50, d=8):
    return np.random.RandomState(seed).normal(size=(n, d)).astype(np.float32)


def test_key_depends_on_content_extractor_and_policy_not_order():
    imgs = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    h = image_digests(imgs)
    key = reference_key(h, "fid_helper_inception", "clean")
    assert key == reference_key(list(reversed(h)), "fid_helper_inception", "clean")  # order-free
    assert key != reference_key(h, "fid_helper_inception", "legacy_torch")
    assert key != reference_key(h, "torch_fidelity_inception", "clean")
    changed = imgs.clone()
    changed[2, 0, 3, 3] = (changed[2, 0, 3, 3] + 0.5) % 1  # one pixel of one image
    assert reference_key(image_digests(changed), "fid_helper_inception", "clean") != key
    # float and uint8 versions of the same 8-bit image hash alike
    assert image_digests((imgs * 255).round().to(torch.uint8)) == h


def test_file_digest_is_content_only(tmp_path):
    (tmp_path / "a.png").write_bytes(b"same bytes")
    (tmp_path / "b.png").write_bytes(b"same bytes")
    assert file_digest(tmp_path / "a.png") == file_digest(tmp_path / "b.png")


def test_reuse(tmp_path):
    cache = RefStatsCache(tmp_path)
    calls = []
    compute = lambda: calls.append(1) or _features()  # noqa: E731
    first = cache.get_or_compute("k1", compute)
    second = cache.get_or_compute("k1", compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first.features, second.features)
    np.testing.assert_array_equal(first.cov, second.cov)
    assert second.n == 50 and second.mean.dtype == np.float64
    np.testing.assert_allclose(second.cov, np.cov(_features().astype(np.float64), rowvar=False))


def test_default_dir_is_overridable(tmp_path, monkeypatch):
    monkeypatch.setenv("SWAPBENCH_REFSTATS", str(tmp_path / "env"))
    assert RefStatsCache().root == tmp_path / "env"
    assert RefStatsCache(tmp_path / "arg").root == tmp_path / "arg"
    monkeypatch.delenv("SWAPBENCH_REFSTATS")
    assert RefStatsCache().root.parts[-2:] == ("swapbench", "refstats")


def _recomputes(cache, key, seed):
    calls = []
    stats = cache.get_or_compute(key, lambda: calls.append(1) or _features(seed))
    return len(calls) == 1, stats


def test_truncated_entry_is_recomputed(tmp_path):
    cache = RefStatsCache(tmp_path)
    cache.save(ReferenceStats.from_features(_features(0), "k"))
    data = cache.path("k").read_bytes()
    cache.path("k").write_bytes(data[: len(data) // 2])
    assert cache.load("k") is None
    recomputed, stats = _recomputes(cache, "k", seed=1)
    assert recomputed and cache.load("k") is not None  # and stored again
    np.testing.assert_array_equal(stats.features, _features(1))


def test_checksum_mismatch_is_recomputed(tmp_path):
    cache = RefStatsCache(tmp_path)
    cache.save(ReferenceStats.from_features(_features(0), "k"))
    with np.load(cache.path("k")) as z:
        arrays = {name: z[name] for name in z.files}
    arrays["mean"] = arrays["mean"] + 1e-3  # a valid file whose content no longer matches its checksum
    np.savez(cache.path("k"), **arrays)
    assert cache.load("k") is None
    assert _recomputes(cache, "k", seed=0)[0]


def test_stale_key_is_recomputed(tmp_path):
    cache = RefStatsCache(tmp_path)
    cache.save(ReferenceStats.from_features(_features(0), "old"))
    cache.path("old").rename(cache.path("new"))  # entry file under the wrong key
    assert cache.load("new") is None
    recomputed, stats = _recomputes(cache, "new", seed=2)
    assert recomputed and stats.key == "new"
    assert cache.load("new").key == "new"


def test_missing_entry(tmp_path):
    assert RefStatsCache(tmp_path / "nothing").load("k") is None
