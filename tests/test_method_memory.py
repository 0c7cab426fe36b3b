"""benchmarks/method_memory.py: the GPU memory script's arguments are checked before any model is built."""

import sys

import pytest
import torch
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import method_memory  # noqa: E402


def test_arguments_are_checked_before_any_work(capsys):
    args = method_memory.parse_args(["--device", "cpu", "--methods", "ghost", "reface", "--batch-sizes", "1", "4"])
    assert args.methods == ["ghost", "reface"] and args.batch_sizes == [1, 4] and args.precision == "fp16"
    with pytest.raises(SystemExit):
        method_memory.parse_args(["--device", "cpu", "--methods", "nosuch"])
    assert "unknown method 'nosuch'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        method_memory.parse_args(["--device", "cpu", "--batch-sizes", "0"])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            method_memory.parse_args(["--device", "cuda"])
        assert "no CUDA device" in capsys.readouterr().err


def test_a_method_is_built_with_random_weights_and_its_options():
    m = method_memory.build("reface", {"reface": {"tiny": True}}, steps=2, device=torch.device("cpu"))
    assert m.options.steps == 2 and m.options.tiny and m.weights_loaded
    assert all(torch.isfinite(p).all() for p in m.parameters())


def test_face_adapter_gets_its_stock_modules_and_swaps(monkeypatch):
    """Face-Adapter's diffusers parts are built from configs (tiny here) and handed over as load_weights does."""
    from face_adapter_inputs import TINY_CLIP, TINY_CONTROLNET, TINY_UNET, TINY_VAE

    monkeypatch.setattr(method_memory, "FACE_ADAPTER_STOCK", {"unet": TINY_UNET, "controlnet": TINY_CONTROLNET,
                                                               "vae": TINY_VAE, "clip": TINY_CLIP, "bfm_vertices": 100})
    m = method_memory.build("face_adapter", {"face_adapter": {"tiny": True}}, steps=1, device=torch.device("cpu"))
    assert m.weights_loaded and m.options.steps == 1 and m.unet.config.cross_attention_dim == 64
    assert m.empty_prompt.shape == (1, m.arch.max_length, m.arch.token_width)
    row = method_memory.measure(m, 1, torch.device("cpu"), "fp16")
    assert row["shape"] == (1, 3, 512, 512) and row["s_per_swap"] > 0 and row["peak_rss_mb"] > 0
