import numpy as np
import torch

from swapbench.metrics.identity import IdentityMetric


def numpy_identity(swap, gallery, gallery_id, source_index):
    """Independent computation: plain loops over normalised vectors."""
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    out = []
    for s, si in zip(swap, source_index):
        s = s / np.linalg.norm(s)
        sims = g @ s
        best = {}
        for ident, sim in zip(gallery_id, sims):
            best[ident] = max(best.get(ident, -9), sim)
        ranking = sorted(best, key=lambda k: -best[k])
        pos = ranking.index(gallery_id[si])
        out.append((sims[si], pos < 1, pos < 5))
    return np.array(out, dtype=np.float64)


def test_identity_metric_matches_numpy_and_dedupes():
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(12, 16))
    gallery_id = np.array([0, 0, 1, 2, 3, 4, 5, 6, 7, 7, 8, 9])
    swap = gallery[rng.integers(0, 12, 40)] + rng.normal(scale=1.2, size=(40, 16))
    source_index = rng.integers(0, 12, 40)
    expected = numpy_identity(swap, gallery, gallery_id, source_index)

    m = IdentityMetric(torch.tensor(gallery), torch.tensor(gallery_id))
    idx = torch.arange(40)
    m.update(idx[:25], torch.tensor(swap[:25]), torch.tensor(source_index[:25]))
    m.update(idx[20:], torch.tensor(swap[20:]), torch.tensor(source_index[20:]))  # 5 repeated pairs
    res = m.compute()
    assert res["pair_index"].tolist() == list(range(40))
    got = torch.stack([res["id_cosine"], res["id_top1"], res["id_top5"]], 1).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert 0 < expected[:, 1].mean() < expected[:, 2].mean() < 1  # the test exercises misses and hits


def test_dlib_puts_one_person_closer_than_two_people():
    """Three photographs of one man are closer to each other than to any photograph of anyone else."""
    from itertools import combinations

    from faces import to_tensor
    from same_person import photos

    from swapbench.datasets import get_protocol
    from swapbench.datasets.images import load_image
    from swapbench.faces import detect, templates, warp
    from swapbench.metrics.backends.dlib_identity import DlibIdentity

    images = photos()
    images.update({key: load_image(ref.uri) for key, ref in get_protocol("samples").images.items()})
    crops = {}
    for key, image in images.items():
        face, _ = detect.pick(detect.detect(image), image.shape)
        crops[key] = warp.align_image(image, templates.estimate_transform("ffhq_256", face.landmarks), 256)
    feats = DlibIdentity().extract(to_tensor(*crops.values()))
    assert feats.ok.all(), feats.reasons
    vec = dict(zip(crops, feats.values.double().numpy()))

    def dist(a, b):
        return float(np.linalg.norm(vec[a] - vec[b]))

    same = [dist(a, b) for a, b in combinations(["obama_1", "obama_2", "obama_3"], 2)]
    different = [dist(o, other) for o in ("obama_1", "obama_2", "obama_3") for other in vec if not other.startswith("obama")]
    assert max(same) < min(different), (same, sorted(different)[:3])
    # dlib's own decision threshold (0.6) separates them as well
    assert max(same) < 0.6 < min(different)
