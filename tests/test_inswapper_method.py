"""INSwapper as the engine uses it: declared files, checks of the ONNX file, options, batch independence."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from arcface_onnx_model import write_arcface_like_onnx
from inswapper_model import write_inswapper_like_onnx

from swapbench import weights
from swapbench.bench.catalogue import weight_files
from swapbench.faces.insightface_arcface import W600K_R50
from swapbench.methods import METHODS
from swapbench.methods.inswapper import INSWAPPER_128, INSWAPPER_128_FP16, INSwapper
from swapbench.weights import WeightsError


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """Keep a user's real weights (environment variable, cache directory) out of the search path."""
    monkeypatch.delenv(weights.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(weights.platformdirs, "user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    f = tmp_path_factory.mktemp("inswapper_files")
    write_inswapper_like_onnx(f / INSWAPPER_128.filename, seed=1)
    write_arcface_like_onnx(f / W600K_R50.filename, seed=2)
    return f


def _files(folder: Path, swapper: str = INSWAPPER_128.filename, card=INSWAPPER_128) -> dict:
    return {card.name: folder / swapper, W600K_R50.name: folder / W600K_R50.filename}


@pytest.fixture(scope="module")
def loaded(folder) -> INSwapper:
    m = INSwapper()
    m.load_weights(_files(folder))
    return m


@pytest.fixture(scope="module")
def faces(real_images) -> torch.Tensor:
    """Four real images as 128 crops, rounded to 8 bits like the engine's crops."""
    return (F.interpolate(real_images, size=(128, 128), mode="area") * 255).round() / 255


def test_registry_declaration_and_weights():
    assert METHODS.get("inswapper") is INSwapper
    m = INSwapper()
    assert m.convention == "insightface_128" and m.weights == (INSWAPPER_128, W600K_R50)
    assert m.source_convention == "insightface_128"  # the source's 112 crop is a slice of its 128 crop
    assert INSWAPPER_128.manual and INSWAPPER_128.size == 554_253_681 and INSWAPPER_128.format == "onnx"
    assert INSWAPPER_128.sha256.startswith("e4a3f08c") and INSWAPPER_128.sha256.endswith("9e16af")
    assert "contact@insightface.ai" in INSWAPPER_128.licence and "non-commercial" in INSWAPPER_128.licence
    files = weight_files()
    assert "inswapper" in files[INSWAPPER_128.name][1] and "inswapper" in files[W600K_R50.name][1]
    assert INSWAPPER_128_FP16.name in files  # listed, used by no method unless the option names it
    assert INSwapper(INSwapper.Options(model="inswapper_128_fp16")).weights[0] is INSWAPPER_128_FP16


def test_missing_file_says_it_must_be_supplied(tmp_path, isolated_cache):
    with pytest.raises(WeightsError) as err:
        weights.resolve(INSwapper().weights, weights_dir=tmp_path)
    msg = " ".join(str(err.value).split())
    assert "inswapper_128.onnx" in msg and str(tmp_path) in msg and "w600k_r50.onnx" in msg
    assert "no official download exists" in msg and "contact@insightface.ai" in msg
    assert "bench weights download insightface/inswapper_128" not in msg


def test_emap_shape_and_position_are_checked(tmp_path):
    write_arcface_like_onnx(tmp_path / W600K_R50.filename)
    write_inswapper_like_onnx(tmp_path / "small_emap.onnx", emap_shape=(256, 512))
    write_inswapper_like_onnx(tmp_path / "emap_first.onnx", emap_last=False)
    with pytest.raises(WeightsError, match=r"last initializer 'emap' is float32 \[256, 512\]"):
        INSwapper().load_weights(_files(tmp_path, "small_emap.onnx"))
    with pytest.raises(WeightsError, match=r"last initializer 'half' is float32 \[\], not the 512 x 512"):
        INSwapper().load_weights(_files(tmp_path, "emap_first.onnx"))
    with pytest.raises(WeightsError, match=r"expected 2 inputs and 1 output, found 1 and 1"):
        INSwapper().load_weights(_files(tmp_path, W600K_R50.filename))
    (tmp_path / "junk.onnx").write_bytes(b"\x08junk")
    with pytest.raises(WeightsError, match=r"junk\.onnx .* not a readable ONNX model"):
        INSwapper().load_weights(_files(tmp_path, "junk.onnx"))
    with pytest.raises(WeightsError, match=r"no file was given for w600k_r50\.onnx"):
        INSwapper().load_weights({INSWAPPER_128.name: tmp_path / "emap_first.onnx"})


def test_float16_conversion_only_when_named(tmp_path, faces):
    write_arcface_like_onnx(tmp_path / W600K_R50.filename)
    write_inswapper_like_onnx(tmp_path / INSWAPPER_128_FP16.filename, fp16_weights=True)
    with pytest.raises(WeightsError, match="float16 weights.*inswapper.model=inswapper_128_fp16"):
        INSwapper().load_weights(_files(tmp_path, INSWAPPER_128_FP16.filename))
    m = INSwapper.from_config({"engine": {"seed": 0}, "inswapper": {"model": "inswapper_128_fp16"}})
    m.load_weights(_files(tmp_path, INSWAPPER_128_FP16.filename, INSWAPPER_128_FP16))
    assert m.swap(_batch(faces[:1]), _batch(faces[1:2])).shape == (1, 3, 128, 128)


def _batch(images: torch.Tensor, ids=None):
    from swapbench.methods.base import FaceBatch

    return FaceBatch(images, torch.zeros(len(images), 68, 2), ids or [f"p{i}" for i in range(len(images))])


def test_swap_is_independent_of_the_batch(loaded, faces):
    ids = ["a", "b", "c"]
    batch = {"source": faces[[0, 1, 2]], "target": faces[[3, 0, 1]], "source_landmarks": torch.zeros(3, 68, 2),
             "target_landmarks": torch.zeros(3, 68, 2), "pair_id": ids}
    together = loaded.predict_step(batch)
    assert together["error"] == [None] * 3
    assert not loaded.publishable  # random-weight files
    alone = [loaded.predict_step({k: v[i:i + 1] for k, v in batch.items()})["image"] for i in range(3)]
    assert torch.equal(together["image"], torch.cat(alone))
    y = together["image"]
    assert y.shape == (3, 3, 128, 128) and torch.equal((y * 255).round() / 255, y)  # 8 bits, truncated
    assert (y - batch["target"]).abs().mean() > 0.05
    # another source gives another swap of the same target
    other = loaded.swap(_batch(faces[[3]]), _batch(faces[[3]]))
    assert (other - y[:1]).abs().mean() > 1e-3


def test_options_and_detector_note(folder, faces):
    m = INSwapper.from_config({"engine": {"seed": 0}, "face": {"detector": "dlib_hog"}, "inswapper": {"truncate": False}})
    assert m.option_values() == {"model": "inswapper_128", "truncate": False}
    m.load_weights(_files(folder))
    m.swap(_batch(faces[:1], ["x"]), _batch(faces[1:2], ["x"]))
    assert m.take_notes(["x"]) == ["crops on dlib_hog 5 points, not insightface's SCRFD"]
    with pytest.raises(ValueError, match="option inswapper.model must be one of"):
        INSwapper.from_config({"engine": {"seed": 0}, "inswapper": {"model": "inswapper_512"}})


def test_swap_before_load_weights_fails_clearly(faces):
    with pytest.raises(RuntimeError, match="load_weights"):
        INSwapper().swap(_batch(faces[:1]), _batch(faces[:1]))


def test_preset_config_resolves():
    from swapbench.bench import config

    cfg = config.load([Path(__file__).parent.parent / "configs" / "inswapper_ffhq.yaml"], config.parse_set([]))
    assert cfg["methods"] == ["inswapper"] and cfg["face"]["detector"] == "scrfd"
    assert cfg["inswapper"] == {"model": "inswapper_128", "truncate": True}


def test_random_files_run_through_the_engine(tmp_path, folder, monkeypatch, capsys):
    """bench run with random-weight files in the official format, to a leaderboard row (unpublishable)."""
    from conftest import complete_run
    from PIL import Image

    from swapbench import cli
    from swapbench.methods.inswapper import method as module

    # in process: the random files cannot match the published checksums of the real ones
    monkeypatch.setitem(module.MODEL_FILES, "inswapper_128", dataclasses.replace(INSWAPPER_128, sha256=None))
    monkeypatch.setattr(module, "W600K_R50", dataclasses.replace(W600K_R50, sha256=None))
    store = tmp_path / "r.sqlite"
    rc = cli.main(["run", "--no-progress", "--method", "inswapper", "--subset", "2", "--batch-size", "2",
                   "--weights-dir", str(folder), "--set", "metrics={identity: dlib_resnet_v1}", "--store", str(store)])
    out, err = capsys.readouterr()
    assert rc == 0 and "| inswapper |" in out, out + err
    swaps, files, publishable = complete_run(store, "inswapper")
    assert not publishable and len(swaps) == 2 and all(swaps.values()), swaps
    for pair_id in swaps:
        assert np.asarray(Image.open(files / "raw" / f"{pair_id}.png")).shape == (128, 128, 3)
    assert "not insightface's SCRFD" in out

    # the frame grid draws the swap with insightface's paste-back, from the raw 128 crop and its matrix
    import pandas as pd

    from swapbench.bench import layout
    from swapbench.bench.store import Store
    from swapbench.datasets import get_protocol
    from swapbench.datasets.images import load_image
    from swapbench.leaderboard.grid import frame_grid, own_paste
    from swapbench.methods.inswapper import paste_back

    db, protocol = Store(store), get_protocol("samples")
    run = db.run(files.name)
    pair_id = sorted(swaps)[0]
    target = next(p.target for p in protocol.pairs if p.pair_id == pair_id)
    frame, sha = load_image(protocol.location(target)), db.image_sha(run["protocol_hash"], target)
    face = db.face(sha, layout.face_key_of_run(run["config"], "insightface_128"))
    raw = np.asarray(Image.open(files / "raw" / f"{pair_id}.png"))
    drawn = own_paste(db, "inswapper", files.name, pair_id, frame, sha)
    np.testing.assert_array_equal(drawn, paste_back(frame, raw, face["matrix"]))
    assert (drawn != frame).any() and own_paste(db, "classic", files.name, pair_id, frame, sha) is None
    part = pd.DataFrame([{"method": "inswapper", "run_id": files.name}])
    assert frame_grid(db, part, tmp_path / "frames.png").is_file()
