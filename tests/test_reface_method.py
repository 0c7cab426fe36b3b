"""REFace: checkpoint layout (full-size manifest on `meta`), conversion, weight errors, determinism."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from reface_inputs import manifest, random_official_state, write_lightning_checkpoint  # noqa: E402
from swapbench.weights import WeightsError  # noqa: E402
from swapbench.faces import parsing  # noqa: E402
from swapbench.methods import get  # noqa: E402
from swapbench.methods.base import FaceBatch  # noqa: E402
from swapbench.methods.ghost.random_weights import random_state_dict  # noqa: E402
from swapbench.methods.reface import model as M  # noqa: E402
from swapbench.methods.reface.convert import convert_checkpoint  # noqa: E402
from swapbench.methods.reface.method import CHECKPOINT, PARSER, REFace  # noqa: E402


@pytest.mark.parametrize("tiny", [False, True], ids=["full", "tiny"])
def test_official_checkpoint_layout_converts_onto_the_port(tiny):
    """Every key of the official LatentDiffusion (manifest) is converted or deliberately ignored, and the
    converted tensors have exactly the keys and shapes of the port's modules, built on `meta`."""
    arch = M.TINY if tiny else M.FULL
    official = {k: torch.empty(v, device="meta") for k, v in manifest(tiny).items()}
    converted, ignored, unknown = convert_checkpoint(official, arch)
    assert unknown == []
    assert any(k.startswith("cond_stage_model.model.text_model.") for k in ignored)
    assert any(k.startswith("cond_stage_model.mapper.") for k in ignored)
    assert "betas" in ignored and not any(k.startswith(("model.diffusion_model", "first_stage_model")) for k in ignored)
    # transformers 4.19.2 (the official pin) saves both towers' position_ids: dropped whatever their prefix
    assert {"cond_stage_model.model.vision_model.embeddings.position_ids",
            "cond_stage_model.model.text_model.embeddings.position_ids"} <= set(ignored)
    with torch.device("meta"):
        port = {f"unet.{k}": v for k, v in M.build_unet(arch).state_dict().items()}
        port |= {f"vae.{k}": v for k, v in M.build_vae(arch).state_dict().items()}
        port |= {f"cond.{k}": v for k, v in M.Conditioner(arch).state_dict().items()}
    assert sorted(converted) == sorted(port)
    assert {k: tuple(v.shape) for k, v in converted.items()} == {k: tuple(v.shape) for k, v in port.items()}
    if not tiny:  # the published architecture, as the issue and the spec state it
        man = manifest(False)
        assert man["model.diffusion_model.input_blocks.0.0.weight"] == [320, 9, 3, 3]
        assert man["cond_stage_model.model.visual_projection.weight"] == [768, 1024]
        assert man["learnable_vector"] == [1, 1, 768] and man["ID_proj_out.weight"] == [768, 512]
        assert man["landmark_proj_out.weight"] == [768, 136]
        assert len(man) == 2087 and sum(k.startswith("lpips_loss.") for k in ignored) == 17


def test_unet_config_matches_diffusers_builder_from_the_official_yaml():
    from diffusers.loaders.single_file_utils import create_unet_diffusers_config_from_ldm

    yaml = {"model": {"params": {"unet_config": {"params": {
        "image_size": 32, "in_channels": 9, "out_channels": 4, "model_channels": 320, "attention_resolutions": [4, 2, 1],
        "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4], "num_heads": 8, "use_spatial_transformer": True,
        "transformer_depth": 1, "context_dim": 768, "use_checkpoint": True, "legacy": False}},
        "first_stage_config": {"params": {"ddconfig": {"ch_mult": [1, 2, 4, 4]}}}}}}
    ref = create_unet_diffusers_config_from_ldm(yaml, {}, image_size=512)
    ours = M.FULL.unet_config()
    for k in ("in_channels", "out_channels", "down_block_types", "up_block_types", "block_out_channels",
              "layers_per_block", "cross_attention_dim", "attention_head_dim", "use_linear_projection"):
        assert tuple(ref[k]) == tuple(ours[k]) if isinstance(ours[k], tuple) else ref[k] == ours[k], k


@pytest.fixture(scope="module")
def tiny_method():
    m = REFace({"tiny": True, "steps": 3})
    bisenet = random_state_dict(parsing.BiSeNet().state_dict(), 0)
    m.load_weights({CHECKPOINT.name: {"state_dict": random_official_state(True), "global_step": 3}, PARSER.name: bisenet})
    return m


def _faces(n, seed=0):
    from faces import sample_crops

    crops = list(sample_crops().values())
    g = torch.Generator().manual_seed(seed)
    imgs = torch.stack([torch.from_numpy(crops[i % len(crops)]).permute(2, 0, 1).float() / 255 for i in range(n)])
    imgs = torch.nn.functional.interpolate(imgs, size=(512, 512), mode="bilinear", align_corners=False)
    return imgs.clamp(0, 1), torch.rand(n, 68, 2, generator=g) * 512


def test_registered_with_options_and_weights():
    cls = get("reface")
    assert cls is REFace and cls.crop == "ffhq" and cls.size == 512
    assert {f.name for f in cls.weights} == {"reface/last", "face_parsing/bisenet_79999_iter"}
    o = REFace.Options()
    assert (o.steps, o.guidance_scale, o.eta, o.tiny) == (50, 3.5, 0.0, False)
    with pytest.raises(ValueError):
        REFace({"steps": 0, "tiny": True})


def test_wrong_checkpoint_is_a_weights_error_naming_the_file(tiny_method):
    bisenet = random_state_dict(parsing.BiSeNet().state_dict(), 0)
    bad = random_official_state(True)
    bad["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(32, 4, 3, 3)  # SD-style 4-channel UNet
    with pytest.raises(WeightsError, match="last.ckpt.*wrong shapes.*conv_in"):
        tiny_method.load_weights({CHECKPOINT.name: {"state_dict": bad}, PARSER.name: bisenet})
    stray = random_official_state(True) | {"something.else": torch.zeros(1)}
    with pytest.raises(WeightsError, match="last.ckpt.*something.else"):
        tiny_method.load_weights({CHECKPOINT.name: {"state_dict": stray}, PARSER.name: bisenet})
    assert tiny_method.weights_loaded  # the checks ran before anything was changed


def test_missing_files_name_the_official_urls(tmp_path):
    from swapbench.weights import resolve

    with pytest.raises(WeightsError) as e:
        resolve(REFace.weights, tmp_path)
    assert "last.ckpt" in str(e.value) and "hf://Sanoojan/REFace/last.ckpt" in str(e.value)
    assert "79999_iter.pth" in str(e.value)


def test_lightning_file_converts_once_into_the_cache(tmp_path, monkeypatch, tiny_method):
    import swapbench.methods.reface.method as method_mod

    import swapbench.weights

    monkeypatch.setattr(swapbench.weights.platformdirs, "user_cache_dir", lambda *a, **k: str(tmp_path))
    ckpt = write_lightning_checkpoint(tmp_path / "last.ckpt", tiny=True)
    calls = []
    real = method_mod.convert_checkpoint
    monkeypatch.setattr(method_mod, "convert_checkpoint", lambda *a: calls.append(1) or real(*a))
    first = tiny_method._converted(swapbench.weights.load(method_mod.CHECKPOINT, ckpt))
    second = tiny_method._converted(swapbench.weights.load(method_mod.CHECKPOINT, ckpt))
    assert len(calls) == 1 and len(list((tmp_path / "converted").glob("*.safetensors"))) == 1
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert first.keys() == tiny_method.net.state_dict().keys()
    groups = tiny_method.checkpoint_ignored
    assert groups["lpips_loss."] == 1 and groups["schedule buffers"] == 12
    assert groups["cond_stage_model.model.text_model."] > 0 and groups["cond_stage_model.mapper."] > 0


def test_swap_depends_on_pair_not_batch(tiny_method):
    src, slm = _faces(3, 1)
    tgt, tlm = _faces(3, 2)
    tgt = tgt.flip(0)
    ids = ["a", "b", "c"]
    out3 = tiny_method.swap(FaceBatch(src, slm, ids), FaceBatch(tgt, tlm, ids))
    assert out3.shape == (3, 3, 512, 512) and out3.min() >= 0 and out3.max() <= 1
    one = tiny_method.swap(FaceBatch(src[1:2], slm[1:2], ["b"]), FaceBatch(tgt[1:2], tlm[1:2], ["b"]))
    # the same noise and inputs; batched kernels differ by ~1e-6, and the official 8-bit truncation turns a
    # value that close to a level boundary into one level: at most one level, on a few values only
    levels = ((one[0] - out3[1]).abs() * 255).round()
    assert levels.max() <= 1 and (levels > 0).float().mean() < 1e-3, (levels.max(), (levels > 0).float().mean())
    assert (out3[0] - out3[2]).abs().max() > 1e-3


@pytest.mark.parametrize("name,protocol", [("reface_ffhq", "ffhq"), ("reface_celebahq", "celebahq")])
def test_presets_reproduce_the_paper_evaluation(name, protocol):
    from pathlib import Path

    from swapbench.bench import config

    cfg = config.load([Path(__file__).parent.parent / "configs" / f"{name}.yaml"])
    assert cfg["protocol"] == protocol and cfg["subset"] is None and cfg["methods"] == ["reface"]
    assert cfg["metrics"] == {"identity": "arcface_irse50_reface", "pose": "hopenet", "expression": "deep3d_exp",
                              "inception": "fid_helper_inception"}
    assert REFace.Options(**cfg["reface"]) == REFace.Options()  # the official sampler settings


def test_the_source_reaches_clip_from_the_official_1024_crop(tiny_method):
    """Officially the aligned 1024 source goes straight to 224 (cv2 linear). REFace asks the engine for a
    1024 source crop (its target stays at 512), and swap() resizes that crop, not a smaller copy of it."""
    import cv2

    from swapbench.faces.warp import to_uint8

    assert tiny_method.source_convention == "ffhq_1024" and tiny_method.convention == "ffhq_512"
    src, slm = _faces(1, 1)
    src = torch.nn.functional.interpolate(src, size=(1024, 1024), mode="bicubic", align_corners=False).clamp(0, 1)
    src = src + 0.2 * (torch.rand(src.shape, generator=torch.Generator().manual_seed(0)) - 0.5)  # 1024-px detail
    src = src.clamp(0, 1)
    tgt, tlm = _faces(1, 2)
    seen = []
    hook = tiny_method.net.cond.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        tiny_method.swap(FaceBatch(src, slm * 2, ["a"]), FaceBatch(tgt, tlm, ["a"]))
    finally:
        hook.remove()
    (clip_in,) = seen
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    masked = clip_in != 0
    assert masked.float().mean() > 0.05  # the source mask keeps part of the face
    pixels = clip_in * std + mean
    official = torch.from_numpy(cv2.resize(to_uint8(src)[0], (224, 224), interpolation=cv2.INTER_LINEAR))
    official = official.permute(2, 0, 1)[None].float() / 255
    # where the mask is 1 the input is the resized crop itself (fp16 round trip: 1e-3); mask edges are fractional
    full = masked & (pixels - official).abs().lt(2e-3)
    assert full.float().sum() > 0.9 * masked.float().sum()
    half = torch.nn.functional.interpolate(src, size=(512, 512), mode="bilinear", antialias=True, align_corners=False)
    from_512 = torch.from_numpy(cv2.resize(to_uint8(half)[0], (224, 224), interpolation=cv2.INTER_LINEAR))
    from_512 = from_512.permute(2, 0, 1)[None].float() / 255
    assert (from_512 - official)[masked].abs().mean() > 10 * 2e-3  # the old path would not pass the check above
