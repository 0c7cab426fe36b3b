"""When things go wrong: a run where every pair fails says so with a distinct exit status, user
errors give one clear message and never a traceback, and weight files are opened before any face work."""

from __future__ import annotations

import shutil

import torch
from bad_inputs import write_corpus
from conftest import bench

from swapbench import cli
from swapbench.datasets.images import resolve_uri

GOOD = {"hopper": "pkg://matplotlib/mpl-data/sample_data/grace_hopper.jpg", "eileen": "pkg://skimage/data/astronaut.png"}
FAST = ("--set", "metrics={identity: dlib_resnet_v1}", "--no-progress")


def folder_with(tmp_path, good: list[str], bad: list[str]):
    data = tmp_path / "data"
    for name in good:
        (data / name).mkdir(parents=True)
        shutil.copy(resolve_uri(GOOD[name])[0], data / name / f"{name}{resolve_uri(GOOD[name])[0].suffix}")
    corpus = write_corpus(tmp_path / "corpus")
    for name in bad:
        (data / "bad").mkdir(parents=True, exist_ok=True)
        shutil.copy(corpus[name], data / "bad" / name)
    return data


def test_a_run_where_every_pair_fails_says_so_and_exits_3(tmp_path):
    data = folder_with(tmp_path, ["hopper"], ["empty.jpg", "not_an_image.jpg", "tiny.png", "truncated.jpg"])
    proc = bench("run", "--protocol", f"folder:{data}", "--method", "source", *FAST, store=tmp_path / "r.sqlite",
                 check=False)
    assert proc.returncode == 3, proc.stderr
    assert "| source |" in proc.stdout and "0/8 evaluated, 8 failed" in proc.stdout
    assert "No complete runs" not in proc.stdout + proc.stderr
    assert "source: 0/8 pairs swapped, 8 failed" in proc.stderr
    assert "nothing could be evaluated" in proc.stderr
    # grouped by stage and reason, with counts and examples
    assert "face: source: unreadable image" in proc.stderr and "(e.g. " in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_run_with_some_failed_pairs_exits_0_with_the_grouped_summary(tmp_path):
    data = folder_with(tmp_path, ["hopper", "eileen"], ["empty.jpg"])
    proc = bench("run", "--protocol", f"folder:{data}", "--method", "source", *FAST, store=tmp_path / "r.sqlite")
    assert "2/6 evaluated, 4 failed" in proc.stdout
    assert "source: 2/6 pairs swapped, 4 failed" in proc.stderr
    assert "face: source: unreadable image" in proc.stderr and "×2" in proc.stderr


class Payload:
    """A pickled object inside a weight file."""


def ghost_files(folder, generator_state):
    folder.mkdir(exist_ok=True)
    torch.save(generator_state, folder / "G_unet_2blocks.pth")
    torch.save({"w": torch.zeros(1)}, folder / "backbone.pth")
    return folder


def bad_invocations(tmp_path):
    (tmp_path / "bad.yaml").write_text("engine: [unclosed\n")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    pickled = ghost_files(tmp_path / "pickled", {"w": torch.zeros(1), "x": Payload()})
    wrong = ghost_files(tmp_path / "wrong", {"w": torch.zeros(1)})
    truncated = ghost_files(tmp_path / "truncated", {"w": torch.zeros(100)})
    (truncated / "G_unet_2blocks.pth").write_bytes((truncated / "G_unet_2blocks.pth").read_bytes()[:100])
    return [
        (["run", "--set", "engine.bach_size=3"], "unknown config key 'engine.bach_size'"),
        (["run", "--method", "nope"], "unknown method 'nope'"),
        (["run", "--protocol", "nope"], "unknown protocol 'nope'"),
        (["run", "--config", str(tmp_path / "missing.yaml")], "missing.yaml not found"),
        (["run", "--config", str(tmp_path / "bad.yaml")], "bad.yaml is not valid YAML"),
        (["run", "--config", str(tmp_path / "list.yaml")], "must hold a mapping"),
        (["run", "--method", "precomputed", "--set", "precomputed.dirr=x"], "unknown option precomputed.dirr"),
        (["run", "--method", "precomputed", "--set", "precomputed.pattern=3"], "precomputed.pattern must be str"),
        (["run", "--set", "metrics={identity: nope}"], "unknown metric backend 'nope'"),
        (["run", "--set", "metrics={pose: dlib_resnet_v1}"], "computes identity, not pose"),
        (["run", "--set", "face.detector=nope"], "unknown face detector 'nope'"),
        (["run", "--protocol", "celebahq", "--data-root", str(empty)], "celebahq"),
        (["run", "--method", "ghost", "--weights-dir", str(empty)], "missing G_unet_2blocks.pth"),
        (["run", "--method", "ghost", "--weights-dir", str(pickled)], "G_unet_2blocks.pth (ghost/G_unet_2blocks) was refused"),
        (["run", "--method", "ghost", "--weights-dir", str(wrong)], "does not fit the GHOST generator"),
        (["run", "--method", "ghost", "--weights-dir", str(truncated)], "not a readable PyTorch file"),
        (["weights", "download", "nope"], "unknown weight file 'nope'"),
        (["check", str(tmp_path / "missing.json")], "golden file"),
        (["leaderboard", "--out", str(tmp_path / "lb")], "no complete runs"),
    ]


def test_bad_invocations_give_one_clear_message_and_no_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SWAPBENCH_WEIGHTS", str(tmp_path / "no-weights"))
    store = tmp_path / "store.sqlite"
    for argv, expected in bad_invocations(tmp_path):
        if argv[0] in ("run", "leaderboard"):
            argv = argv + ["--store", str(store)]
        rc = cli.main(argv + (["--no-progress"] if argv[0] == "run" else []))
        out, err = capsys.readouterr()
        assert rc in (1, 2), (argv, rc, err)
        assert expected in err, (argv, err)
        assert "Traceback" not in err + out and "weights_only=False" not in err, (argv, err)
    # weights were opened before any face was detected: no crop was ever written
    assert not (tmp_path / "store.files" / "crops").exists()


def test_an_unexpected_error_is_one_line_with_the_log_file(tmp_path, capsys, monkeypatch):
    from swapbench.bench import engine

    def broken(cfg, reporter=None):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(engine, "run", broken)
    rc = cli.main(["run", "--store", str(tmp_path / "r.sqlite"), "--no-progress"])
    _, err = capsys.readouterr()
    assert rc == 4 and "internal error: ZeroDivisionError: a bug" in err and "Traceback" not in err
    log = next((tmp_path / "r.files" / "logs").glob("error-*.log"))
    assert "Traceback" in log.read_text() and "ZeroDivisionError" in log.read_text()
    assert cli.main(["run", "--store", str(tmp_path / "r.sqlite"), "--no-progress", "--debug"]) == 4
    assert "Traceback" in capsys.readouterr().err


def test_the_default_config_is_package_data():
    from swapbench.bench.config import default_text

    assert "protocol: samples" in default_text()
