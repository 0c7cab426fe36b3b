"""DiffSwap's checkpoint layout and conversion, checked on `meta` against the official module trees.

tests/golden/diffswap_manifest.json is `{key: shape}` of the official LatentDiffusion state dict built from
configs/diffswap/default-project.yaml (wl-zhao/DiffSwap @ c316952f) on the meta device by
tools/diffswap_parity_harness.py; diffswap_tiny_manifest.json is the same for the tiny test model. No
released file was opened: the real diffswap.pth is expected to hold exactly these keys (schedule buffers
and LitEma counters included, which the conversion ignores).
"""

from __future__ import annotations

import pytest
import torch

from swapbench.methods.diffswap import CHECKPOINT, DiffSwap
from swapbench.methods.diffswap.convert import ema_key
from swapbench.weights import WeightsError, load
from tests import diffswap_inputs as inp


def meta_model(tiny: bool) -> DiffSwap:
    with torch.device("meta"):
        return DiffSwap(DiffSwap.Options(tiny=tiny))


@pytest.mark.parametrize("tiny", [False, True])
def test_official_manifest_converts_onto_the_port(tiny):
    name = "diffswap_tiny_manifest.json" if tiny else "diffswap_manifest.json"
    state = inp.template(name)
    model = meta_model(tiny)
    conv = model.convert(state)  # raises WeightsError on any missing/unexpected key or wrong shape
    expected = model.expected_state()
    assert set(conv) == set(expected)
    assert all(tuple(conv[k].shape) == tuple(v.shape) for k, v in expected.items())
    # every UNet weight has its EMA copy; the released model's sizes
    unet = [k for k in state if k.startswith("model.diffusion_model.")]
    assert unet and all(ema_key(k) in state for k in unet)
    if not tiny:
        assert state["first_stage_model.quantize.embedding.weight"].shape == (8192, 3)
        assert state["model.diffusion_model.input_blocks.0.0.weight"].shape == (224, 3, 3, 3)
        assert state["cond_stage_model.face_model.fc.weight"].shape == (512, 512 * 7 * 7)
        n = sum(v.numel() for k, v in expected.items() if k.startswith("unet."))
        assert 380e6 < n < 420e6  # "DiffusionWrapper has 409.09 M params"


def test_conversion_takes_the_ema_weights():
    state = inp.tiny_official_state()
    model = DiffSwap(DiffSwap.Options(tiny=True))
    conv = model.convert(state)
    k = "model.diffusion_model.input_blocks.0.0.weight"
    assert torch.equal(conv["unet.conv_in.weight"], state[ema_key(k)])
    assert not torch.equal(conv["unet.conv_in.weight"], state[k])


def test_missing_ema_or_wrong_file_is_a_weights_error_naming_the_file():
    state = dict(inp.tiny_official_state())
    model = DiffSwap(DiffSwap.Options(tiny=True))
    no_ema = {k: v for k, v in state.items() if not k.startswith("model_ema.")}
    with pytest.raises(WeightsError, match=r"diffswap\.pth.*EMA.*cloud\.tsinghua"):
        model.convert(no_ema)
    with pytest.raises(WeightsError, match=r"diffswap\.pth.*does not fit the released DiffSwap model.*cloud\.tsinghua"):
        meta_model(False).convert(state)  # the tiny file for the full-size model
    with pytest.raises(WeightsError, match="not a state dict"):
        model.convert([1, 2])


def test_lightning_wrapped_checkpoint_and_file_path_with_cache(tmp_path, monkeypatch):
    state = inp.tiny_official_state()
    path = tmp_path / "diffswap.pth"
    torch.save({"state_dict": state}, path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("SWAPBENCH_CONVERTED", str(tmp_path / "cache" / "converted"))
    a = DiffSwap(DiffSwap.Options(tiny=True))
    a.load_weights({CHECKPOINT.name: load(CHECKPOINT, path)})
    cached = list((tmp_path / "cache").rglob("*.safetensors"))
    assert len(cached) == 1
    b = DiffSwap(DiffSwap.Options(tiny=True))
    b.load_weights({CHECKPOINT.name: {"state_dict": state}})
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(v, w), k
