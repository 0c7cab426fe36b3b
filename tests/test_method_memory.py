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
