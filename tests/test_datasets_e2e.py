"""`bench run` on the celebahq and ffpp protocols over tiny trees in the real layouts, and the precomputed method."""

import shutil
import sqlite3

import pytest
from conftest import bench
from datafixtures import celebahq_tree, ffpp_tree

from swapbench.datasets import get_protocol


def runs(store):
    db = sqlite3.connect(store)
    out = {}
    for run_id, method, phash in db.execute("SELECT run_id, method, protocol_hash FROM runs WHERE status='complete'"):
        agg = {m: (v, n, nf) for m, v, n, nf in db.execute(
            "SELECT metric, value, n, n_failed FROM aggregates WHERE run_id=?", (run_id,))}
        failures = {(p, s): r for p, s, r in db.execute("SELECT pair_id, stage, reason FROM failures WHERE run_id=?", (run_id,))}
        valued = {p for (p,) in db.execute("SELECT DISTINCT pair_id FROM pair_values WHERE run_id=?", (run_id,))}
        out[method] = {"hash": phash, "agg": agg, "failures": failures, "valued": valued}
    return out


@pytest.fixture(scope="module")
def celebahq_run(tmp_path_factory):
    """celebahq --subset 3 on a complete CelebAMask-HQ tree of those images; `source` and `precomputed`,
    whose swap folder (MegaFS naming) holds a swap for two of the three pairs."""
    tmp = tmp_path_factory.mktemp("celebahq")
    sub = get_protocol("celebahq").subset(3)
    root = celebahq_tree(tmp / "data" / "celebahq", sub.images)
    swaps = tmp / "megafs"
    swaps.mkdir()
    for p in sub.pairs[1:]:  # the "swap" is the source photograph: a perfect identity transfer
        shutil.copy(root / "CelebA-HQ-img" / f"{p.source}.jpg", swaps / f"{p.target}_{p.source}.jpg")
    store = tmp / "store.sqlite"
    proc = bench("run", "--protocol", "celebahq", "--data-root", str(tmp / "data"), "--subset", "3",
                 "--method", "source,precomputed", "--set", f"precomputed.dir={swaps}", "--no-progress", store=store)
    return sub, store, proc, swaps


def test_celebahq_protocol_end_to_end(celebahq_run):
    sub, store, proc, _ = celebahq_run
    r = runs(store)["source"]
    assert r["hash"] == sub.hash
    assert r["agg"]["id_top1"] == (1.0, 3, 0) and not r["failures"]
    assert "## celebahq" in proc.stdout and "3/3 evaluated, 0 failed" in proc.stdout


def test_precomputed_swaps_are_scored_and_a_missing_file_is_a_failed_pair(celebahq_run):
    sub, store, proc, swaps = celebahq_run
    r = runs(store)["precomputed"]
    missing = sub.pairs[0]
    assert r["valued"] == {p.pair_id for p in sub.pairs[1:]}
    (reason,) = [v for (pid, stage), v in r["failures"].items() if pid == missing.pair_id and stage == "swap"]
    assert str(swaps / f"{missing.target}_{missing.source}.jpg") in reason and "file not found" in reason
    top1, n, n_failed = r["agg"]["id_top1"]
    assert (top1, n, n_failed) == (1.0, 2, 1)
    assert r["agg"]["id_cosine"][0] == pytest.approx(1.0, abs=1e-6)  # same pixels as the source, same crop
    assert "2/3 evaluated, 1 failed" in proc.stdout


def test_ffpp_protocol_end_to_end_on_a_partial_tree(tmp_path):
    """ffpp --subset 3 with the videos of two pairs present: with data.allow_missing the third pair is
    recorded as failed (missing video), the others are decoded, cropped, swapped and scored."""
    sub = get_protocol("ffpp").subset(3)
    absent = sub.images[sub.pairs[0].source].identity
    videos = {r.identity for r in sub.images.values()} - {absent}
    assert all(absent not in (sub.images[p.source].identity, sub.images[p.target].identity) for p in sub.pairs[1:])
    ffpp_tree(tmp_path / "data" / "ffpp", videos, n_frames=12)
    store = tmp_path / "store.sqlite"
    args = ("run", "--protocol", "ffpp", "--data-root", str(tmp_path / "data"), "--subset", "3",
            "--method", "source", "--no-progress")
    proc = bench(*args, store=store, check=False)
    assert proc.returncode == 2 and "1 of 6 images are missing" in proc.stderr and "Traceback" not in proc.stderr
    proc = bench(*args, "--set", "data.allow_missing=true", store=store)
    assert "images are missing" in proc.stderr  # the warning
    r = runs(store)["source"]
    assert r["hash"] == sub.hash
    failed = sub.pairs[0].pair_id
    assert set(r["failures"]) == {(failed, "face")}
    assert f"{absent}.mp4: file not found" in r["failures"][failed, "face"]
    assert r["valued"] == {p.pair_id for p in sub.pairs[1:]}
    assert r["agg"]["id_top1"] == (1.0, 2, 1)
    assert "2/3 evaluated, 1 failed" in proc.stdout
