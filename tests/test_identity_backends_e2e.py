"""The ArcFace identity backends selected by config (`metrics: {identity: ...}`) through a whole run."""

import dataclasses
import json
import sqlite3

import numpy as np
from arcface_onnx_model import write_arcface_like_onnx
from conftest import bench
from test_irse50_reface import write_checkpoints

RUN = ("run", "--no-progress", "--method", "source,target", "--subset", "2", "--batch-size", "2")


def identity_values(store):
    db = sqlite3.connect(store)
    out = {}
    for method, run_id, provenance in db.execute("SELECT method, run_id, provenance FROM runs WHERE status='complete'"):
        rows = db.execute("SELECT metric, value FROM pair_values WHERE run_id=?", (run_id,)).fetchall()
        out[method] = ({m: [v for mm, v in rows if mm == m] for m in ("id_cosine", "id_top1")}, json.loads(provenance))
    return out


def test_irse50_reface_backend_runs_from_the_command_line(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    write_checkpoints(weights)
    store = tmp_path / "r.sqlite"
    proc = bench(*RUN, "--weights-dir", str(weights), "--set", "metrics={identity: arcface_irse50_reface}", store=store)
    assert "`arcface_irse50_reface`" in proc.stdout and "2/2 evaluated, 0 failed" in proc.stdout
    values = identity_values(store)
    source, provenance = values["source"]
    # the source baseline returns the source image: its embedding is the gallery entry
    np.testing.assert_allclose(source["id_cosine"], 1.0, atol=1e-5)
    assert source["id_top1"] == [1.0, 1.0]
    assert max(values["target"][0]["id_cosine"]) < 0.9999  # targets are other people
    backend = provenance["backends"]["identity"]
    assert backend["name"] == "arcface_irse50_reface"
    assert set(backend["weights_sha256"]) == {"arcface/model_ir_se50", "face_parsing/bisenet_79999_iter"}


def test_selected_backend_without_weights_fails_before_any_work(tmp_path):
    store = tmp_path / "s.sqlite"
    for name, files in (("insightface_glint360k_r100", ["glintr100.onnx", "antelopev2.zip"]),
                        ("arcface_irse50_reface", ["model_ir_se50.pth", "79999_iter.pth", "drive.google.com"])):
        proc = bench("run", "--weights-dir", str(tmp_path / "w"), "--set", f"metrics={{identity: {name}}}",
                     store=store, check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        err = " ".join(proc.stderr.split())
        for text in files + [str(tmp_path / "w")]:
            assert text in err
    assert not (tmp_path / "s.files").exists()  # not a single face was cropped


def test_onnx_file_with_another_checksum_is_refused(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    write_arcface_like_onnx(weights / "w600k_r50.onnx")
    proc = bench("run", "--weights-dir", str(weights), "--set", "metrics={identity: insightface_w600k_r50}",
                 store=tmp_path / "s.sqlite", check=False)
    assert proc.returncode == 2
    assert "does not match its checksum: expected sha256 4c06341c" in " ".join(proc.stderr.split())
    assert not (tmp_path / "s.files").exists()


def test_onnx_backend_runs_through_the_engine(tmp_path, monkeypatch):
    """The published checksum is what keeps a random file out of the command line; here the card is
    given the random file's checksum, and the run goes through the real engine."""
    from swapbench import weights
    from swapbench.bench import config, engine
    from swapbench.metrics.backends.arcface_onnx import InsightfaceW600kR50

    folder = tmp_path / "weights"
    folder.mkdir()
    path = folder / "w600k_r50.onnx"
    write_arcface_like_onnx(path)
    card = dataclasses.replace(InsightfaceW600kR50.weight, sha256=weights.sha256_of(path))
    monkeypatch.setattr(InsightfaceW600kR50, "weight", card)
    monkeypatch.setattr(InsightfaceW600kR50, "weights", (card,))
    store = tmp_path / "r.sqlite"
    cfg = config.load(overrides={"methods": ["source", "target"], "subset": 2, "weights_dir": str(folder),
                                 "store": str(store), "metrics": {"identity": "insightface_w600k_r50"},
                                 "engine": {"batch_size": 2}})
    assert len(engine.run(cfg)) == 2
    values = identity_values(store)
    source, provenance = values["source"]
    np.testing.assert_allclose(source["id_cosine"], 1.0, atol=1e-5)
    assert provenance["backends"]["identity"] == {"name": "insightface_w600k_r50",
                                                  "weights_sha256": {card.name: card.sha256}}
    assert len(values["target"][0]["id_cosine"]) == 2 and max(values["target"][0]["id_cosine"]) < 0.9999
    features = sqlite3.connect(store).execute(
        "SELECT ok, length(vector) FROM features WHERE backend='insightface_w600k_r50'").fetchall()
    assert features and all(ok == 1 and n == 512 * 4 for ok, n in features)


def test_listed_with_their_weights():
    wide = {"COLUMNS": "300"}  # rich wraps its tables at the terminal width
    out = bench("list", "backends", env=wide).stdout
    for name in ("insightface_w600k_r50", "insightface_glint360k_r100", "arcface_irse50_reface", "arcface_irse50_reface_ffpp"):
        assert name in out
    files = bench("weights", env=wide).stdout
    for f in ("w600k_r50.onnx", "glintr100.onnx", "model_ir_se50.pth"):
        assert f in files
