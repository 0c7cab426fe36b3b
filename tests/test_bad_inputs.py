"""A run over a protocol that mixes the bad-input corpus with good faces finishes and records every bad pair."""

import sqlite3

import pytest

from bad_inputs import EXPECTED, write_corpus
from swapbench.bench import config, engine
from swapbench.bench.store import Store
from swapbench.datasets import PROTOCOLS, ImageRef, Pair, Protocol
from swapbench.datasets.protocol import DataError
from swapbench.leaderboard import tables

GOOD = "pkg://matplotlib/mpl-data/sample_data/grace_hopper.jpg"


def test_bad_inputs_are_recorded_and_good_pairs_evaluated(tmp_path, monkeypatch):
    files = write_corpus(tmp_path / "corpus")
    images = {"good": ImageRef("good", "hopper", GOOD)}
    images.update({name: ImageRef(name, name, str(path)) for name, path in files.items()})
    pairs = [Pair(source="good", target=name) for name in files]
    protocol = Protocol("badinputs", "1", "bad-input corpus", images, pairs)
    monkeypatch.setitem(PROTOCOLS, "badinputs", lambda: protocol)

    store_path = tmp_path / "r.sqlite"
    overrides = {"protocol": "badinputs", "methods": ["classic"], "store": str(store_path),
                 "metrics": {"identity": "dlib_resnet_v1"}}
    # A missing file stops a run by default, naming it; allow_missing records it per pair instead.
    with pytest.raises(DataError, match="missing.jpg"):
        engine.run(config.load((), overrides), show_progress=False)
    engine.run(config.load((), {**overrides, "data": {"allow_missing": True}}), show_progress=False)

    db = sqlite3.connect(store_path)
    failures = dict(db.execute("SELECT pair_id, reason FROM failures WHERE stage='face'").fetchall())
    valued = {p for (p,) in db.execute("SELECT DISTINCT pair_id FROM pair_values")}
    for name, expected in EXPECTED.items():
        pair_id = f"{name}__good"
        if expected == "ok":
            assert pair_id in valued, (name, failures.get(pair_id))
        else:
            assert pair_id not in valued
            assert expected in failures[pair_id], (name, failures[pair_id])
            assert name in failures[pair_id]  # the reason names the file
    # The several-faces choice is recorded with the crop.
    reasons = [r for (r,) in db.execute("SELECT reason FROM faces WHERE ok=1")]
    assert any(r.startswith("6 faces, kept the largest") for r in reasons)

    n_ok = sum(v == "ok" for v in EXPECTED.values())
    md = tables.markdown(tables.collect(Store(store_path), "badinputs"), Store(store_path))
    assert f"{n_ok}/{len(EXPECTED)} evaluated, {len(EXPECTED) - n_ok} failed" in md
