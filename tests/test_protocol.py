from swapbench.datasets import get_protocol
from swapbench.datasets.images import load_image


def test_samples_protocol_has_all_ordered_pairs_of_distinct_people():
    p = get_protocol("samples")
    identities = {r.identity for r in p.images.values()}
    assert len(identities) >= 6
    assert len(p.pairs) == len(identities) * (len(identities) - 1)
    assert all(p.images[x.source].identity != p.images[x.target].identity for x in p.pairs)


def test_samples_images_are_real_photographs_from_installed_packages():
    for ref in get_protocol("samples").images.values():
        image = load_image(ref.uri)
        assert image.dtype.name == "uint8" and image.ndim == 3 and image.shape[2] == 3
        assert min(image.shape[:2]) >= 100
        assert image.std() > 20  # a photograph, not a blank


def test_hash_is_stable_and_covers_pairs():
    a, b = get_protocol("samples"), get_protocol("samples")
    assert a.hash == b.hash
    b.pairs = b.pairs[:-1]
    assert a.hash != b.hash


def test_subset_is_deterministic_and_order_independent():
    p = get_protocol("samples")
    s1, s2 = p.subset(10), p.subset(10)
    assert [x.pair_id for x in s1.pairs] == [x.pair_id for x in s2.pairs]
    assert len(s1.pairs) == 10 and s1.hash != p.hash and s1.subset_of == p.hash
    p.pairs = list(reversed(p.pairs))
    assert {x.pair_id for x in p.subset(10).pairs} == {x.pair_id for x in s1.pairs}
    assert p.subset(None) is p
