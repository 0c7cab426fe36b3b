"""BlendSwap as the engine uses it: declared files, strict checks of blendswap.pth, batch independence,
options, and a `bench run` with a random file in the official format (the golden's narrow network)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from blendswap_inputs import NarrowBlendSwap, loaded, narrow_state

from swapbench.bench.catalogue import weight_files
from swapbench.methods import get
from swapbench.methods.base import FaceBatch
from swapbench.methods.blendswap import BLENDFACE_FILE, BLENDSWAP_FILE, BlendSwap
from swapbench.faces.iresnet import iresnet18
from swapbench.weights import FILES, WeightsError


@pytest.fixture(scope="module")
def blendswap():
    return loaded()


def _pairs(n: int, seed: int = 0) -> tuple[FaceBatch, FaceBatch]:
    g = torch.Generator().manual_seed(seed)
    src = torch.nn.functional.interpolate(torch.rand(n, 3, 14, 14, generator=g), size=(112, 112), mode="bilinear")
    tgt = torch.nn.functional.interpolate(torch.rand(n, 3, 16, 16, generator=g), size=(256, 256), mode="bilinear")
    ids = [f"p{i}" for i in range(n)]
    return (FaceBatch(src, torch.zeros(n, 68, 2), ids), FaceBatch(tgt, torch.zeros(n, 68, 2), ids))


def test_registry_declaration_and_conventions():
    assert get("blendswap") is BlendSwap
    assert (BlendSwap.crop, BlendSwap.size, BlendSwap.source_crop, BlendSwap.source_size) == ("ffhq", 256, "arcface", 112)
    m = BlendSwap()  # full size, uninitialised (no memory is written)
    assert m.convention == "ffhq_256" and m.source_convention == "arcface_112" and m.publishable
    assert not NarrowBlendSwap().publishable  # the reduced test network never makes a published row
    assert BlendSwap.weights == (BLENDSWAP_FILE,)
    assert weight_files()[BLENDSWAP_FILE.name] == (BLENDSWAP_FILE, ["blendswap"])
    assert FILES.get(BLENDFACE_FILE.name) is BLENDFACE_FILE
    assert "1ssTKnNVGomtrtPl57EOGzKNz62bh6mSs" in BLENDSWAP_FILE.url and "CC BY-NC-SA 4.0" in BLENDSWAP_FILE.licence
    from swapbench.weights.download import source_kind

    assert source_kind(BLENDSWAP_FILE) == source_kind(BLENDFACE_FILE) == "gdrive"  # fetched with gdown


def test_blendswap_pth_is_checked_strictly_before_loading():
    wf, good = BLENDSWAP_FILE, narrow_state()
    m = NarrowBlendSwap()
    with pytest.raises(WeightsError, match=r"no state dict was given for blendswap\.pth"):
        m.load_weights({})
    with pytest.raises(WeightsError, match=r"blendswap\.pth .*is not a state dict but a list"):
        m.load_weights({wf.name: [1]})
    # an unused online copy missing still fails: the official load is strict
    no_online = {k: v for k, v in good.items() if not k.startswith("G.model.layer_0.")}
    with pytest.raises(WeightsError, match=r"not the BlendSwap checkpoint: \d+ missing keys \(e\.g\. G\.model\.layer_0"):
        m.load_weights({wf.name: no_online})
    extra = {**good, "G_ema.extra": torch.zeros(1)}
    with pytest.raises(WeightsError, match=r"1 unexpected keys \(e\.g\. G_ema\.extra\).*drive\.google\.com"):
        m.load_weights({wf.name: extra})
    bad = dict(good)
    bad["mask_head_ema.weight"] = torch.full_like(good["mask_head_ema.weight"], float("nan"))
    with pytest.raises(WeightsError, match=r"mask_head.*NaN or infinite"):
        m.load_weights({wf.name: bad})
    assert not m.weights_loaded
    with pytest.raises(RuntimeError, match="load_weights"):
        m.swap(*_pairs(1))
    # a NaN in an unused online copy does not matter
    bad = dict(good)
    bad["mask_head.weight"] = torch.full_like(good["mask_head.weight"], float("nan"))
    m.load_weights({wf.name: bad})
    assert torch.equal(m.mask_head.weight, good["mask_head_ema.weight"])  # the EMA copy is the one used


@pytest.fixture(scope="module")
def three(blendswap):
    src, tgt = _pairs(3)
    return src, tgt, blendswap.swap(src, tgt)


def test_swaps_do_not_depend_on_the_batch_and_are_truncated(blendswap, three):
    src, tgt, together = three
    alone = torch.cat([blendswap.swap(src.row(i), tgt.row(i)) for i in range(3)])
    assert together.shape == (3, 3, 256, 256) and torch.equal(together, alone)
    assert torch.equal(together * 255, (together * 255).round())  # whole 8-bit levels (truncated)
    truncating, blendswap.options = blendswap.options, BlendSwap.Options(truncate=False)
    try:
        untruncated = blendswap.swap(src.row(0), tgt.row(0))
    finally:
        blendswap.options = truncating
    assert torch.equal(torch.floor(untruncated * 255) / 255, together[:1])
    assert 0 < float((untruncated - together[:1]).mean()) < 1 / 255
    with pytest.raises(ValueError, match="arcface_112 sources and ffhq_256 targets"):
        blendswap.swap(tgt, tgt)


def test_the_real_file_check_compares_with_the_official_example_files(blendswap, three, tmp_path):
    """tests/blendswap_real.py on an example triple written like the official one (PNG inputs, truncated output)."""
    import numpy as np
    from blendswap_real import level_difference, swap_example
    from PIL import Image

    src, tgt, together = three  # swap() rounds its inputs to 8 bits: the PNGs give the same swap
    png = lambda t, name: Image.fromarray((t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(tmp_path / name)  # noqa: E731
    png(src.image[0], "source.png")
    png(tgt.image[0], "target.png")
    png(together[0], "output.png")
    ours = swap_example(blendswap, tmp_path)
    assert level_difference(ours, tmp_path / "output.png") == {"max": 0.0, "mean": 0.0, "equal": 1.0}
    png(tgt.image[0], "output.png")  # the target passed through is not the swap
    assert level_difference(ours, tmp_path / "output.png")["equal"] < 0.9


def test_options_and_preset():
    from swapbench.bench import config

    with pytest.raises(ValueError, match="blendswap.precision must be one of fp32, fp16, bf16"):
        BlendSwap.from_config({"engine": {"seed": 0}, "blendswap": {"precision": "int8"}})
    cfg = config.load([Path(__file__).parent.parent / "configs" / "blendswap_ffhq.yaml"], config.parse_set([]))
    assert cfg["methods"] == ["blendswap"] and cfg["protocol"] == "ffhq"
    assert cfg["blendswap"] == {"truncate": True, "precision": "fp32"}


def test_a_random_file_runs_through_the_engine(tmp_path, monkeypatch, capsys):
    """bench run with a blendswap.pth in the official format (the narrow test network) to an unpublishable row."""
    import numpy as np
    from conftest import complete_run
    from PIL import Image

    from swapbench import cli

    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(narrow_state(), weights / BLENDSWAP_FILE.filename)
    monkeypatch.setattr(BlendSwap, "channels", NarrowBlendSwap.channels)
    monkeypatch.setattr(BlendSwap, "identity_net", staticmethod(iresnet18))
    store = tmp_path / "r.sqlite"
    rc = cli.main(["run", "--no-progress", "--method", "blendswap", "--subset", "2", "--batch-size", "2",
                   "--weights-dir", str(weights), "--set", "metrics={identity: dlib_resnet_v1}", "--store", str(store)])
    out, err = capsys.readouterr()
    assert rc == 0 and "| blendswap |" in out, out + err
    swaps, files, publishable = complete_run(store, "blendswap")
    assert not publishable and len(swaps) == 2 and all(swaps.values()), swaps
    for pair_id in swaps:
        # the method's own crop is the scoring crop (ffhq_256): nothing to carry, no separate raw file
        assert np.asarray(Image.open(files / f"{pair_id}.png")).shape == (256, 256, 3)
        assert not (files / "raw" / f"{pair_id}.png").exists()
