"""Face-Adapter port vs the official code (FaceAdapter/Face-Adapter 6e31388) with shared random weights.

How the goldens were made (outside the repository, /work/ref/faceadapter/harness.py):
- official files from the snapshot, not edited; environment torch 2.13 CPU, diffusers 0.26.0 (the official pin),
  transformers 4.40.2, opencv 4.14 (the official `get_affine_transform` needs cv2.solve of OpenCV 4);
- patches from the harness: stub torchvision (ToTensor / Normalize / Compose) and fastai (unused star import),
  BiSeNet's ImageNet download skipped, cpu and fp32 instead of cuda / fp16;
- the face-swapping branch of `infer.py` (D3DFR coefficient mixing, `draw_pts70_batch`, parsing masks, control
  image, blend mask, the `StableDiffusionFaceAdapterPipeline` call with 25 Euler steps, CFG 5.0, then the pixel
  blend) is run line for line on given 512 crops and 5 points (no insightface detection);
- tiny configuration of tests/face_adapter_inputs.py (token width 64, 8 tokens, 1 layer; iresnet18; tiny
  CLIP / UNet / ControlNet / VAE; full D3DFR and BiSeNet; random BFM stand-in), weights from
  random_state_dict seeded per key; token decoders in eval mode, plus one call each in training mode after
  torch.manual_seed(1234) (the official dropout);
- tests/golden/face_adapter_manifest.json: {file: {key: shape}} of the official modules at full size on `meta`.

Each stage is fed the official inputs of that stage (from the golden file), so a difference is the stage's own.
Tolerances: 1e-4 absolute for fp32 networks (tokens, 3DMM coefficients, one UNet + ControlNet call), where
the official D3DFR folds BatchNorm into the convolutions and the port does not; landmarks 2e-3 px (values
~100 px in float32); latents after 1, 2 and 3 of 25 Euler steps 1e-3; the decoded image (of the official
latents after 25 steps) is 8-bit as officially: at most 1 level apart on under 1% of pixels. The 256 crops
and the landmark image come from cv2.warpAffine: identical under OpenCV 4 (the official environment and the
one swapbench pins; under OpenCV 5 up to 7 levels apart). The 256 alignment equals the official arithmetic bit
for bit on float32 points (tests/golden/face_adapter_align.npz).
"""

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from face_adapter_inputs import (
    GOLDEN,
    manifest,
    parity_inputs,
    random_bfm,
    write_tiny_weights,
)

from swapbench.faces.deep3d import BFMLandmarks, face_adapter_state_dict
from swapbench.methods.face_adapter import condition as C
from swapbench.methods.face_adapter.method import FULL, Adapters, FaceAdapter
from swapbench.weights import WeightFile, load


class _Golden:
    """The golden arrays, read on first use."""

    data = None

    def __getitem__(self, key):
        if self.data is None:
            self.data = dict(np.load(GOLDEN / "face_adapter_tiny.npz"))
        return self.data[key]


G = _Golden()
TOL = {"atol": 1e-4, "rtol": 0}


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


def _shapes(sd):
    return {k: list(v.shape) for k, v in sd.items()}


def test_full_size_modules_match_the_official_checkpoint_layouts_on_meta():
    man = manifest()
    with torch.device("meta"):
        ad = Adapters(FULL, visual_dim=1280)
    assert _shapes(ad.id2token.state_dict()) == man["net_id2token.pth"]
    assert _shapes(ad.image2token.state_dict()) == man["net_image2token.pth"]
    assert _shapes(ad.arcface.state_dict()) == man["third_party/insightface_glint360k.pth"]
    official = {k: torch.empty(s, device="meta") for k, s in man["third_party/d3dfr_res50_nofc.pth"].items()}
    assert _shapes(face_adapter_state_dict(official)) == _shapes(ad.d3dfr.state_dict())
    # the official loader strips a DataParallel prefix too
    assert set(face_adapter_state_dict({"module." + k: v for k, v in official.items()})) == set(ad.d3dfr.state_dict())


@pytest.fixture(scope="module")
def fa(tmp_path_factory):
    root = write_tiny_weights(tmp_path_factory.mktemp("fa_weights"))
    m = FaceAdapter({"tiny": True, "steps": 25})
    state = {}
    for wf in m.weights:
        state[wf.name] = load(wf, root / wf.filename)
    m.load_weights(state)
    return m


@pytest.fixture(scope="module")
def run(fa):
    """The method's own chain on the harness inputs, one Euler step (stage values are checked below)."""
    src, tgt = parity_inputs()
    assert (src == G["src512"]).all() and (tgt == G["tgt512"]).all()
    rec = {}
    out = fa.generate(src[None], tgt[None], G["warp_src"][None], G["warp_tgt"][None], [torch.Generator()],
                      latents=_start(fa), record=rec, stop_after=1)
    return rec, out


def _start(fa):
    """The official start latents: torch.manual_seed(0) CPU draw x init_noise_sigma (diffusers' prepare_latents)."""
    return torch.randn((1, 4, 64, 64), generator=torch.Generator().manual_seed(0)) * fa._init_noise_sigma()


def _u8(x):
    return ((x + 1) / 2 * 255).round().to(torch.int64).numpy()


def _max_shift_px(m, want, side=512):
    """The largest distance, in 256-crop pixels, between where two 2x3 matrices send the 512 crop's corners."""
    corners = np.array([[0, 0], [side - 1, 0], [0, side - 1], [side - 1, side - 1]], np.float64)
    return np.abs(corners @ (m[:, :2] - want[:, :2]).T + (m[:, 2] - want[:, 2])).max()


def test_256_alignment_is_the_official_arithmetic():
    """tests/golden/face_adapter_align.npz: the official `get_affine_transform` (run outside the repository,
    numpy 2's scalar conversion of cv2.solve's [4, 1] result being the only change) on 24 float32 five-point sets,
    as insightface's kps are: equal bit for bit (a float64 least squares was up to 6.2e-4 px off)."""
    g = np.load(GOLDEN / "face_adapter_align.npz")
    for pts, warp in zip(g["pts5"], g["warp"]):
        np.testing.assert_array_equal(C.align_matrix_256(pts), warp)


def test_256_alignment_and_crops(run):
    rec, _ = run
    # The harness gave the official function float64 points (float64 terms); the port rounds them to float32
    # as insightface's kps are: 5.4e-5 px here, bounded by 1e-3 px (a level at 8 bits takes ~1e-2 px).
    for pts, warp in ((G["pts_src"], G["warp_src"]), (G["pts_tgt"], G["warp_tgt"])):
        assert _max_shift_px(C.align_matrix_256(pts), warp) <= 1e-3
    for name in ("src256", "tgt256"):  # cv2.warpAffine under OpenCV 4 (tests/test_opencv_calls.py)
        assert (_u8(rec[name]) == G[name]).all()


def test_3dmm_coefficients_landmarks_and_landmark_image(fa, run):
    rec, _ = run
    for name in ("src", "tgt"):
        x = C.from_uint8(np.moveaxis(G[f"{name}256"], 1, -1))
        np.testing.assert_allclose(fa.adapters.d3dfr(x).numpy(), G[f"{name}_coeff"], **TOL)
    bfm = BFMLandmarks(random_bfm(), size=256)
    np.testing.assert_allclose(bfm(torch.from_numpy(G["mixed_coeff"])).numpy(), G["pts68"], atol=2e-3, rtol=0)
    img = C.landmark_image(torch.from_numpy(G["pts68"]), torch.from_numpy(G["mixed_coeff"][:, 257:]), G["warp_tgt"][None])
    assert (_u8(img) == G["pts_image"]).all()
    assert rec["pts68"].shape == (1, 68, 2) and rec["pupil"].shape == (1, 4)


def test_masks_control_image_and_blend_mask(fa, run):
    rec, _ = run
    target = C.from_uint8(G["tgt512"][None])
    labels = C.parse_labels(fa.parser, target)
    assert (labels.numpy() == G["labels"]).mean() > 0.9999
    face = C.face_mask(torch.from_numpy(G["labels"]).long())
    assert (face.numpy() == G["face"]).all()
    np.testing.assert_allclose(C.blend_mask(face)[:, :, ::2, ::2].numpy(), G["blend_sub"], atol=1e-6, rtol=0)
    pts = C.from_uint8(np.moveaxis(G["pts_image"], 1, -1))
    control = pts * face + target * (1 - face)
    np.testing.assert_allclose(control[:, :, ::4, ::4].numpy(), G["control_sub"], atol=1e-6, rtol=0)
    assert (rec["face"].numpy() == G["face"]).mean() > 0.9999  # the method's own chain


def test_identity_and_attribute_tokens_eval_mode(fa, run):
    rec, _ = run
    x = C.from_uint8(np.moveaxis(G["src256"], 1, -1))
    feat = fa.adapters.arcface.layer4_tokens(C.arcface_input(x))
    np.testing.assert_allclose(feat[:, :16].numpy(), G["arcface_tokens_sub"], **TOL)
    assert feat.double().sum().item() == pytest.approx(float(G["arcface_tokens_sum"]), rel=1e-5, abs=1e-3)
    np.testing.assert_allclose(fa.adapters.id2token.decode(feat).numpy(), G["id_tokens"], **TOL)
    clip = C.clip_input(G["tgt512"][None])
    np.testing.assert_allclose(clip[:, :, ::4, ::4].numpy(), G["clip_tar_sub"], atol=1e-5, rtol=0)
    hidden = fa.vision(pixel_values=clip).last_hidden_state
    np.testing.assert_allclose(hidden.numpy(), G["clip_hidden"], **TOL)
    np.testing.assert_allclose(fa.adapters.image2token.decode(hidden).numpy(), G["attr_tokens"], **TOL)
    np.testing.assert_allclose(rec["attr_tokens"].numpy(), G["attr_tokens"], **TOL)  # no warp on this path


def test_tokens_with_the_official_dropout(fa):
    x = C.from_uint8(np.moveaxis(G["src256"], 1, -1))
    feat = fa.adapters.arcface.layer4_tokens(C.arcface_input(x))
    hidden = torch.from_numpy(G["clip_hidden"])
    try:
        for net, inp, key in ((fa.adapters.id2token, feat, "id_tokens_train"), (fa.adapters.image2token, hidden, "attr_tokens_train")):
            net.train()
            torch.manual_seed(1234)
            with torch.no_grad():
                np.testing.assert_allclose(net(inp).numpy(), G[key], **TOL)
            assert np.abs(G[key] - G[key.replace("_train", "")]).max() > 1e-2  # dropout changes them
    finally:
        fa.adapters.eval()
    # the method's option: masks from the pair's generator, the same tokens at any batch position
    gens = [torch.Generator().manual_seed(5), torch.Generator().manual_seed(6)]
    two = fa.adapters.id2token.decode(torch.cat([feat, feat]), gens)
    one = fa.adapters.id2token.decode(feat, [torch.Generator().manual_seed(6)])
    torch.testing.assert_close(two[1:], one, atol=0, rtol=0)
    assert (two[0] - two[1]).abs().max() > 1e-3
    assert not fa.adapters.id2token.training


def _golden_control():
    face = torch.from_numpy(G["face"]).float()
    return C.from_uint8(np.moveaxis(G["pts_image"], 1, -1)) * face + C.from_uint8(G["tgt512"][None]) * (1 - face)


def test_one_unet_and_controlnet_call(fa):
    from diffusers import EulerDiscreteScheduler

    empty, control = torch.from_numpy(G["empty"]), _golden_control()
    sched = EulerDiscreteScheduler.from_config(fa.scheduler_config)
    sched.set_timesteps(25)
    t0 = sched.timesteps[0]
    xin = sched.scale_model_input(torch.cat([_start(fa)] * 2), t0)
    with torch.no_grad():
        down, mid = fa.controlnet(xin, t0, encoder_hidden_states=torch.cat([empty, torch.from_numpy(G["attr_tokens"])]),
                                  controlnet_cond=torch.cat([control, control]), conditioning_scale=1.0, return_dict=False)
        eps = fa.unet(xin, t0, encoder_hidden_states=torch.cat([empty, torch.from_numpy(G["id_tokens"])]),
                      down_block_additional_residuals=down, mid_block_additional_residual=mid, return_dict=False)[0]
    np.testing.assert_allclose(eps.numpy(), G["eps0"], **TOL)


def test_euler_steps(fa, run):
    rec, _ = run
    steps = []
    fa.sample(_start(fa), _golden_control(), torch.from_numpy(G["id_tokens"]), torch.from_numpy(G["attr_tokens"]),
              steps=3, record=steps)
    np.testing.assert_allclose(torch.cat(steps).numpy(), G["steps"][:3], atol=1e-3, rtol=0)
    assert len(rec["steps"]) == 1


def test_decoded_and_blended_image(fa):
    gen = fa.decode(torch.from_numpy(G["steps"][3:4]))  # the official latents after 25 steps
    decoded = _u8(gen)[0].transpose(1, 2, 0)
    d = np.abs(decoded[::4, ::4] - G["decoded_sub"].astype(np.int64))
    assert d.max() <= 1 and (d > 0).mean() < 0.01
    assert abs(int(decoded.sum()) - int(G["decoded_sum"])) <= 0.001 * decoded.size
    blend = C.blend_mask(torch.from_numpy(G["face"]).float())
    out = gen * blend + C.from_uint8(G["tgt512"][None]) * (1 - blend)
    np.testing.assert_allclose(out[:, :, ::8, ::8].numpy(), G["blended_sub"], atol=2.0 / 255 + 1e-6, rtol=0)
    assert out.double().sum().item() == pytest.approx(float(G["blended_sum"]), abs=1e-3 * out.numel())


def test_weight_files_have_their_declared_formats():
    from swapbench.methods.face_adapter.method import WEIGHTS

    names = [wf.name for wf in WEIGHTS]
    assert len(names) == len(set(names)) and all(isinstance(wf, WeightFile) for wf in WEIGHTS)
    assert {wf.format for wf in WEIGHTS if "FaceAdapter/" in wf.filename and wf.filename.endswith(".pth")} == {"state_dict"}
