"""SimSwap as the engine uses it: registry, weight checks and the official loader's rule, mask fallbacks,
and swaps that do not depend on the batch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from simswap_inputs import seeded_state, seeded_weights

from swapbench import weights
from swapbench.bench.catalogue import weight_files
from swapbench.methods import METHODS
from swapbench.methods.base import FaceBatch
from swapbench.methods.simswap.method import (
    ARCFACE_FILE,
    GENERATOR_FILES,
    PARSER_FILE,
    SimSwap,
    SimSwap512,
)
from swapbench.methods.simswap.networks import Generator, SoftErosion
from swapbench.weights import WeightsError


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """Keep a user's real weights (environment variable, cache directory) out of the search path."""
    monkeypatch.delenv(weights.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(weights.platformdirs, "user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))


def test_registry_conventions_and_files():
    assert METHODS.get("simswap") is SimSwap and METHODS.get("simswap_512") is SimSwap512
    assert (SimSwap.crop, SimSwap.size, SimSwap512.crop, SimSwap512.size) == ("ghost", 224, "ffhq5", 512)
    assert SimSwap.weights == (GENERATOR_FILES[224], ARCFACE_FILE, PARSER_FILE)
    assert SimSwap512.weights == (GENERATOR_FILES[512], ARCFACE_FILE, PARSER_FILE)
    no_mask = SimSwap(SimSwap.Options(use_mask=False))
    assert no_mask.weights == (GENERATOR_FILES[224], ARCFACE_FILE) and no_mask.parser is None
    assert no_mask.convention == "ghost_224"
    files = weight_files()
    assert files[ARCFACE_FILE.name][1] == ["simswap", "simswap_512", "simswap_retrained"]  # ReliableSwap's retrained SimSwap
    assert files[GENERATOR_FILES[512].name][1] == ["simswap_512"]
    assert "simswap" in files[PARSER_FILE.name][1]
    with pytest.raises(ValueError, match="arcface_resize"):
        SimSwap(SimSwap.Options(arcface_resize="bicubic"))


def test_missing_files_are_named_with_url_and_place(tmp_path, isolated_cache):
    with pytest.raises(WeightsError) as err:
        weights.resolve(SimSwap512.weights, weights_dir=tmp_path)
    msg = str(err.value)
    assert "550000_net_G.pth" in msg and "arcface_checkpoint.tar" in msg and "79999_iter.pth" in msg
    assert "https://github.com/neuralchen/SimSwap/releases/download/512_beta/512.zip" in msg
    assert str(tmp_path) in msg


def _with_generator(crop: int, state: dict) -> dict:
    return {GENERATOR_FILES[crop].name: state, ARCFACE_FILE.name: seeded_state("arcface")}


def test_512_file_keeps_what_the_official_loader_keeps():
    """The released 512 file has down4/up4 (a deep=True net): ignored as BaseModel.load_network does, and named."""
    with torch.device("meta"):
        deep_keys = set(Generator(512).state_dict()) | {"down4.0.weight", "down4.0.bias", "up4.1.weight"}
    state = dict(seeded_state("512"))
    state.update({k: torch.zeros(1) for k in deep_keys if k not in state})
    m = SimSwap512(SimSwap512.Options(use_mask=False))
    # a key of the network missing: the official code would leave that layer random; refused here
    missing = {k: v for k, v in state.items() if not k.startswith("up0.")}
    with pytest.raises(WeightsError, match=r"550000_net_G\.pth .*missing keys \(e\.g\. up0\.1\.weight.*512\.zip"):
        m.load_weights(_with_generator(512, missing))
    wrong = {**state, "first_layer.1.weight": torch.zeros(64, 3, 7, 7)}  # the 224 model's first layer
    with pytest.raises(WeightsError, match=r"wrong shapes \(e\.g\. first_layer\.1\.weight"):
        m.load_weights(_with_generator(512, wrong))
    assert not m.weights_loaded  # refused before anything was loaded
    m.load_weights(_with_generator(512, state))
    assert m.ignored_keys == ["down4.0.bias", "down4.0.weight", "up4.1.weight"]
    assert torch.equal(m.generator.up0[1].weight, state["up0.1.weight"])
    # every swap's note names the ignored keys (the networks are not what this checks: skipped for time)
    m.identity = lambda image: torch.zeros(len(image), 512)
    m.generate = lambda target, latent: target
    src = torch.rand(1, 3, 64, 64)
    m.swap(FaceBatch(src, None, ["p"]), FaceBatch(src, None, ["p"]))
    assert m.take_notes(["p"]) == ["550000_net_G.pth: keys the official loader ignores were ignored (3):"
                                   " down4.{0.bias, 0.weight}; up4.{1.weight}"]


def test_224_file_must_fit_and_corrupt_arcface():
    m = SimSwap(SimSwap.Options(use_mask=False))
    with pytest.raises(WeightsError, match=r"latest_net_G\.pth .*224 generator.*wrong shapes"):
        m.load_weights(_with_generator(224, seeded_state("512")))  # the 512 file where the 224 one goes
    arc = seeded_state("arcface")
    corrupt = {**arc, "fc.weight": torch.full_like(arc["fc.weight"], float("nan"))}
    with pytest.raises(WeightsError, match=r"arcface_checkpoint\.tar .*NaN"):
        m.load_weights({GENERATOR_FILES[224].name: seeded_state("224"), ARCFACE_FILE.name: corrupt})
    with pytest.raises(RuntimeError, match="load_weights"):
        SimSwap().identity(torch.rand(1, 3, 224, 224))


def test_mask_fallbacks():
    m = SimSwap()
    no_face = torch.zeros(2, 512, 512, dtype=torch.long)
    no_face[1, :4, :5] = 11  # 20 mouth pixels: just enough (the official sum >= 5000 on 0/255 maps)
    no_face[0, :19] = 17  # hair only
    mask, enough = m.soft_mask(no_face, 64)
    assert enough.tolist() == [False, True] and mask.shape == (2, 1, 64, 64)
    swap, target = torch.ones(2, 3, 64, 64), torch.zeros(2, 3, 64, 64)
    out = m.blend(swap, target, mask, enough)
    assert torch.equal(out[0], swap[0]) and out[1].mean() < 0.1  # no face: the raw swap, as officially
    assert torch.equal(SoftErosion()(torch.zeros(1, 1, 32, 32)), torch.zeros(1, 1, 32, 32))  # officially 0/0


def test_swaps_do_not_depend_on_the_batch():
    m = SimSwap()
    m.load_weights(seeded_weights(224))
    g = torch.Generator().manual_seed(0)
    src, tgt = torch.rand(3, 3, 64, 64, generator=g), torch.rand(3, 3, 64, 64, generator=g)
    ids = ["a", "b", "c"]
    together = m.swap(FaceBatch(src, None, ids), FaceBatch(tgt, None, ids))
    alone = m.swap(FaceBatch(src[1:2], None, ids[1:2]), FaceBatch(tgt[1:2], None, ids[1:2]))  # one row, for time
    assert (alone - together[1:2]).abs().max() < 1e-5
    assert (together - tgt).abs().mean() > 0.01 and F.mse_loss(together[0], together[1]) > 0
