"""E4S as a swapbench method: options and stages, weights checks, per-pair noise, determinism, end to end.

Random weights in the official checkpoint layout (swapbench.methods.e4s.random_weights) with the reduced
RGI (`e4s.model=tiny`: the config of the parity test) keep these tests fast; the BiSeNet parser is full
size. Reenactment and restoration are off here (their modules have their own tests).
"""

import pytest
import torch
from conftest import bench, complete_run
from faces import smooth_batch

from swapbench.faces.parsing import WEIGHTS as PARSER_WEIGHTS
from swapbench.methods import get
from swapbench.methods.base import FaceBatch
from swapbench.methods.e4s import E4S, E4S_WEIGHTS
from swapbench.methods.e4s import method as e4s_method
from swapbench.methods.e4s import random_weights as rw
from swapbench.methods.e4s.rgi import draw_noise, one_hot
from swapbench.weights import WeightsError

OFF = {"reenact": False, "restore": False, "model": "tiny"}


@pytest.fixture(scope="module")
def state():
    return rw.method_state("tiny", seed=0)


@pytest.fixture(scope="module")
def e4s(state):
    m = E4S(**OFF)
    m.load_weights(state)
    return m


def test_registry_options_and_declared_files():
    assert get("e4s") is E4S and E4S.crop == "ffhq" and E4S.size == 1024
    assert E4S.Options() == E4S.Options(reenact=True, restore=True, model="full")  # official defaults
    assert E4S.weights_for(E4S.Options(**OFF)) == (E4S_WEIGHTS, PARSER_WEIGHTS)
    assert E4S_WEIGHTS.url.startswith("gdrive://") and E4S_WEIGHTS in E4S.weights


def test_unavailable_or_inconsistent_stages_are_refused(monkeypatch):
    monkeypatch.setattr(e4s_method, "_stage", lambda name: None)
    with pytest.raises(ValueError, match=r"reenact stage .* not available.*e4s.reenact=false"):
        E4S(restore=False)
    with pytest.raises(ValueError, match="restore stage"):
        E4S(reenact=False)
    monkeypatch.undo()
    if e4s_method._stage("reenact") is not None:
        with pytest.raises(ValueError, match="needs e4s.reenact=true"):
            E4S(reenact=False, restore=True)


def test_wrong_checkpoints_are_refused_before_any_work(state):
    m = E4S(**OFF)
    bad = dict(state)
    bad[E4S_WEIGHTS.name] = {"state_dict_ema": {}}
    with pytest.raises(WeightsError, match="iteration_300000.pt.*gdrive://"):
        m.load_weights(bad)
    full = rw.method_state("tiny", seed=0)[E4S_WEIGHTS.name]
    bad[E4S_WEIGHTS.name] = dict(full, state_dict={k: v for k, v in list(full["state_dict"].items())[:-1]})
    with pytest.raises(WeightsError, match="does not fit the E4S RGI model"):
        m.load_weights(bad)
    assert not m.weights_loaded


def test_swaps_are_per_pair_and_independent_of_the_batch(e4s):
    src, tgt = smooth_batch(1, n=3, size=512), smooth_batch(2, n=3, size=512)
    ids = ["p0", "p1", "p2"]
    src, tgt = FaceBatch(src.image, src.landmarks, ids), FaceBatch(tgt.image, tgt.landmarks, ids)
    together = e4s.swap(src, tgt)
    assert together.shape == tgt.image.shape
    alone = torch.cat([e4s.swap(src.row(i), tgt.row(i)) for i in range(3)])
    assert torch.equal(together, alone)



def test_noise_comes_from_the_run_seed_and_the_pair(e4s):
    def noise(seed, pair):
        e4s.seed = seed
        try:
            return draw_noise(e4s.pair_generator(pair), e4s.rgi.G.num_layers)
        finally:
            e4s.seed = 0

    assert all(torch.equal(a, b) for a, b in zip(noise(0, "p0"), noise(0, "p0")))
    assert not torch.equal(noise(0, "p0")[0], noise(1, "p0")[0]) and not torch.equal(noise(0, "p0")[0], noise(0, "p1")[0])
    labels = rw.parity_labels(size=64, n=1)
    codes = e4s.rgi.style_codes(torch.randn(1, 12, e4s.rgi.encoder.style_dim))
    with torch.no_grad():
        a, b = (e4s.rgi.generate(codes, one_hot(labels), noise(s, "p0")) for s in (0, 1))
    assert (a - b).abs().max() > 1e-3  # the noise reaches the image


def test_e4s_runs_end_to_end_with_official_format_files(tmp_path, state):
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(state[E4S_WEIGHTS.name], weights / E4S_WEIGHTS.filename)
    torch.save(state[PARSER_WEIGHTS.name], weights / PARSER_WEIGHTS.filename)
    store = tmp_path / "r.sqlite"
    proc = bench("run", "--no-progress", "--method", "e4s", "--subset", "2", "--batch-size", "2",
                 "--weights-dir", str(weights), "--set", "metrics={identity: dlib_resnet_v1}",
                 "--set", "e4s.reenact=false", "--set", "e4s.restore=false", "--set", "e4s.model=tiny", store=store)
    assert "| e4s |" in proc.stdout, proc.stdout
    swaps, _, _ = complete_run(store, "e4s")
    assert len(swaps) == 2 and all(swaps.values()), swaps


def test_preset_config_resolves():
    from pathlib import Path

    from swapbench.bench import config

    cfg = config.load([Path(__file__).parent.parent / "configs" / "e4s_ffhq.yaml"], config.parse_set(["e4s.restore=false"]))
    assert cfg["protocol"] == "ffhq" and cfg["methods"] == ["e4s"]
    assert cfg["e4s"] == {"reenact": True, "restore": False, "model": "full"}
    assert cfg["metrics"]["identity"] == "cosface_sphere20_casia"
