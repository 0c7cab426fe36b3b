"""The structure a new method relies on: one registry type, declared weight formats opened by one
loader (pickled objects refused), typed method options, and third-party methods through entry points."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from conftest import REPO, bench

from swapbench import weights
from swapbench.methods import METHODS
from swapbench.methods.base import SwapMethod, parse_options
from swapbench.registry import Registry
from swapbench.weights import WeightFile, WeightsError


class Thing:
    name = "thing"


class Other:
    name = "thing"


def test_registry_one_rule_for_duplicates_and_lazy_entries():
    reg = Registry("widget")
    reg.add("a", "tests.nowhere:Missing")  # lazy: nothing is imported to list names
    reg.register(Thing)
    reg.register(Thing)  # the same target again: a no-op
    assert reg.names() == ["a", "thing"] and reg.get("thing") is Thing
    with pytest.raises(ValueError, match="widget 'thing' registered twice"):
        reg.register(Other)
    reg.add("t2", f"{__name__}:Thing")
    reg.add("t2", Thing)  # the object a lazy entry names is the same target
    with pytest.raises(ValueError, match="could not be loaded from tests.nowhere:Missing"):
        reg.get("a")
    with pytest.raises(KeyError, match="unknown widget 'b'; known: a, t2, thing"):
        reg.get("b")


def test_listing_methods_imports_no_model_code():
    code = ("import sys; from swapbench.methods import METHODS; names = METHODS.names(); "
            "print(names); print(any(m.startswith('swapbench.methods.ghost.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert "ghost" in out[0] and out[1] == "False"


def test_third_party_method_through_entry_point(tmp_path):
    # A tiny package "installed" on the path: its dist-info declares a swapbench.methods entry point.
    (tmp_path / "tinyswap").mkdir()
    (tmp_path / "tinyswap" / "__init__.py").write_text(textwrap.dedent('''
        from swapbench.methods.base import SwapMethod

        class Mirror(SwapMethod):
            name = "mirror"
            description = "the target, mirrored (a plugin for tests)"

            def swap(self, source, target):
                return target.image.flip(-1)
    '''))
    dist = tmp_path / "tinyswap-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyswap\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[swapbench.methods]\nmirror = tinyswap:Mirror\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "swapbench.cli", "list", "methods", "--format", "json"],
                         capture_output=True, text=True, env=env, cwd=REPO, check=True).stdout
    rows = {r["method"]: r for r in json.loads(out)}
    assert rows["mirror"]["description"].startswith("the target, mirrored")


class WithOptions(SwapMethod):
    name = "with_options"

    @dataclass(frozen=True)
    class Options:
        steps: int = 50
        guidance: float = 3.5
        refine: bool = False
        mask: str | None = None


def test_method_options_are_typed_and_checked():
    opts = parse_options(WithOptions, {"steps": 10, "guidance": 2, "mask": "parser"})
    assert opts == WithOptions.Options(10, 2.0, False, "parser")  # an int is a valid float
    with pytest.raises(KeyError, match="unknown option with_options.stpes .*options: steps, guidance, refine, mask"):
        parse_options(WithOptions, {"stpes": 3})
    with pytest.raises(TypeError, match="option with_options.steps must be int, got '10'"):
        parse_options(WithOptions, {"steps": "10"})
    with pytest.raises(TypeError, match="option with_options.refine must be bool"):
        parse_options(WithOptions, {"refine": 1})


def test_pair_generator_depends_on_seed_and_pair_only():
    m = WithOptions()
    a = torch.randn(4, generator=m.pair_generator("p1"))
    assert torch.equal(a, torch.randn(4, generator=m.pair_generator("p1")))
    assert not torch.equal(a, torch.randn(4, generator=m.pair_generator("p2")))
    m.seed = 1
    assert not torch.equal(a, torch.randn(4, generator=m.pair_generator("p1")))


def card(fmt, filename):
    return WeightFile(name=f"test/{filename}", filename=filename, url="https://example.org/" + filename,
                      licence="test", format=fmt)


class Payload:
    """Anything that is not a tensor: unpickling it would run code of the file's choosing."""


@pytest.mark.parametrize("fmt", ["state_dict", "checkpoint"])
def test_loaders_that_unpickle_refuse_pickled_objects(tmp_path, fmt):
    path = tmp_path / "bad.pth"
    torch.save({"weight": torch.zeros(2), "extra": Payload()}, path)
    with pytest.raises(WeightsError) as err:
        opened = weights.load(card(fmt, "bad.pth"), path)
        opened.state()  # a checkpoint is opened by the method that converts it
    message = str(err.value)
    assert "bad.pth" in message and "refused" in message and "Payload" in message
    assert "weights_only=False" not in message and "https://example.org/bad.pth" in message


def test_each_format_opens_with_its_loader(tmp_path):
    from safetensors.torch import save_file
    from scipy.io import savemat

    torch.save({"w": torch.ones(2)}, tmp_path / "a.pth")
    save_file({"w": torch.ones(2)}, str(tmp_path / "a.safetensors"))
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(tmp_path / "a.ts"))
    savemat(str(tmp_path / "a.mat"), {"lm": np.eye(3)})
    (tmp_path / "folder" / "unet").mkdir(parents=True)
    (tmp_path / "folder" / "unet" / "config.json").write_text("{}")
    assert torch.equal(weights.load(card("state_dict", "a.pth"), tmp_path / "a.pth")["w"], torch.ones(2))
    assert torch.equal(weights.load(card("safetensors", "a.safetensors"), tmp_path / "a.safetensors")["w"], torch.ones(2))
    assert isinstance(weights.load(card("torchscript", "a.ts"), tmp_path / "a.ts"), torch.jit.ScriptModule)
    assert np.array_equal(weights.load(card("mat", "a.mat"), tmp_path / "a.mat")["lm"], np.eye(3))
    assert weights.load(card("folder", "folder"), tmp_path / "folder") == tmp_path / "folder"
    # truncated or foreign files are named, not crashed on
    (tmp_path / "cut.pth").write_bytes((tmp_path / "a.pth").read_bytes()[:40])
    with pytest.raises(WeightsError, match="cut.pth .*not a readable PyTorch file"):
        weights.load(card("state_dict", "cut.pth"), tmp_path / "cut.pth")
    with pytest.raises(WeightsError, match="a.pth .*not an ONNX model"):
        weights.load(card("onnx", "a.pth"), tmp_path / "a.pth")
    with pytest.raises(WeightsError, match="a.pth .*not a readable safetensors file"):
        weights.load(card("safetensors", "a.pth"), tmp_path / "a.pth")


def test_folder_weights_are_found_and_hashed_by_their_files(tmp_path):
    f = card("folder", "sd15")
    (tmp_path / "sd15" / "vae").mkdir(parents=True)
    (tmp_path / "sd15" / "vae" / "config.json").write_text('{"a": 1}')
    (tmp_path / "sd15" / "model_index.json").write_text("{}")
    path = weights.resolve([f], tmp_path)[f.name]
    first = weights.sha256_of(path)
    (tmp_path / "sd15" / "vae" / "config.json").write_text('{"a": 2}')
    assert weights.sha256_of(path) != first  # any file's content changes the folder's hash
    with pytest.raises(WeightsError, match="missing sd15"):
        weights.resolve([f], tmp_path / "elsewhere")


def test_cached_conversion_runs_once(tmp_path, monkeypatch):
    monkeypatch.setattr(weights.platformdirs, "user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))
    calls = []

    def convert(path):
        calls.append(path)
        return {"w": torch.arange(3.0)}

    a = weights.cached_conversion(tmp_path / "src.ckpt", "ab" * 32, "test-v1", convert)
    b = weights.cached_conversion(tmp_path / "src.ckpt", "ab" * 32, "test-v1", convert)
    assert len(calls) == 1 and torch.equal(a["w"], b["w"])


def test_used_by_is_derived_from_declarations():
    from swapbench.bench.catalogue import weight_files
    from swapbench.faces import parsing

    files = weight_files()
    users = files[parsing.WEIGHTS.name][1]
    assert {"arcface_irse50_reface", "arcface_irse50_reface_ffpp", "face_parsing"} <= set(users)
    assert "reface" not in users or "reface" in METHODS.names()  # no user that does not exist
    declared = {n for n in METHODS.names() + ["face_parsing"]}
    from swapbench import metrics
    from swapbench.faces import detect
    declared |= set(metrics.BACKENDS.names()) | set(detect.DETECTORS.names())
    assert all(set(u) <= declared for _, u in files.values())


def test_checkpoint_conversion_is_cached_by_content(tmp_path, monkeypatch):
    monkeypatch.setattr(weights.platformdirs, "user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))
    f = card("checkpoint", "last.ckpt")
    torch.save({"state_dict": {"model.w": torch.ones(2)}, "epoch": 3}, tmp_path / "last.ckpt")
    calls = []

    def convert(state):
        calls.append(1)
        return {"w": state["state_dict"]["model.w"] * 2}

    first = weights.load(f, tmp_path / "last.ckpt").converted("test-v1", convert)
    again = weights.load(f, tmp_path / "last.ckpt").converted("test-v1", convert)
    assert len(calls) == 1 and torch.equal(first["w"], again["w"]) and torch.equal(again["w"], torch.full((2,), 2.0))


def test_methods_get_crop_origin_and_their_notes_are_stored(tmp_path):
    # A plugin method checks that each crop is its image warped by the given matrix (what a method needs
    # to carry a data set's own annotation into the crop) and notes every pair whose target is sample 0.
    (tmp_path / "noteswap").mkdir()
    (tmp_path / "noteswap" / "__init__.py").write_text(textwrap.dedent('''
        import numpy as np
        from swapbench.datasets.images import load_image
        from swapbench.faces import warp
        from swapbench.methods.base import SwapMethod

        class Noting(SwapMethod):
            name = "noting"

            def swap(self, source, target):
                for face in (source, target):
                    assert face.matrix.shape == (len(face), 2, 3) and len(face.location) == len(face)
                    for i, where in enumerate(face.location):
                        crop = warp.align_image(load_image(where), face.matrix[i].numpy(), self.size)
                        assert np.array_equal(crop, warp.to_uint8(face.image[i:i + 1])[0]), where
                for pid in target.pair_id:
                    self.note(pid, "target seen")
                return target.image
    '''))
    dist = tmp_path / "noteswap-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: noteswap\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[swapbench.methods]\nnoting = noteswap:Noting\n")
    store = tmp_path / "s.sqlite"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = bench("run", "--method", "noting", "--subset", "3", "--no-progress", "--batch-size", "2",
                "--set", "metrics={identity: dlib_resnet_v1}", store=store, env=env)
    assert "noting: 3/3 pairs swapped, 0 failed" in out.stderr
    assert "note: target seen ×3" in out.stderr
    db = sqlite3.connect(store)
    assert db.execute("SELECT count(*) FROM failures WHERE stage='note' AND reason='target seen'").fetchone() == (3,)
    assert "Notes: target seen ×3" in out.stdout  # the run's leaderboard table, notes apart from failures
    assert "Failures by stage" not in out.stdout
