"""FSLSD-HiRes as a swapbench method: declared files, weights checks, determinism, end to end.

Random weights in the official layouts (swapbench.methods.fslsd.random_weights) with a reduced
generator (generator_size=16 for the generator, GPEN encoder and decoder; the landmark encoder, pSp
encoder, bald mapping, H3R and parser are full size) keep these tests fast.
"""

import dataclasses

import pytest
import torch
from conftest import complete_run
from faces import smooth_batch

from swapbench import cli
from swapbench.faces.parsing import WEIGHTS as PARSER_WEIGHTS
from swapbench.methods import get
from swapbench.methods.base import FaceBatch
from swapbench.methods.fslsd import FSLSD, FSLSD_FILE, H3R_FILE, PSP_FILE
from swapbench.methods.fslsd import random_weights as rw
from swapbench.methods.fslsd.method import LIST2, LIST2_FROM_BISENET, landmark_maps
from swapbench.methods.megafs.random_weights import parser_state
from swapbench.weights import WeightsError

GEN = 16


def method_state(seed=0):
    return {FSLSD_FILE.name: rw.checkpoint(GEN, seed), PSP_FILE.name: rw.psp_checkpoint(seed),
            H3R_FILE.name: rw.h3r_state(seed), PARSER_WEIGHTS.name: parser_state(seed)}


@pytest.fixture(scope="module")
def state():
    return method_state()


@pytest.fixture(scope="module")
def fslsd(state):
    m = FSLSD(generator_size=GEN)
    m.load_weights(state)
    return m


def test_registry_and_declared_files():
    assert get("fslsd") is FSLSD and FSLSD().convention == "celebahq_1024"
    assert [w.filename for w in FSLSD.weights] == ["CELEBA-HQ-1024.pt", "psp_ffhq_encode.pt",
                                                   "h3r_lapa_hrnet18_256x256_p2.pth", "79999_iter.pth"]
    assert all(w.url.startswith("https://") and w.licence for w in FSLSD.weights)


def test_bisenet_labels_are_remapped_to_the_official_list2_ids():
    # BiSeNet (zllrunning) order: 1 skin, 2 l_brow, 3 r_brow, 4 l_eye, 5 r_eye, 6 eye_g, 10 nose, 11 mouth,
    # 12 u_lip, 13 l_lip, 17 hair; list2: 1 skin, 6 l_brow, 7 r_brow, 4 l_eye, 5 r_eye, 3 eye_g, 2 nose,
    # 10 mouth, 11 u_lip, 12 l_lip, 13 hair
    assert LIST2_FROM_BISENET[[0, 1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 17]].tolist() == [0, 1, 6, 7, 4, 5, 3, 2, 10, 11,
                                                                                      12, 13]
    assert sorted(LIST2_FROM_BISENET.tolist()) == list(range(len(LIST2)))


def test_landmark_maps_are_one_hot_at_truncated_x_y():
    pts = torch.tensor([[[10.9, 3.2], [-1.0, 5.0], [300.0, 4.0], [-0.5, 0.7]]])
    maps = landmark_maps(pts, 32)
    assert maps[0, 0, 3, 10] == 1 and maps[0, 0].sum() == 1
    assert maps[0, 1].sum() == 0 and maps[0, 2].sum() == 0  # -1 skipped, outside the map: no peak
    assert maps[0, 3, 0, 0] == 1  # int(-0.5) == 0


def test_weight_files_are_checked_before_loading(state):
    m = FSLSD(generator_size=GEN)
    ck = dict(state[FSLSD_FILE.name])
    ck["decoder"] = {k: v for k, v in ck["decoder"].items() if k != "module.decoder.0.blur.kernel"}
    with pytest.raises(WeightsError, match=r"CELEBA-HQ-1024.pt.*decoder.*missing keys.*decoder.0.blur.kernel"):
        m.load_weights({**state, FSLSD_FILE.name: ck})
    with pytest.raises(WeightsError, match=r"CELEBA-HQ-1024.pt.*bald_model"):
        m.load_weights({**state, FSLSD_FILE.name: {k: v for k, v in ck.items() if k != "bald_model"}})
    with pytest.raises(WeightsError, match=r"psp_ffhq_encode.pt.*latent_avg"):
        m.load_weights({**state, PSP_FILE.name: {**state[PSP_FILE.name], "latent_avg": torch.zeros(3)}})
    with pytest.raises(WeightsError, match=r"h3r_lapa_hrnet18_256x256_p2.pth.*H3R"):
        m.load_weights({**state, H3R_FILE.name: parser_state(0)})
    assert not m.weights_loaded
    with pytest.raises(RuntimeError, match="load_weights"):
        m.swap(smooth_batch(0, 1), smooth_batch(1, 1))


def test_swaps_do_not_depend_on_batch_size(fslsd, monkeypatch):
    # swap() runs one pair at a time. The full-size pSp encoder, H3R and landmark encoder (~25 s a pair
    # here) run in the end-to-end test below; this one replaces them by cheap deterministic stand-ins
    # (functions of each pair alone) and checks the rest: parser mask, generator, GPEN encoder, decoder.
    class Delta(torch.nn.Module):
        def forward(self, maps):
            return maps.flatten(2).argmax(-1)[:, :7, None].float().expand(-1, -1, 512) / 65536

    monkeypatch.setattr(fslsd, "latents", lambda x: fslsd.latent_avg + x.mean((1, 2, 3)).view(-1, 1, 1))
    monkeypatch.setattr(fslsd, "landmarks", lambda x: 40 + 176 * x[:, :2, :106, 0].transpose(1, 2))
    monkeypatch.setattr(fslsd, "encoder_lmk", Delta())
    src, tgt = smooth_batch(0), smooth_batch(1)
    together = fslsd.swap(src, tgt)
    alone = torch.cat([fslsd.swap(FaceBatch(src.image[i:i + 1], src.landmarks[i:i + 1]),
                                  FaceBatch(tgt.image[i:i + 1], tgt.landmarks[i:i + 1])) for i in range(3)])
    assert together.shape == (3, 3, 256, 256) and torch.equal(together, alone)
    assert 0 <= float(together.min()) and float(together.max()) <= 1
    assert not torch.equal(together[0], together[1])


def test_a_run_without_the_files_stops_before_any_work_listing_every_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SWAPBENCH_WEIGHTS", str(tmp_path / "no-weights"))
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = cli.main(["run", "--method", "fslsd", "--weights-dir", str(empty), "--no-progress",
                   "--store", str(tmp_path / "s.sqlite")])
    _, err = capsys.readouterr()
    assert rc in (1, 2)
    for wf in FSLSD.weights:
        assert wf.filename in err and wf.url in err, (wf.filename, err)
    assert not (tmp_path / "s.files" / "crops").exists()


def test_released_inputs_on_another_protocol_are_refused_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SWAPBENCH_WEIGHTS", str(tmp_path / "no-weights"))
    rc = cli.main(["run", "--method", "fslsd", "--set", "fslsd.inputs=released", "--weights-dir", str(tmp_path),
                   "--no-progress", "--store", str(tmp_path / "s.sqlite")])
    _, err = capsys.readouterr()
    assert rc == 2
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and "needs the celebahq protocol, not samples" in lines[0], err
    assert not (tmp_path / "s.files" / "crops").exists()


def test_fslsd_runs_end_to_end_with_official_format_files(state, tmp_path, capsys, monkeypatch):
    weights = tmp_path / "weights"
    weights.mkdir()
    half = lambda sd: {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
    ck, psp = state[FSLSD_FILE.name], state[PSP_FILE.name]  # the module's weights (method_state(0))
    torch.save({**ck, "encoder_lmk": half(ck["encoder_lmk"])}, weights / "CELEBA-HQ-1024.pt")
    torch.save({**psp, "state_dict": half(psp["state_dict"])}, weights / "psp_ffhq_encode.pt")
    torch.save(state[H3R_FILE.name], weights / H3R_FILE.filename)
    torch.save(state[PARSER_WEIGHTS.name], weights / "79999_iter.pth")
    # in process: the random H3R file cannot match the declared sha256 of the real one
    monkeypatch.setattr(FSLSD, "weights", tuple(dataclasses.replace(w, sha256=None) for w in FSLSD.weights))
    store = tmp_path / "r.sqlite"
    rc = cli.main(["run", "--no-progress", "--method", "fslsd", "--subset", "2", "--batch-size", "2",
                   "--weights-dir", str(weights), "--set", "metrics={identity: dlib_resnet_v1}",
                   "--set", f"fslsd.generator_size={GEN}", "--store", str(store)])
    out, err = capsys.readouterr()
    assert rc == 0 and "| fslsd |" in out, out + err
    swaps, _, publishable = complete_run(store, "fslsd")
    assert not publishable and len(swaps) == 2 and all(swaps.values()), swaps


def test_preset_config_resolves():
    from pathlib import Path

    from swapbench.bench import config

    cfg = config.load([Path(__file__).parent.parent / "configs" / "fslsd_celebahq.yaml"], config.parse_set([]))
    assert cfg["protocol"] == "celebahq" and cfg["methods"] == ["fslsd"]
    assert cfg["fslsd"] == {"generator_size": 1024, "inputs": "released"}
    with pytest.raises(KeyError, match="unknown option fslsd.bogus"):
        FSLSD.from_config({"engine": {"seed": 0}, "fslsd": {"bogus": 1}})


def test_released_inputs_are_read_and_carried_into_the_crop(fslsd, state, tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from swapbench.methods.fslsd.method import mask_from_list2

    side = 256
    root = tmp_path / "CelebAMask-HQ"
    for folder in ("img", "latent", "landmark", "mask"):
        (root / f"CelebA-HQ-{folder}").mkdir(parents=True)
    batches = {}
    for n, index in enumerate((28000, 29000)):
        g = torch.Generator().manual_seed(n)
        img = smooth_batch(n, 1, side).image
        Image.fromarray((img[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(
            root / "CelebA-HQ-img" / f"{index}.jpg")
        np.save(root / "CelebA-HQ-latent" / f"{index}.npy", torch.randn(18, 512, generator=g).numpy())
        pts = 40 + 176 * torch.rand(106, 2, generator=g)
        pts[7] = -1
        np.save(root / "CelebA-HQ-landmark" / f"{index}.npy", pts.numpy())
        lab = np.zeros((512, 512), np.uint8)
        lab[100:400, 150:350] = 1  # skin
        lab[300:330, 200:300] = 10  # mouth
        lab[:80] = 13  # hair: not in the mask
        Image.fromarray(np.stack([lab] * 3, axis=2)).save(root / "CelebA-HQ-mask" / f"{index}.png")
        batches[index] = FaceBatch(img, torch.zeros(1, 68, 2), [f"p{n}"], torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]]),
                                   [str(root / "CelebA-HQ-img" / f"{index}.jpg")])
    src, tgt = batches[29000], batches[28000]
    codes = fslsd.released_latents(src)
    assert torch.equal(codes[0], torch.from_numpy(np.load(root / "CelebA-HQ-latent" / "29000.npy")))
    lm = fslsd.released_landmarks(src)  # identity transform, crop side = image side: the same points
    ref = torch.from_numpy(np.load(root / "CelebA-HQ-landmark" / "29000.npy"))
    assert torch.allclose(lm[0], ref, atol=1e-4) and (lm[0, 7] == -1).all()
    mask = fslsd.released_mask(tgt)
    labels = torch.from_numpy(np.asarray(Image.open(root / "CelebA-HQ-mask" / "28000.png"))[..., 0].astype(np.int64))
    expected = torch.nn.functional.interpolate(mask_from_list2(labels[None, None], side), size=(1024, 1024),
                                               mode="bilinear", align_corners=False)
    assert mask.shape == (1, 1, 1024, 1024) and float((mask - expected).abs().max()) < 1e-4

    released = FSLSD(generator_size=GEN, inputs="released")
    assert [w.filename for w in released.weights] == ["CELEBA-HQ-1024.pt"]
    released.load_weights({FSLSD_FILE.name: state[FSLSD_FILE.name]})
    out = released.swap(src, tgt)
    t_in = torch.nn.functional.interpolate(tgt.image, size=(GEN, GEN), mode="bilinear", antialias=True)
    with torch.no_grad():
        ref_out = released.generate(codes, released.released_latents(tgt), lm, released.released_landmarks(tgt),
                                    (t_in - 0.5) / 0.5, mask)
    from swapbench.methods.fslsd.method import to_uint8_steps
    ref_out = torch.nn.functional.interpolate(to_uint8_steps(ref_out), size=(side, side), mode="bilinear")
    assert torch.equal(out, ref_out)
    with pytest.raises(ValueError, match="fslsd.inputs=released"):
        released.swap(smooth_batch(0, 1), smooth_batch(1, 1))
    with pytest.raises(ValueError, match="fslsd.inputs must be one of"):
        FSLSD(inputs="bogus")


def test_h3r_built_on_meta_holds_nothing_outside_its_state_dict():
    # The method builds its networks on `meta` and moves them with to_empty: any buffer a state dict does
    # not carry would hold uninitialised memory (a flip-index buffer once did, failing only in long runs).
    from swapbench.methods.fslsd.h3r import H3R

    with torch.device("meta"):
        on_meta = H3R()
    on_meta = on_meta.to_empty(device="cpu")
    for _, buf in on_meta.named_buffers():
        buf.fill_(7)  # what uninitialised memory might hold
    direct = H3R()
    state = rw.h3r_state(0)
    on_meta.load_state_dict(state, strict=True)
    direct.load_state_dict(state, strict=True)
    images = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(on_meta.eval().detect(images), direct.eval().detect(images))
