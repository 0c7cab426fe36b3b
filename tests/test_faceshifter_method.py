"""FaceShifter and ReliableSwap as the engine uses them: registry, weight declarations and errors, options,
and `bench run` with random-weight files in the official format."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import complete_run
from faceshifter_inputs import SEED, seeded_weights
from PIL import Image

from swapbench import cli, weights
from swapbench.bench.catalogue import weight_files
from swapbench.faces.parsing import WEIGHTS as PARSER_WEIGHTS
from swapbench.methods import METHODS
from swapbench.methods.faceshifter.method import (
    HELPER_FILE,
    RELIABLESWAP_FILE,
    VANILLA_FILE,
    FaceShifter,
    ReliableSwapFaceShifter,
)
from swapbench.methods.faceshifter.nets import FaceShifterGenerator
from swapbench.methods.faceshifter.simswap import (
    MOUTH_FILE,
    MS1MV3_FILE,
    ST5_FILE,
    SV4_FILE,
    ReliableSwapSimSwap,
    RetrainedGenerator,
    SimSwapRetrained,
)
from swapbench.methods.faceshifter.simswap import random_weights as simswap_random_weights
from swapbench.methods.simswap.method import ARCFACE_FILE as SIMSWAP_ARCFACE_FILE
from swapbench.weights import WeightsError


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """Keep a user's real weights (environment variable, cache directory) out of the search path."""
    monkeypatch.delenv(weights.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(weights.platformdirs, "user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))


def test_registry_options_and_files():
    assert METHODS.get("faceshifter") is FaceShifter
    assert METHODS.get("reliableswap_faceshifter") is ReliableSwapFaceShifter
    assert FaceShifter.crop == ReliableSwapFaceShifter.crop == "ffhq5" and FaceShifter.size == 256
    # the files an instance needs follow its options: the parser only where a mask is made
    assert FaceShifter().weights == (VANILLA_FILE,)
    assert FaceShifter({"post": True}).weights == (VANILLA_FILE, PARSER_WEIGHTS)
    assert ReliableSwapFaceShifter().weights == (RELIABLESWAP_FILE, PARSER_WEIGHTS, HELPER_FILE)
    assert ReliableSwapFaceShifter({"mouth_helper": "off"}).weights == (RELIABLESWAP_FILE, PARSER_WEIGHTS)
    assert ReliableSwapFaceShifter().option_values() == {"id_path": "warp", "post": True, "mouth_helper": "evaluated"}
    with pytest.raises(ValueError, match="mouth_helper must be one of evaluated, mask01, off"):
        ReliableSwapFaceShifter({"mouth_helper": "fixed"})
    with pytest.raises(ValueError, match="id_path must be one of warp, infer"):
        FaceShifter({"id_path": "none"})
    assert VANILLA_FILE.manual and "ygss" in VANILLA_FILE.note
    for wf in (RELIABLESWAP_FILE, HELPER_FILE):  # direct links with the Space's LFS sha256
        assert wf.url.startswith("hf://spaces/ygtxr1997/ReliableSwap_Demo/weights/extracted/")
        assert len(wf.sha256) == 64
    assert weight_files()[PARSER_WEIGHTS.name][1].count("reliableswap_faceshifter") == 1


def test_missing_files_name_file_url_and_place(tmp_path, isolated_cache):
    with pytest.raises(WeightsError) as err:
        weights.resolve(ReliableSwapFaceShifter().weights, weights_dir=tmp_path)
    msg = str(err.value)
    for wf in (RELIABLESWAP_FILE, HELPER_FILE):
        assert wf.filename in msg and wf.url in msg
    assert str(tmp_path) in msg


def test_wrong_variant_or_missing_files_name_the_file():
    with torch.device("meta"):  # layouts only: the checks fail before any value is read
        vanilla, mouth = FaceShifterGenerator(False).state_dict(), FaceShifterGenerator(True).state_dict()
    with pytest.raises(WeightsError, match=r"G_tmp_v5\.pth .*MouthNet file.*use reliableswap_faceshifter.*unexpected keys"):
        FaceShifter().load_weights({VANILLA_FILE.name: mouth})
    rs = ReliableSwapFaceShifter({"mouth_helper": "off", "post": False})
    parser = {k: torch.zeros_like(v) for k, v in rs.parser.state_dict().items()}
    with pytest.raises(WeightsError, match=r"G_mouth1_t38_post\.pth .*without MouthNet.*use faceshifter.*missing keys"):
        rs.load_weights({RELIABLESWAP_FILE.name: vanilla, PARSER_WEIGHTS.name: parser})
    with pytest.raises(WeightsError, match=r"no state dict was given for 79999_iter\.pth"):
        rs.load_weights({RELIABLESWAP_FILE.name: mouth})


def test_swap_before_load_weights_fails_clearly():
    with pytest.raises(RuntimeError, match="load_weights"):
        FaceShifter().generate(torch.zeros(1, 3, 256, 256), torch.zeros(1, 3, 256, 256))


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    """The files of the methods run end to end, in the official layouts (SimSwap's ArcFace as the 2020 pickled
    training checkpoint ReliableSwap loads), with the parity goldens' random weights (the FaceShifter files
    drawn once per test process, shared with test_faceshifter_parity.py)."""
    from simswap_inputs import seeded_state, write_arcface_file

    folder = tmp_path_factory.mktemp("faceshifter_weights")
    torch.save(seeded_weights()[VANILLA_FILE.name], folder / VANILLA_FILE.filename)
    mouth1 = seeded_weights()[RELIABLESWAP_FILE.name]  # its ArcFace and MouthNet values, as separate files
    torch.save({k[len("iresnet."):]: v for k, v in mouth1.items() if k.startswith("iresnet.")},
               folder / MS1MV3_FILE.filename)
    torch.save({k[len("mouth_net.backbone."):]: v for k, v in mouth1.items() if k.startswith("mouth_net.backbone.")},
               folder / MOUTH_FILE.filename)
    for name, state in simswap_random_weights(SEED, files={ST5_FILE.name, SV4_FILE.name}).items():
        torch.save(state, folder / {ST5_FILE.name: ST5_FILE, SV4_FILE.name: SV4_FILE}[name].filename)
    write_arcface_file(folder / SIMSWAP_ARCFACE_FILE.filename, seeded_state("arcface"), layout="2020")
    return folder


def test_three_methods_run_end_to_end_with_official_format_files(weights_dir, tmp_path, capsys):
    """The engine path (files, strict load, swap, paste into the scoring crop) of faceshifter,
    reliableswap_simswap and simswap_retrained in one run; ReliableSwap's FaceShifter pipeline on top of the
    same generator class is checked step by step in test_faceshifter_parity.py."""
    store = tmp_path / "r.sqlite"
    methods = ("faceshifter", "reliableswap_simswap", "simswap_retrained")
    rc = cli.main(["run", "--no-progress", "--method", ",".join(methods), "--subset", "2", "--batch-size", "2",
                   "--weights-dir", str(weights_dir), "--set", "metrics={identity: dlib_resnet_v1}",
                   "--store", str(store)])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    for method in methods:
        assert f"| {method} |" in out, out + err
        swaps, files, _ = complete_run(store, method)
        assert len(swaps) == 2 and all(swaps.values()), (method, swaps)
        for pair_id in swaps:
            assert np.asarray(Image.open(files / "raw" / f"{pair_id}.png")).shape == (256, 256, 3)


def test_retrained_simswap_files_and_errors(tmp_path, isolated_cache):
    assert METHODS.get("reliableswap_simswap") is ReliableSwapSimSwap
    assert METHODS.get("simswap_retrained") is SimSwapRetrained
    assert ReliableSwapSimSwap.crop == SimSwapRetrained.crop == "ffhq5" and SimSwapRetrained.size == 256
    st5, sv4 = ReliableSwapSimSwap(), SimSwapRetrained()  # built on meta, then left uninitialised: cheap
    assert st5.weights == (ST5_FILE, MS1MV3_FILE, MOUTH_FILE)  # the parser only for post
    assert SimSwapRetrained({"post": True}).weights == (SV4_FILE, SIMSWAP_ARCFACE_FILE, PARSER_WEIGHTS)
    assert st5.option_values() == {"post": False}  # as evaluated (eval.py: "post" files only)
    assert ST5_FILE.manual and SV4_FILE.manual and "ygss" in ST5_FILE.note and "ygss" in SV4_FILE.note
    for wf in (MS1MV3_FILE, MOUTH_FILE):  # direct links on the author's Space
        assert wf.url.startswith("hf://spaces/ygtxr1997/ReliableSwap_Demo/weights/arcface/")
    with pytest.raises(WeightsError) as err:
        weights.resolve(st5.weights, weights_dir=tmp_path)
    for wf in st5.weights:
        assert wf.filename in str(err.value) and wf.url in str(err.value)
    # a generator file of the other variant names the method it belongs to
    with torch.device("meta"):
        sv4_layout, st5_layout = RetrainedGenerator(False).state_dict(), RetrainedGenerator(True).state_dict()
    with pytest.raises(WeightsError, match=r"G_mouth1_st5\.pth .*latent 512.*use simswap_retrained"):
        st5.load_weights({wf.name: sv4_layout for wf in st5.weights})
    with pytest.raises(WeightsError, match=r"G_tmp_sv4_off\.pth .*latent 640.*use reliableswap_simswap"):
        sv4.load_weights({wf.name: st5_layout for wf in sv4.weights})


def test_reliableswap_protocol_and_preset():
    from pathlib import Path

    from swapbench.bench import config
    from swapbench.datasets import get_protocol

    p = get_protocol("ffpp_reliableswap")
    assert len(p.pairs) == 4000
    assert {p.images[x.target].identity for x in p.pairs} == {f"{i:03d}" for i in range(400)}
    assert all(x.source.endswith("_frame0") for x in p.pairs)  # the source is always frame 0
    assert p.images["003_frame0"].uri == "data://ffpp/003.mp4#spaced=0/10"  # spaced=0 is the first frame
    partner = {t: s for t, s in __import__("json").loads(
        (Path(__file__).parents[1] / "swapbench/datasets/protocols/ffpp.json").read_text())["video_pairs"]}
    assert all(p.images[x.source].identity == partner[p.images[x.target].identity] for x in p.pairs)
    cfg = config.load([Path(__file__).parents[1] / "configs" / "reliableswap_ffpp.yaml"], config.parse_set([]))
    assert cfg["protocol"] == "ffpp_reliableswap"
    assert cfg["methods"] == ["faceshifter", "reliableswap_faceshifter", "simswap_retrained", "reliableswap_simswap"]
    assert SimSwapRetrained.from_config({**cfg, "engine": {"seed": 0}}).option_values() == {"post": False}
    assert ReliableSwapFaceShifter.from_config({**cfg, "engine": {"seed": 0}}).option_values() == {
        "id_path": "warp", "post": True, "mouth_helper": "evaluated"}
