"""InfoSwap as a swapbench method: declared files, weight checks, determinism, end to end.

Random weights in the official layouts (swapbench.methods.infoswap.random_weights) at channel_divisor=4
(the released networks' unit counts and spatial sizes, 1/16 of the work) keep these tests fast.
"""

import pytest
import torch
from conftest import bench, complete_run
from faces import smooth_batch

from swapbench.methods import get
from swapbench.methods.base import FaceBatch
from swapbench.methods.infoswap import InfoSwap, model_files
from swapbench.methods.infoswap import random_weights as rw
from swapbench.methods.infoswap.method import ENCODER_FILE, READOUT_FILES, draw_noise
from swapbench.weights import WeightsError

DIV = 4


def _batch(seed: int, ids: list[str]) -> FaceBatch:
    b = smooth_batch(seed, len(ids), 512)
    b.pair_id = list(ids)
    return b


@pytest.fixture(scope="module")
def state():
    return rw.method_state("smooth", 0, DIV)


@pytest.fixture(scope="module")
def infoswap(state):
    m = InfoSwap(channel_divisor=DIV)
    m.load_weights(state)
    return m


def test_registry_convention_and_declared_files():
    assert get("infoswap") is InfoSwap
    m = InfoSwap()
    assert m.convention == "arcface85_512" and m.source_convention == "arcface85_512"
    assert [w.filename for w in m.weights[:4]] == [
        "InfoSwap/checkpoints_512/w_kernel_smooth/ckpt_ks_G.pth", "InfoSwap/checkpoints_512/w_kernel_smooth/ckpt_ks_E.pth",
        "InfoSwap/checkpoints_512/w_kernel_smooth/ckpt_ks_I.pth", "InfoSwap/modules/model_128_ir_se50.pth"]
    assert [w.filename for w in InfoSwap(ib_mode="no_smooth").weights[:3]] == [
        f"InfoSwap/checkpoints_512/wo_kernel_smooth/ckpt_{p}.pth" for p in "GEI"]
    gated = [*model_files("smooth").values(), *model_files("no_smooth").values(), ENCODER_FILE]
    assert all(w.manual and "agreement" in w.note for w in gated)
    assert "sypi" in ENCODER_FILE.note and ENCODER_FILE.url.startswith("https://pan.baidu.com/")
    assert len(READOUT_FILES) == 11 and not any(w.manual for w in READOUT_FILES)
    assert all("0484ef5fcb35bf811f2c3ec52ecf77ccade822db/modules/weights128/" in w.url for w in READOUT_FILES)
    assert [w.sha256 is not None for w in READOUT_FILES] == [False] * 4 + [True] * 7
    with pytest.raises(ValueError, match="ib_mode must be one of smooth, no_smooth"):
        InfoSwap(ib_mode="soft")


def test_weight_files_are_checked_before_loading(state):
    m = InfoSwap(channel_divisor=DIV)
    smooth_i, plain_i = model_files("smooth")["I"], model_files("no_smooth")["I"]
    no_smooth_state = rw.model_states("no_smooth", 0, DIV)["I"]
    with pytest.raises(WeightsError, match=r"ckpt_ks_I.pth.*is the no_smooth bottleneck.*infoswap.ib_mode=no_smooth"):
        m.load_weights({**state, smooth_i.name: no_smooth_state})
    plain = InfoSwap(ib_mode="no_smooth", channel_divisor=DIV)
    plain_state = rw.method_state("no_smooth", 0, DIV)
    with pytest.raises(WeightsError, match=r"ckpt_I.pth.*is the smooth bottleneck.*infoswap.ib_mode=smooth"):
        plain.load_weights({**plain_state, plain_i.name: state[smooth_i.name]})
    g = model_files("smooth")["G"]
    with pytest.raises(WeightsError, match=r"ckpt_ks_G.pth.*missing keys.*deconv.weight"):
        m.load_weights({**state, g.name: {k: v for k, v in state[g.name].items() if k != "deconv.weight"}})
    bad = dict(state[READOUT_FILES[3].name], m=torch.zeros(3))
    with pytest.raises(WeightsError, match=r"readout_layer3.pth.*encoder map 3.*'m' has shape \(3,\)"):
        m.load_weights({**state, READOUT_FILES[3].name: bad})
    with pytest.raises(WeightsError, match=r"no contents were given for .*model_128_ir_se50.pth"):
        m.load_weights({k: v for k, v in state.items() if k != ENCODER_FILE.name})
    with pytest.raises(RuntimeError, match="load_weights"):
        m.swap(_batch(0, ["a"]), _batch(1, ["a"]))
    plain.load_weights(plain_state)  # the no_smooth layout loads strictly in its own mode
    assert plain.iib.iba_0.smooth is None


def test_each_row_draws_its_noise_from_its_pair(infoswap, monkeypatch):
    """swap() hands run() each row's draw_noise(pair_generator(pair id)), whatever the batch; that run()
    itself is batch-independent is tested against the official batch-1 run (test_infoswap_parity.py)."""
    seen = []

    def record(source, target, noise, trace=None):
        seen.append(noise)
        return torch.zeros_like(target)

    monkeypatch.setattr(infoswap, "run", record)
    infoswap.swap(_batch(0, ["a", "b", "c"]), _batch(1, ["a", "b", "c"]))
    infoswap.swap(_batch(0, ["b"]), _batch(1, ["b"]))
    expected = draw_noise(infoswap.pair_generator("b"), DIV)
    for got in (seen[0][1], seen[1][0]):
        assert all(torch.equal(a, e) for pair, pair_e in zip(got, expected) for a, e in zip(pair, pair_e))
    assert not torch.equal(seen[0][0][0][0], seen[0][2][0][0])  # pairs a and c: different noise
    with pytest.raises(ValueError, match="3 rows but 0 pair ids"):
        infoswap.swap(smooth_batch(0, 3, 512), smooth_batch(1, 3, 512))


def test_infoswap_runs_end_to_end_with_official_format_files(tmp_path):
    weights = tmp_path / "weights"
    for name, obj in rw.method_state("smooth", 0, DIV).items():
        wf = next(w for w in InfoSwap.weights if w.name == name)
        (weights / wf.filename).parent.mkdir(parents=True, exist_ok=True)
        torch.save(obj, weights / wf.filename)
    store = tmp_path / "r.sqlite"
    proc = bench("run", "--no-progress", "--method", "infoswap", "--subset", "2", "--batch-size", "2",
                 "--weights-dir", str(weights), "--set", "metrics={identity: dlib_resnet_v1}",
                 "--set", f"infoswap.channel_divisor={DIV}", store=store)
    assert "| infoswap |" in proc.stdout, proc.stdout
    swaps, _, publishable = complete_run(store, "infoswap")
    assert len(swaps) == 2 and all(swaps.values()), swaps
    assert not publishable  # the reduced test networks never reach a leaderboard
    import json
    import sqlite3

    (prov,) = sqlite3.connect(store).execute("SELECT provenance FROM runs WHERE method='infoswap'").fetchone()
    method = json.loads(prov)["method"]
    assert "not seed-reproducible" in method["note"] and method["options"]["ib_mode"] == "smooth"


def test_preset_config_resolves():
    from pathlib import Path

    from swapbench.bench import config

    cfg = config.load([Path(__file__).parent.parent / "configs" / "infoswap_ffpp.yaml"],
                      config.parse_set(["infoswap.ib_mode=no_smooth"]))
    assert cfg["protocol"] == "ffpp" and cfg["methods"] == ["infoswap"]
    assert cfg["infoswap"] == {"ib_mode": "no_smooth", "channel_divisor": 1}
    assert InfoSwap.from_config({**cfg, "engine": {"seed": 3}}).weights[0].filename.endswith("ckpt_G.pth")


def test_memory_script_builds_infoswap_with_its_statistics():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    import method_memory

    m = method_memory.build("infoswap", {"infoswap": {"channel_divisor": DIV}}, steps=2, device=torch.device("cpu"))
    assert m.stats is not None and len(m.stats.active) == 11 and m.stats.mean[0].shape == (64 // DIV, 128, 128)
