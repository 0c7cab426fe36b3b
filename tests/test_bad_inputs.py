"""`bench run` over folders and pair lists that mix the bad-input corpus with good faces finishes,
evaluates every good pair and records every bad one with its reason."""

import shutil
import sqlite3

from bad_inputs import EXPECTED, write_corpus
from conftest import bench

from swapbench.bench.store import Store
from swapbench.datasets.images import resolve_uri
from swapbench.leaderboard import tables

GOOD = "pkg://matplotlib/mpl-data/sample_data/grace_hopper.jpg"
ARGS = ("--method", "classic", "--set", "metrics={identity: dlib_resnet_v1}", "--no-progress")


def _good_face(folder):
    folder.mkdir(parents=True)
    shutil.copy(resolve_uri(GOOD)[0], folder / "hopper.jpg")


def test_folder_of_bad_inputs_is_recorded_and_good_pairs_evaluated(tmp_path):
    # data/good/hopper.jpg and data/bad/<corpus>: two identities, so every good<->bad pair in both roles
    data = tmp_path / "data"
    _good_face(data / "good")
    write_corpus(data / "bad")
    (data / "bad" / "missing.jpg").unlink(missing_ok=True)  # a folder cannot name a missing file
    store = tmp_path / "r.sqlite"
    proc = bench("run", "--protocol", f"folder:{data}", *ARGS, store=store)

    db = sqlite3.connect(store)
    failures = dict(db.execute("SELECT pair_id, reason FROM failures WHERE stage='face'").fetchall())
    valued = {p for (p,) in db.execute("SELECT DISTINCT pair_id FROM pair_values")}
    present = {name: outcome for name, outcome in EXPECTED.items() if name != "missing.jpg"}
    for name, expected in present.items():
        key = "bad-" + name.rsplit(".", 1)[0]
        for pair_id in (f"{key}__good-hopper", f"good-hopper__{key}"):  # bad face as target, as source
            if expected == "ok":
                assert pair_id in valued, (pair_id, failures.get(pair_id))
            else:
                assert pair_id not in valued
                assert expected in failures[pair_id], (pair_id, failures[pair_id])
                assert key in failures[pair_id]  # the reason names the image
    # The several-faces choice is recorded with the crop.
    reasons = [r for (r,) in db.execute("SELECT reason FROM faces WHERE ok=1")]
    assert any(r.startswith("dlib_hog: 6 faces, kept the largest") for r in reasons)

    # The leaderboard shows the coverage.
    n_ok, n_all = 2 * sum(v == "ok" for v in present.values()), 2 * len(present)
    coverage = f"{n_ok}/{n_all} evaluated, {n_all - n_ok} failed"
    assert coverage in proc.stdout
    assert coverage in tables.markdown(tables.collect(Store(store), f"folder-{data.name}"), Store(store))


def test_pair_list_naming_a_missing_file(tmp_path):
    data = tmp_path / "data"
    _good_face(data)
    (data / "also_good.png").write_bytes((data / "hopper.jpg").read_bytes())
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("source,target,source_identity,target_identity\n"
                     "hopper.jpg,missing.jpg,a,b\nhopper.jpg,also_good.png,a,b\n")
    store = tmp_path / "r.sqlite"
    args = ("--protocol", f"csv:{pairs}", "--data-root", str(data), *ARGS)

    # By default a missing file stops the run before any work, naming it ...
    proc = bench("run", *args, store=store, check=False)
    assert proc.returncode != 0
    assert "missing.jpg" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    # ... and with data.allow_missing the pair is recorded as failed and the rest evaluated.
    proc = bench("run", *args, "--set", "data.allow_missing=true", store=store)
    db = sqlite3.connect(store)
    failures = dict(db.execute("SELECT pair_id, reason FROM failures WHERE stage='face'").fetchall())
    assert "file not found" in failures["missing__hopper"] and "missing.jpg" in failures["missing__hopper"]
    assert {p for (p,) in db.execute("SELECT DISTINCT pair_id FROM pair_values")} == {"also_good__hopper"}
    assert "1/2 evaluated, 1 failed" in proc.stdout
