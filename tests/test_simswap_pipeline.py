"""SimSwap through `bench run` with random-weight files in the official formats, and the two published
layouts of the pickled ArcFace file opened through the weights layer."""

import dataclasses

import numpy as np
import pytest
import torch
from conftest import complete_run
from PIL import Image
from simswap_inputs import seeded_state, seeded_weights, write_arcface_file

from swapbench import cli, weights
from swapbench.methods.simswap.method import ARCFACE_FILE, GENERATOR_FILES, PARSER_FILE, SimSwap


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(weights.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(weights.platformdirs, "user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))


def write_files(folder, crop: int = 224, layout: str = "2023") -> None:
    state = seeded_weights(crop)
    torch.save(state[GENERATOR_FILES[crop].name], folder / GENERATOR_FILES[crop].filename)
    torch.save(state[PARSER_FILE.name], folder / PARSER_FILE.filename)
    write_arcface_file(folder / ARCFACE_FILE.filename, state[ARCFACE_FILE.name], layout)


@pytest.mark.parametrize("layout", ["2020", "2023"])
def test_both_arcface_layouts_load_without_their_code(tmp_path, isolated_cache, layout):
    path = tmp_path / ARCFACE_FILE.filename
    write_arcface_file(path, seeded_state("arcface"), layout)
    flat = weights.load(ARCFACE_FILE, path)
    ref = seeded_state("arcface")
    assert flat.keys() == ref.keys() and all(torch.equal(flat[k], ref[k]) for k in ref)
    m = SimSwap(SimSwap.Options(use_mask=False))
    m.load_weights({GENERATOR_FILES[224].name: seeded_state("224"), ARCFACE_FILE.name: flat})
    assert torch.equal(m.arcface.fc.weight, ref["fc.weight"])


def test_simswap_runs_end_to_end_with_official_format_files(tmp_path, isolated_cache, capsys, monkeypatch):
    folder = tmp_path / "weights"
    folder.mkdir()
    write_files(folder)
    # in process: the random generator cannot match the declared sha256 of the real one
    monkeypatch.setattr(SimSwap, "weights", tuple(dataclasses.replace(w, sha256=None) for w in SimSwap.weights))
    store = tmp_path / "r.sqlite"
    rc = cli.main(["run", "--no-progress", "--method", "simswap", "--subset", "2", "--batch-size", "2",
                   "--weights-dir", str(folder), "--set", "metrics={identity: dlib_resnet_v1}", "--store", str(store)])
    out, err = capsys.readouterr()
    assert rc == 0 and "| simswap |" in out, out + err
    swaps, files, _ = complete_run(store, "simswap")
    assert len(swaps) == 2 and all(swaps.values())
    for pair_id in swaps:
        raw = np.asarray(Image.open(files / "raw" / f"{pair_id}.png"))
        assert raw.shape == (224, 224, 3) and raw.std() > 5  # SimSwap's own crop, generated
