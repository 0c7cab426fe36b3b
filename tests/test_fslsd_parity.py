"""FSLSD-HiRes port vs the official code: checkpoint layout (manifest) and numerical parity.

tests/golden/fslsd_manifest.json: {key: shape} of every part of CELEBA-HQ-1024.pt (with the DDP
`module.` prefix), dumped from the official modules (cnnlstm/FSLSD_HiRes @ 4cf0869) built as
test.py builds them, at full size on the meta device: encoder_lmk (GradualLandmarkEncoder(212)),
encoder_target (GPENEncoder(512)), generator (Generator(1024, 512, 8)), decoder (Decoder(8, 1024)),
bald_model (F_mapping); plus psp_encoder (pSp's GradualStyleEncoder(50, 'ir_se'), as shipped in the
same repository) and h3r (baoshengyu/H3R @ 52a8bde torchalign hrnet18 + HeatmapHead, LaPa config).

tests/golden/fslsd_parity.npz (and the manifest) were made by tools/fslsd_goldens.py: the official
modules imported unmodified on CPU (torch 2.13.0) with three substitutions outside the official
files: a pure-PyTorch `models.stylegan2.op` (upfirdn2d / fused_leaky_relu from their reference
math), mmcv stubs (only the unused PixelShufflePack needs them) and a torchvision stub whose
transforms.Resize is torchvision 0.11's tensor Resize (bilinear, align_corners=False, no antialias,
the authors' version). test.py cannot run (missing criteria/, NCCL, undefined smooth_mask), so its
train() lines 80-112 were restated with the official modules; dataset.py's _cords_to_map_np and
encode_segmentation_rgb, cv2.resize and cv2.dilate made the maps and the mask; save_image's uint8
math was restated. Weights: swapbench.methods.fslsd.random_weights (seed 0, identical values on both
sides). Reduced size: generator, GPEN encoder and decoder at 128 (same code paths: channel change at
128, every decoder level, progressive mask resizing from the 1024 mask); the landmark encoder, pSp
encoder, bald mapping and H3R are full size. Large feature maps are stored as their first 2 channels.

Tolerances: 1e-4 (fp32 deterministic networks; observed errors printed with -s). H3R: 1e-5 relative on
its backbone features (random-weight activations reach ~100) and 1e-2 px on the landmarks. The uint8 output is
compared exactly except where the float value lies within 1e-3 of a rounding boundary.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from swapbench.methods.fslsd import random_weights as rw
from swapbench.methods.fslsd.h3r import H3R
from swapbench.methods.fslsd.method import (
    landmark_maps,
    mask_from_list2,
    to_uint8_steps,
)
from swapbench.methods.fslsd.nets import (
    BaldMapping,
    Decoder,
    GPENEncoder,
    LandmarkEncoder,
    PSPEncoder,
    resize_mask,
    strip_module,
)
from swapbench.methods.stylegan2 import Generator

GOLDEN = Path(__file__).parent / "golden"
TOL = 1e-4
G = 128


@pytest.fixture(scope="module")
def gold():
    return dict(np.load(GOLDEN / "fslsd_parity.npz"))


def _shapes(module, prefix=""):
    return {prefix + k: list(v.shape) for k, v in module.state_dict().items()}


def _err(a, b):
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def test_checkpoint_layout_matches_the_official_manifest():
    manifest = json.loads((GOLDEN / "fslsd_manifest.json").read_text())
    with torch.device("meta"):
        parts = {"encoder_lmk": LandmarkEncoder(), "encoder_target": GPENEncoder(512), "generator": Generator(1024),
                 "decoder": Decoder(8, 1024), "bald_model": BaldMapping()}
        psp, h3r = PSPEncoder(), H3R()
    for name, module in parts.items():
        assert _shapes(module, "module.") == manifest[name], name
        # the conversion the method applies when loading: strip the DDP prefix
        assert set(strip_module(manifest[name])) == set(module.state_dict()), name
    assert _shapes(psp) == manifest["psp_encoder"]
    assert _shapes(h3r) == manifest["h3r"]
    counts = {k: len(v) for k, v in manifest.items() if k != "source"}
    assert counts["encoder_lmk"] == 465 and counts["encoder_target"] == 23 and counts["generator"] == 171
    assert counts["decoder"] == 26 and counts["bald_model"] == 36
    n_params = sum(int(np.prod(s)) for k in parts for key, s in manifest[k].items()
                   if "noises." not in key and not key.endswith("kernel") and "running_" not in key
                   and "num_batches" not in key)
    assert n_params == 167_241_215  # the official total (Part 2.3 of the port notes)


def test_landmark_maps_and_mask_match_the_official_dataset_code(gold):
    lm = torch.from_numpy(gold["landmarks"])
    maps = torch.cat([landmark_maps(lm[0:1]), landmark_maps(lm[1:2])], dim=1)
    assert np.array_equal(np.argwhere(maps[0].numpy() > 0), gold["map_nonzero"])
    assert float(maps.sum()) == float(gold["map_sum"]) == 2 * 105  # one point of each set is -1 (skipped)
    labels = torch.from_numpy(gold["labels"].astype(np.int64))[None, None]
    mask = mask_from_list2(labels)
    err = _err(mask[0, 0], gold["mask_1024"])
    print(f"\nmask 1024 max abs error {err:.2e}")
    assert err <= TOL
    # progressive non-antialiased resizing 1024 -> 8 -> ... -> 128
    m, levels = torch.from_numpy(gold["mask_1024"])[None, None], []
    for i in range(5):
        m = resize_mask(m, 8 * 2**i)
        levels.append(m)
    assert _err(levels[0], gold["mask_8"]) <= TOL and _err(levels[-1], gold["mask_last"]) <= TOL


@torch.no_grad()
def test_networks_and_swap_match_the_official_code(gold):
    ck = {k: strip_module(v) for k, v in rw.checkpoint(G, 0).items()}
    lmk = LandmarkEncoder().eval()
    lmk.load_state_dict(ck["encoder_lmk"])
    tgt = GPENEncoder(G // 2).eval()
    tgt.load_state_dict(ck["encoder_target"])
    gen = Generator(G).eval()
    gen.load_state_dict(ck["generator"])
    dec = Decoder(8, G).eval()
    dec.load_state_dict(ck["decoder"])
    bald = BaldMapping().eval()
    bald.load_state_dict(ck["bald_model"])

    lm = torch.from_numpy(gold["landmarks"])
    maps = torch.cat([landmark_maps(lm[0:1]), landmark_maps(lm[1:2])], dim=1)
    codes = rw.parity_latents(0, 2)
    errs = {}
    delta = lmk(maps)
    errs["encoder_lmk"] = _err(delta, gold["lmk_code"])
    fusion = codes[0:1].clone()
    fusion[:, :7] += delta
    fusion = torch.cat([fusion[:, :11], codes[1:2, 11:]], dim=1)
    errs["mixing"] = _err(fusion, gold["fusion_in"])
    w = bald(fusion.reshape(1, -1), 2.0).view(1, 18, 512)
    errs["bald_model"] = _err(w, gold["fusion"])
    # each later stage from the official values of the previous one, so errors do not compound
    feats = gen.features(torch.from_numpy(gold["fusion"]), noise="buffers")
    for i, f in enumerate(feats):
        errs[f"generator[{f.shape[-1]}]"] = _err(f[:, :2], gold[f"gen_{i}"])
    t_img = (rw.parity_images(0, G, 2)[1:2] - 0.5) / 0.5
    tfeats = tgt(t_img)
    for i, f in enumerate(tfeats):
        errs[f"encoder_target[{f.shape[-1]}]"] = _err(f[:, :2], gold[f"gpen_{i}"])
    out = dec(feats, tfeats, torch.from_numpy(gold["mask_1024"])[None, None])
    errs["decoder"] = _err(out, gold["out"])
    print("\n" + "\n".join(f"{k:28s} max abs error {v:.2e}" for k, v in errs.items()))
    assert all(v <= TOL for v in errs.values()), errs
    u8 = to_uint8_steps(out) * 255
    official = gold["out_u8"].astype(np.float64)
    near = np.abs(((out.clamp(-1, 1) + 1) / 2 * 255 + 0.5).numpy() % 1.0 - 0.5) > 0.5 - 1e-3
    diff = np.abs(u8.numpy() - official)
    assert diff[~near].max() == 0 and diff.max() <= 1


@torch.no_grad()
def test_psp_encoder_and_h3r_match_the_official_code(gold):
    psp = PSPEncoder().eval()
    psp.load_state_dict({k[len("encoder."):]: v for k, v in rw.psp_checkpoint(0)["state_dict"].items()})
    codes = psp((rw.parity_images(3, 256, 1) - 0.5) / 0.5)
    h3r = H3R().eval()
    h3r.load_state_dict(rw.h3r_state(0))
    img = rw.parity_images(4, 256, 2)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    feat = h3r.backbone((img - mean) / std)
    errs = {"psp_encoder": _err(codes, gold["psp_codes"]),
            "h3r backbone (relative)": _err(feat[:, :4], gold["h3r_feat"]) / float(np.abs(gold["h3r_feat"]).max()),
            "h3r landmarks (px)": _err(h3r.heatmap_head(feat), gold["h3r_noflip"]),
            "h3r flip test (px)": _err(h3r.detect(img), gold["h3r"])}
    print("\n" + "\n".join(f"{k:28s} max abs error {v:.2e}" for k, v in errs.items()))
    assert errs["psp_encoder"] <= TOL and errs["h3r backbone (relative)"] <= 1e-5, errs
    # the soft-argmax over the 9 best scores of random-weight heatmaps (scores of order 100) turns
    # float-rounding differences into ~1e-3 px; 1e-2 px is far below the one-pixel landmark maps
    assert errs["h3r landmarks (px)"] <= 1e-2 and errs["h3r flip test (px)"] <= 1e-2, errs
