"""MegaFS as a swapbench method: weights checks, determinism, per-pair failures, end to end.

Random weights in the official layout (swapbench.methods.megafs.random_weights) with a reduced
generator (generator_size=32; the encoder and swappers are full size) keep these tests fast.
"""

import pytest
import torch
from conftest import bench, complete_run
from faces import smooth_batch

from swapbench.methods import get
from swapbench.methods.base import FaceBatch
from swapbench.methods.megafs import STYLEGAN_FILE, SWAP_FILES, MegaFS, MegaFSLCR
from swapbench.methods.megafs import random_weights as rw
from swapbench.weights import WeightsError

GEN = 32


@pytest.fixture(scope="module")
def state():
    return rw.method_state("ftm", GEN, seed=0)


@pytest.fixture(scope="module")
def megafs(state):
    m = MegaFS(generator_size=GEN)
    m.load_weights(state)
    return m


def test_registry_names_and_declared_files():
    assert get("megafs") is MegaFS and get("megafs_lcr") is MegaFSLCR
    assert get("megafs_injection").swap_type == "injection"
    assert MegaFS.crop == "celebahq" and MegaFS.size == 1024 and MegaFS().convention == "celebahq_1024"
    names = [w.filename for w in get("megafs_injection").weights]
    assert names == ["injection_final.pth", "stylegan2-ffhq-config-f.pth", "79999_iter.pth"]


def test_annotation_masks_need_no_parser_file(state, tmp_path, capsys, monkeypatch):
    """masks=annotation never runs BiSeNet: 79999_iter.pth is not needed, not asked for, not downloaded."""
    from swapbench import cli
    from swapbench.bench.catalogue import select
    from swapbench.faces.parsing import WEIGHTS as PARSER

    m = MegaFS(generator_size=GEN, masks="annotation")
    assert PARSER not in m.weights and PARSER in MegaFS().weights
    m.load_weights({k: v for k, v in state.items() if k != PARSER.name})
    assert m.weights_loaded
    assert PARSER in select(used_by=["megafs"]) and PARSER not in select(used_by=["megafs"], options={"megafs": {"masks": "annotation"}})
    monkeypatch.setenv("SWAPBENCH_WEIGHTS", str(tmp_path / "no-weights"))
    rc = cli.main(["run", "--method", "megafs", "--set", "megafs.masks=annotation", "--weights-dir", str(tmp_path),
                   "--no-progress", "--store", str(tmp_path / "s.sqlite")])
    err = capsys.readouterr().err
    assert rc == 2 and "ftm_final.pth" in err and "79999_iter.pth" not in err, err


def test_weight_files_are_checked_before_loading(state):
    m = MegaFS(generator_size=GEN)
    gan = dict(state[STYLEGAN_FILE.name])
    gan["g_ema"] = {k: v for k, v in gan["g_ema"].items() if k != "noises.noise_3"}  # strict=False officially
    with pytest.raises(WeightsError, match=r"stylegan2-ffhq-config-f.pth.*missing keys.*noises.noise_3"):
        m.load_weights({**state, STYLEGAN_FILE.name: gan})
    with pytest.raises(WeightsError, match=r"ftm_final.pth.*keys \['e', 's'\]"):
        m.load_weights({**state, SWAP_FILES["ftm"].name: {"e": state[SWAP_FILES["ftm"].name]["e"]}})
    injection = rw.method_state("injection", GEN)[SWAP_FILES["injection"].name]
    with pytest.raises(WeightsError, match=r"ftm_final.pth.*ftm transfer module"):
        m.load_weights({**state, SWAP_FILES["ftm"].name: injection})
    assert not m.weights_loaded
    with pytest.raises(RuntimeError, match="load_weights"):
        m.swap(smooth_batch(0, 1), smooth_batch(1, 1))


@pytest.fixture(scope="module")
def batch3(megafs):
    """Three pairs swapped as one batch (shared by the tests below to keep the suite fast)."""
    src, tgt = smooth_batch(0), smooth_batch(1)
    return src, tgt, megafs.swap(src, tgt)


def test_swaps_do_not_depend_on_batch_composition(megafs, batch3):
    src, tgt, together = batch3
    alone = torch.cat([megafs.swap(FaceBatch(src.image[i:i + 1], src.landmarks[i:i + 1]),
                                   FaceBatch(tgt.image[i:i + 1], tgt.landmarks[i:i + 1])) for i in range(3)])
    assert together.shape == (3, 3, 256, 256) and torch.equal(together, alone)
    assert 0 <= float(together.min()) and float(together.max()) <= 1
    # truncation: every value is a whole number of 1/255 steps
    assert torch.allclose(together * 255, (together * 255).round(), atol=1e-3)


def test_an_empty_face_mask_fails_that_pair_only(megafs, batch3, monkeypatch):
    src, tgt, together = batch3
    real = megafs.face_mask
    failing = float(tgt.image[1, 0, 0, 0])

    def no_face_in_pair_b(target):
        mask = real(target)
        return torch.zeros_like(mask) if float(target[0, 0, 0, 0]) == failing else mask

    monkeypatch.setattr(megafs, "face_mask", no_face_in_pair_b)
    # the failing pair first: the mask is checked before the networks run, so the batch fails fast
    out = megafs.predict_step({"source": src.image[[1, 2]], "target": tgt.image[[1, 2]],
                               "source_landmarks": src.landmarks[:2], "target_landmarks": tgt.landmarks[:2],
                               "pair_id": ["b", "c"]})
    assert out["error"][0].startswith("SoftErosionError") and "empty" in out["error"][0]
    assert out["error"][1] is None and torch.equal(out["image"][1], together[2])


def test_refine_option_changes_the_result(megafs, batch3):
    src, tgt, together = batch3
    refined = MegaFS(MegaFS.Options(refine=True, generator_size=GEN))
    for part in ("encoder", "swapper", "generator", "parser"):  # the same weights, without reloading
        setattr(refined, part, getattr(megafs, part))
    refined.weights_loaded = True
    out = refined.swap(FaceBatch(src.image[:1], src.landmarks[:1]), FaceBatch(tgt.image[:1], tgt.landmarks[:1]))
    assert out.shape == together[:1].shape and not torch.equal(out, together[:1])
    cfg = {"engine": {"seed": 0}}
    with pytest.raises(KeyError, match="unknown option megafs.bogus"):
        MegaFS.from_config({**cfg, "megafs": {"refine": True, "bogus": 1}})
    assert MegaFS.from_config({**cfg, "megafs": {"refine": True}}).options.refine


def test_megafs_runs_end_to_end_with_official_format_files(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    files = rw.official_files("lcr", GEN, seed=0)
    half = lambda sd: {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}  # noqa: E731
    # fp16 on disk halves the 1 GB encoder file; load_state_dict casts back to fp32
    torch.save({"e": half(files["lcr_final.pth"]["e"]), "s": files["lcr_final.pth"]["s"]}, weights / "lcr_final.pth")
    torch.save(files["stylegan2-ffhq-config-f.pth"], weights / "stylegan2-ffhq-config-f.pth")
    torch.save(rw.parser_state(0), weights / "79999_iter.pth")
    del files
    store = tmp_path / "r.sqlite"
    proc = bench("run", "--no-progress", "--method", "megafs_lcr", "--subset", "2", "--batch-size", "2",
                 "--weights-dir", str(weights), "--set", "metrics={identity: dlib_resnet_v1}",
                 "--set", f"megafs_lcr.generator_size={GEN}", store=store)
    assert "| megafs_lcr |" in proc.stdout, proc.stdout
    swaps, _, _ = complete_run(store, "megafs_lcr")
    assert len(swaps) == 2 and all(swaps.values()), swaps


def test_preset_config_resolves():
    from pathlib import Path

    from swapbench.bench import config

    cfg = config.load([Path(__file__).parent.parent / "configs" / "megafs_celebahq.yaml"],
                      config.parse_set(["megafs_lcr.generator_size=64"]))
    assert cfg["protocol"] == "celebahq" and cfg["methods"] == ["megafs", "megafs_injection", "megafs_lcr"]
    assert cfg["megafs"] == {"refine": False, "truncate": True, "generator_size": 1024, "masks": "annotation"}
    assert cfg["megafs_lcr"]["generator_size"] == 64 and cfg["megafs_injection"]["refine"] is False


def test_annotation_masks_come_from_the_data_set_and_follow_the_crop(tmp_path):
    from PIL import Image

    # A CelebAMask-HQ tree: a 1024 image whose annotation has skin (a box), a mouth inside it and hair.
    Image.new("RGB", (1024, 1024)).save(tmp_path / "img.jpg")
    (tmp_path / "CelebA-HQ-img").mkdir()
    (tmp_path / "img.jpg").rename(tmp_path / "CelebA-HQ-img" / "28003.jpg")
    anno = tmp_path / "CelebAMask-HQ-mask-anno" / "14"
    anno.mkdir(parents=True)
    for part, box in {"skin": (128, 128, 384, 384), "mouth": (224, 300, 288, 340), "hair": (0, 0, 512, 128)}.items():
        m = Image.new("L", (512, 512))
        m.paste(255, box)
        m.save(anno / f"28003_{part}.png")
    where = str(tmp_path / "CelebA-HQ-img" / "28003.jpg")
    identity = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]], dtype=torch.float64)
    half = torch.tensor([[[0.5, 0, 0], [0, 0.5, 0]]], dtype=torch.float64)  # a 512 crop of the whole image
    opts = MegaFS.Options(masks="annotation", generator_size=GEN)
    m = MegaFS(opts)
    for size, matrix in ((1024, identity), (512, half)):
        target = FaceBatch(torch.zeros(1, 3, size, size), torch.zeros(1, 68, 2), ["p"], matrix, [where])
        mask = m.annotation_mask(target)[0, 0]
        k = size // 512  # annotation pixel -> crop pixel
        assert mask.shape == (size, size)
        assert mask[200 * k, 200 * k] == 1 and mask[320 * k, 256 * k] == 1  # skin, mouth
        assert mask[50 * k, 256 * k] == 0 and mask[450 * k, 450 * k] == 0  # hair, background
    # the skin's top edge (annotation row 128) at 1024, as cv2.resize INTER_LINEAR samples it: half-pixel
    # centres, so output row 255 reads annotation row 127.25 and row 256 reads 127.75
    mask = m.annotation_mask(FaceBatch(torch.zeros(1, 3, 1024, 1024), torch.zeros(1, 68, 2), ["p"], identity, [where]))
    assert mask[0, 0, 255, 500].item() == pytest.approx(0.25, abs=1e-6)
    assert mask[0, 0, 256, 500].item() == pytest.approx(0.75, abs=1e-6)
    not_celebahq = FaceBatch(torch.zeros(1, 3, 64, 64), torch.zeros(1, 68, 2), ["p"], identity, ["/x/y/1.png"])
    with pytest.raises(ValueError, match="not a CelebA-HQ-img/<N>.jpg image"):
        m.annotation_mask(not_celebahq)
    with pytest.raises(ValueError, match="megafs.masks must be one of parser, annotation, got 'bisenet'"):
        MegaFS(masks="bisenet")
    with pytest.raises(ValueError, match="megafs.masks must be one of parser, annotation"):
        MegaFS.from_config({"engine": {"seed": 0}, "megafs": {"masks": "bisenet"}})
