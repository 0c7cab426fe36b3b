"""Face detector backends behind swapbench.faces.detect: dlib_hog unchanged, mediapipe on real faces,
scrfd and face_alignment on random-weight model files in their real formats, the choice recorded in
the store, and a run through the command line with face.detector=mediapipe."""

import dataclasses
import json
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import bench

from swapbench import weights
from swapbench.bench.store import Store
from swapbench.datasets import get_protocol
from swapbench.datasets.images import load_image
from swapbench.faces import detect, fan
from swapbench.faces.templates import five_points

GOLDEN = Path(__file__).parent / "golden" / "dlib_hog_samples.npz"


@pytest.fixture(scope="module")
def samples():
    return {k: load_image(ref.uri) for k, ref in get_protocol("samples").images.items()}


@pytest.fixture
def only_dir(monkeypatch, tmp_path):
    """Weight files are looked for in tmp_path only (not in the user's cache directory)."""
    monkeypatch.setattr(weights, "search_dirs", lambda weights_dir=None: [tmp_path])
    return tmp_path


def test_dlib_hog_unchanged(samples):
    # golden: the landmarks, boxes and scores of the detector before the backends existed
    golden = np.load(GOLDEN)
    for key in ("astronaut", "grace_hopper", "t1_person5"):
        face = detect.detect(samples[key], "dlib_hog")[0]
        assert face.detector == "dlib_hog"
        assert np.array_equal(face.landmarks, golden[f"{key}_landmarks"])
        assert face.box == tuple(golden[f"{key}_box"].tolist()) and face.score == float(golden[f"{key}_score"])
        assert np.array_equal(face.points5, five_points(face.landmarks)) and face.landmarks68 is face.landmarks
    assert detect.detect(samples["astronaut"])[0].box == detect.detect(samples["astronaut"], "dlib_hog")[0].box


def test_mediapipe_on_bundled_faces(samples):
    errors = []
    for key, image in samples.items():
        faces = detect.detect(image, "mediapipe")
        assert len(faces) == 1, key
        mp, dl = faces[0], detect.detect(image, "dlib_hog")[0]
        assert mp.detector == "mediapipe" and mp.landmarks.shape == (478, 2) and mp.landmarks68.shape == (68, 2)
        assert mp.points5.shape == (5, 2)
        l, t, r, b = mp.box
        assert (mp.landmarks >= (l, t)).all() and (mp.landmarks <= (r, b)).all()
        # insightface order: left eye left of the right eye, mouth corners likewise, eyes above the mouth
        assert mp.points5[0, 0] < mp.points5[1, 0] and mp.points5[3, 0] < mp.points5[4, 0]
        assert mp.points5[:2, 1].max() < mp.points5[3:, 1].min()
        iod = np.linalg.norm(dl.points5[1] - dl.points5[0])
        errors.append(np.linalg.norm(mp.points5 - dl.points5, axis=1) / iod)
    errors = np.stack(errors)
    # Tolerance, in units of dlib's inter-ocular distance (30-80 px here): the two models define the
    # points differently (iris centre vs the mean of dlib's 6 eye-contour points, mesh vertices vs
    # dlib's annotation), and on the turned face t1_person5 dlib's own points are off by up to
    # 0.28 IOD (about 9 px). So: median error < 0.05 IOD (about 1.5-4 px), every face's mean < 0.15.
    assert np.median(errors) < 0.05, errors
    assert errors.mean(1).max() < 0.15, errors


# --- face_alignment: FAN TorchScript -----------------------------------------------------------------


class RandomFAN(nn.Module):
    """FAN's signature with random weights: [B, 3, 256, 256] in [0, 1] -> heatmaps [B, 68, 64, 64]."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 68, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.3)
            self.conv.bias.copy_(torch.randn(68, generator=g) * 0.1)

    def forward(self, x):
        return self.conv(F.avg_pool2d(x, 4))


class PlantedFAN(nn.Module):
    """Heatmaps that do not depend on the image: one known peak per landmark."""

    def __init__(self, heatmaps: torch.Tensor):
        super().__init__()
        self.register_buffer("heatmaps", heatmaps)

    def forward(self, x):
        return self.heatmaps[None].expand(x.shape[0], -1, -1, -1) + 0.0 * x.mean()


def _save_fan(module, directory: Path) -> Path:
    path = directory / fan.WEIGHTS.filename
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(module.eval(), torch.zeros(1, 3, 256, 256)), str(path))
    return path


def _decode_reference(hm: np.ndarray) -> np.ndarray:
    """face-alignment's get_preds_fromhm written out per landmark (1-based arg max, quarter-pixel step, -0.5)."""
    c, h, w = hm.shape
    out = np.zeros((c, 2))
    for j in range(c):
        row, col = divmod(int(np.argmax(hm[j])), w)
        x, y = col + 1.0, row + 1.0
        if 0 < col < w - 1 and 0 < row < h - 1:
            x += 0.25 * np.sign(hm[j, row, col + 1] - hm[j, row, col - 1])
            y += 0.25 * np.sign(hm[j, row + 1, col] - hm[j, row - 1, col])
        out[j] = x - 0.5, y - 0.5
    return out


def test_fan_heatmap_decoding_matches_reference():
    rng = np.random.default_rng(0)
    hm = rng.random((68, 64, 64)).astype(np.float32)
    hm[0, 0, 5] = hm[1, 63, 63] = hm[2, 10, 0] = 5.0  # border peaks: no quarter-pixel step
    pts, scores = fan.decode_heatmaps(hm)
    np.testing.assert_array_equal(pts, _decode_reference(hm))
    np.testing.assert_array_equal(scores, hm.reshape(68, -1).max(1))
    assert pts[0].tolist() == [5.5, 0.5] and pts[1].tolist() == [63.5, 63.5]


def test_face_alignment_planted_model(samples, only_dir):
    rng = np.random.default_rng(1)
    rows, cols = rng.integers(1, 63, 68), rng.integers(1, 63, 68)
    hm = np.zeros((68, 64, 64), np.float32)
    hm[np.arange(68), rows, cols] = 1.0
    hm[np.arange(68), rows, cols + 1] = 0.5  # the right neighbour is larger: +0.25 in x, 0 in y
    _save_fan(PlantedFAN(torch.from_numpy(hm)), only_dir)
    image = samples["grace_hopper"]
    face = detect.get_detector("face_alignment").detect(image)[0]
    assert face.detector == "face_alignment" and face.landmarks.shape == (68, 2)
    assert face.box == detect.detect(image, "dlib_hog")[0].box  # dlib HOG boxes
    # expected, from the package's definitions: centre up by 0.12 box height, crop side 200 *
    # (w + h) / 195, heatmap point (col + 1 + 0.25 - 0.5, row + 1 - 0.5) mapped back and truncated
    x1, y1, x2, y2 = face.box
    side = 200.0 * ((x2 - x1) + (y2 - y1)) / 195.0
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0 - 0.12 * (y2 - y1)
    hx, hy = cols + 0.75, rows + 0.5
    expected = np.stack([np.trunc(hx * side / 64 + cx - side / 2), np.trunc(hy * side / 64 + cy - side / 2)], 1)
    np.testing.assert_allclose(face.landmarks, expected, atol=1e-6)


def test_face_alignment_random_model_and_crop(samples, only_dir):
    _save_fan(RandomFAN(), only_dir)
    image = samples["astronaut"]
    det = detect.get_detector("face_alignment")
    faces = det.detect(image)
    assert [f.box for f in faces] == [f.box for f in detect.detect(image, "dlib_hog")]
    face = faces[0]
    assert face.landmarks.shape == (68, 2) and face.points5.shape == (5, 2)
    # every point lies in the network's crop square; the crop is what the network saw
    centre, scale = fan.centre_scale(face.box)
    half = 100.0 * scale
    assert (np.abs(face.landmarks - centre) <= half + 1).all()
    inp = fan.crop(image, centre, scale)
    assert inp.shape == (256, 256, 3) and inp.dtype == np.uint8
    with torch.no_grad():
        hm = RandomFAN()(torch.from_numpy(inp.transpose(2, 0, 1).astype(np.float32)[None] / 255))[0].numpy()
    expected = fan.heatmap_to_image(_decode_reference(hm), centre, scale)
    np.testing.assert_array_equal(face.landmarks, expected)
    # a box reaching past the image border: the outside is black, as in the package
    edge = fan.crop(image, np.array([5.0, 5.0]), 1.0)
    assert edge[:100, :100].max() == 0 and edge[200:, 200:].max() > 0


def test_missing_model_files_fail_with_resolve_message(only_dir):
    for name, card in (("face_alignment", fan.WEIGHTS), ("scrfd", detect.SCRFD.weights[0])):
        with pytest.raises(weights.WeightsError) as err:
            detect.get_detector(name)
        with pytest.raises(weights.WeightsError) as ref:
            weights.resolve([card])
        assert str(err.value) == str(ref.value) and card.filename in str(err.value)
    assert "unzip" in detect.SCRFD.weights[0].note and detect.SCRFD.weights[0].manual
    with pytest.raises(KeyError, match="unknown face detector"):
        detect.get_detector("retinaface")


# --- scrfd: the random-weight SCRFD of test_scrfd ----------------------------------------------------


def test_scrfd_backend(samples, only_dir, monkeypatch):
    from test_scrfd import TinySCRFD, _export

    # random weights cannot match the published checksum: the card without it, same loading code
    card = dataclasses.replace(detect.SCRFD.weights[0], sha256=None)
    monkeypatch.setattr(detect.SCRFD, "weights", (card,))
    _export(TinySCRFD(noise=0.0), only_dir / card.filename)
    image = np.zeros((480, 640, 3), np.uint8)
    image[200:208, 320:328] = 255  # one bright stride-8 cell: the tiny model's only face
    faces = detect.get_detector("scrfd").detect(image)
    assert len(faces) == 1
    face = faces[0]
    assert face.detector == "scrfd" and face.landmarks.shape == (5, 2) and face.landmarks68 is None
    np.testing.assert_array_equal(face.points5, face.landmarks.astype(np.float64))
    assert face.box[0] < face.points5[:, 0].min() and face.points5[:, 0].max() < face.box[2]


# --- the store and the engine ------------------------------------------------------------------------


def test_classic_fails_per_pair_without_68_points():
    from swapbench.methods.baselines import Classic

    img = torch.rand(2, 3, 64, 64)
    lm5 = torch.rand(2, 5, 2) * 64
    out = Classic().predict_step({"pair_id": ["a", "b"], "source": img, "target": img,
                                  "source_landmarks": lm5, "target_landmarks": lm5})
    assert all("classic needs 68 dlib-compatible landmarks" in e for e in out["error"])


def test_old_store_faces_rows_read_as_dlib_hog(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE faces (image_sha TEXT NOT NULL, convention TEXT NOT NULL, ok INTEGER NOT NULL, "
               "reason TEXT, landmarks TEXT, matrix TEXT, crop_sha TEXT, PRIMARY KEY (image_sha, convention))")
    db.execute("INSERT INTO faces VALUES ('abc', 'ffhq_256', 1, '1 face', ?, ?, 'def')",
               (json.dumps([[1.0, 2.0]] * 68), json.dumps([[1, 0, 0], [0, 1, 0]])))
    db.commit()
    db.close()
    store = Store(path)
    row = store.face("abc", "ffhq_256")
    assert row["detector"] == "dlib_hog" and row["landmarks"].shape == (68, 2)
    store.put_face("abc", "ffhq_256@mediapipe", False, "no face found by mediapipe", detector="mediapipe")
    assert store.face("abc", "ffhq_256@mediapipe")["detector"] == "mediapipe"
    assert Store(path).face("abc", "ffhq_256")["detector"] == "dlib_hog"  # reopening migrates nothing twice


def test_run_with_mediapipe_detector(tmp_path):
    store = tmp_path / "results.sqlite"
    args = ("run", "--no-progress", "--subset", "4", "--method", "source,classic",
            "--set", "metrics={identity: dlib_resnet_v1}")
    bench(*args, "--set", "face.detector=mediapipe", store=store)
    db = sqlite3.connect(store)
    rows = db.execute("SELECT convention, ok, reason, detector, landmarks FROM faces").fetchall()
    assert rows and all(d == "mediapipe" and c.endswith("@mediapipe") for c, _, _, d, _ in rows)
    assert all(r.startswith("mediapipe: ") for _, ok, r, _, _ in rows if ok)
    assert all(np.array(json.loads(lm)).shape == (68, 2) for _, ok, _, _, lm in rows if ok)
    runs = db.execute("SELECT method, status, config FROM runs").fetchall()
    assert sorted(m for m, _, _ in runs) == ["classic", "source"] and {s for _, s, _ in runs} == {"complete"}
    assert {json.loads(c)["face"]["detector"] for _, _, c in runs} == {"mediapipe"}
    n_values = db.execute("SELECT COUNT(*) FROM pair_values").fetchone()[0]
    assert n_values > 0

    # the same settings with dlib_hog: other runs, crops under the plain convention name
    bench(*args, store=store)
    ids = db.execute("SELECT run_id, json_extract(config, '$.face.detector') FROM runs").fetchall()
    assert len(ids) == 4 and sorted(d for _, d in ids) == ["dlib_hog"] * 2 + ["mediapipe"] * 2
    assert {d for (d,) in db.execute("SELECT detector FROM faces WHERE convention NOT LIKE '%@%'")} == {"dlib_hog"}


def test_crops_are_keyed_by_detector_and_multi_face_policy():
    from swapbench.bench.prepare import face_key

    keys = {face_key("ffhq_256", d, p) for d in ("dlib_hog", "mediapipe") for p in ("largest", "central", "fail")}
    assert len(keys) == 6 and face_key("ffhq_256") == "ffhq_256"  # defaults keep the old key
