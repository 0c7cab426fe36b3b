"""`bench check`: golden results, their update, and failure when a number moves."""

import json

from conftest import REPO, bench

from swapbench import cli
from swapbench.metrics.backends.dlib_identity import DlibIdentity

SMALL = {"description": "test", "run": {"protocol": "samples", "subset": 6, "methods": ["classic"],
                                        "metrics": {"identity": "dlib_resnet_v1"}, "seed": 0},
         "tolerances": {}, "aggregates": {}, "pairs": {}}


def test_committed_samples_golden_passes(samples_run):
    store, _ = samples_run
    proc = bench("check", str(REPO / "tests/golden/samples.json"), "--no-progress", "--store", str(store))
    assert "REGRESSION" not in proc.stdout and "values within tolerance" in proc.stdout


def test_update_then_check_then_a_perturbed_backend_fails(tmp_path, monkeypatch, capsys):
    golden = tmp_path / "small.json"
    golden.write_text(json.dumps(SMALL))
    assert cli.main(["check", str(golden), "--update", "--store", str(tmp_path / "a.sqlite"), "--no-progress"]) == 0
    written = json.loads(golden.read_text())
    assert list(written) == sorted(written)  # stable key order for readable diffs
    assert written["produced_by"]["packages"]["torch"] and "git_revision" in written["produced_by"]
    assert set(written["aggregates"]["classic"]) == {"id_cosine", "id_top1", "id_top5"}
    assert len(written["pairs"]["classic"]) == 6
    assert all(t["why"] for t in written["tolerances"].values())

    assert cli.main(["check", str(golden), "--store", str(tmp_path / "b.sqlite"), "--no-progress"]) == 0

    # Perturb the identity backend's preprocessing: mirror every crop before embedding it.
    original = DlibIdentity.extract
    monkeypatch.setattr(DlibIdentity, "extract", lambda self, images: original(self, images.flip(-1)))
    capsys.readouterr()
    assert cli.main(["check", str(golden), "--store", str(tmp_path / "c.sqlite"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "regression: classic id_cosine:" in err
    assert "regression: classic id_cosine pair " in err  # per-pair values name the pair
