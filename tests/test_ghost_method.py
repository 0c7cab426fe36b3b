"""Ghost as the engine uses it: weight files resolved and loaded from disk, predict_step on real faces."""

from __future__ import annotations

import dlib
import face_recognition_models
import numpy as np
import pytest
import torch
from ghost_inputs import face_crops

from swapbench import weights
from swapbench.bench.catalogue import weight_files
from swapbench.methods import METHODS
from swapbench.methods.ghost import (
    ARCFACE_FILE,
    GENERATOR_FILES,
    Ghost,
    Ghost1Block,
    Ghost3Blocks,
)
from swapbench.methods.ghost.aei_net import AEINet
from swapbench.weights import WeightsError


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """Keep a user's real weights (environment variable, cache directory) out of the search path."""
    monkeypatch.delenv(weights.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(weights.platformdirs, "user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))


def _landmarks(crops: np.ndarray) -> torch.Tensor:
    """dlib 68-point landmarks of each crop, the face box being the whole crop."""
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    out = []
    for c in crops:
        shape = predictor(c, dlib.rectangle(0, 0, c.shape[1] - 1, c.shape[0] - 1))
        out.append([(p.x, p.y) for p in shape.parts()])
    return torch.tensor(out, dtype=torch.float32)


def test_registry_and_variants():
    assert METHODS.get("ghost") is Ghost and METHODS.get("ghost_1block") is Ghost1Block
    assert METHODS.get("ghost_3blocks") is Ghost3Blocks
    assert Ghost.weights == (GENERATOR_FILES[2], ARCFACE_FILE)
    assert Ghost().convention == "ghost_224"
    one = Ghost(num_blocks=1)
    assert (one.name, one.weights[0].filename, one.hparams["num_blocks"]) == ("ghost_1block", "G_unet_1block.pth", 1)
    assert Ghost3Blocks().weights[0].filename == "G_unet_3blocks.pth"
    files = weight_files()  # users derived from the classes that declare each file
    assert files[ARCFACE_FILE.name] == (ARCFACE_FILE, ["ghost", "ghost_1block", "ghost_3blocks"])
    assert files[GENERATOR_FILES[1].name][1] == ["ghost_1block"]
    with pytest.raises(ValueError, match="num_blocks"):
        Ghost(num_blocks=4)


def test_files_on_disk_to_swapped_faces(ghost_weights_dir, isolated_cache):
    method = Ghost()
    paths = weights.resolve(method.weights, weights_dir=ghost_weights_dir)
    assert {p.name for p in paths.values()} == {"G_unet_2blocks.pth", "backbone.pth"}
    method.load_weights({f.name: weights.load(f, paths[f.name]) for f in method.weights})

    crops = face_crops()
    images = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    marks = _landmarks(crops)
    batch = {"source": images, "target": images.flip(0), "source_landmarks": marks,
             "target_landmarks": marks.flip(0), "pair_id": ["astronaut->grace", "grace->astronaut"]}
    out = method.predict_step(batch)

    assert out["pair_id"] == batch["pair_id"] and out["error"] == [None, None]
    y = out["image"]
    assert y.shape == (2, 3, 224, 224) and y.dtype == torch.float32
    assert 0 <= y.min() and y.max() <= 1 and y.std() > 0.05
    assert (y - batch["target"]).abs().mean(dim=(1, 2, 3)).min() > 0.05  # generated, not passed through
    # These are the pairs of the parity golden: the round trip through files gives the official result.
    with np.load("tests/golden/ghost_parity.npz") as golden:
        ref = torch.from_numpy(golden["final_pool"])
    assert (torch.nn.functional.avg_pool2d(y, 7) - ref).abs().mean() <= 1 / 255


def test_missing_file_error_names_file_url_and_place(tmp_path, isolated_cache):
    with pytest.raises(WeightsError) as err:
        weights.resolve(Ghost().weights, weights_dir=tmp_path)
    msg = str(err.value)
    assert "G_unet_2blocks.pth" in msg and "backbone.pth" in msg
    assert "https://github.com/sberbank-ai/sber-swap/releases/download/sber-swap-v2.0/G_unet_2blocks.pth" in msg
    assert str(tmp_path) in msg


def test_mismatched_or_corrupt_state_dicts_name_the_file():
    method = Ghost1Block()
    with torch.device("meta"):  # layouts only: the checks fail before any value is read
        three = AEINet(3).state_dict()
    # Real tensors (zeros) where a check must reach the values: the fresh networks are uninitialised.
    arc = {k: torch.zeros_like(v) for k, v in method.arcface.state_dict().items()}
    gen = {k: torch.zeros_like(v) for k, v in method.generator.state_dict().items()}
    g = GENERATOR_FILES[1].name
    with pytest.raises(WeightsError, match=r"G_unet_1block\.pth .*unexpected keys.*layout is that of G_unet_3blocks"):
        method.load_weights({g: three, ARCFACE_FILE.name: arc})
    with pytest.raises(WeightsError, match=r"G_unet_1block\.pth .*is not a state dict"):
        method.load_weights({g: [1, 2], ARCFACE_FILE.name: arc})
    with pytest.raises(WeightsError, match=r"backbone\.pth .*missing keys"):
        method.load_weights({g: gen, ARCFACE_FILE.name: {}})
    with pytest.raises(WeightsError, match=r"no state dict was given for backbone\.pth"):
        method.load_weights({g: gen})
    corrupt = {k: v.clone() for k, v in arc.items()}
    corrupt["fc.weight"][0, 0] = float("nan")
    with pytest.raises(WeightsError, match=r"backbone\.pth .*NaN or infinite values \(e\.g\. fc\.weight\)"):
        method.load_weights({g: gen, ARCFACE_FILE.name: corrupt})


def test_swap_before_load_weights_fails_clearly():
    faces = torch.rand(1, 3, 224, 224)
    with pytest.raises(RuntimeError, match="load_weights"):
        Ghost1Block().identity(faces)
