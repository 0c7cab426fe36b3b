"""`bench leaderboard --by`: one table per source identity, target identity or target pose bin, on a
synthetic store over the samples protocol's real pair list."""

import numpy as np
import pytest

from swapbench.bench import layout
from swapbench.bench.store import Store
from swapbench.datasets import get_protocol
from swapbench.leaderboard import breakdown, tables

CONFIG = {"engine": {"bootstrap_resamples": 200, "seed": 0}, "fid": {"min_samples": 2048}, "protocol": "samples",
          "face": {"eval_convention": "ffhq_256"}}


def _store(tmp_path):
    protocol = get_protocol("samples")
    pairs = [p.pair_id for p in protocol.pairs]
    ident = {k: r.identity for k, r in protocol.images.items()}
    weak = ident[protocol.pairs[0].target]  # method "b" breaks on targets of this identity
    store = Store(tmp_path / "s.sqlite")
    key = layout.face_key_of_run(CONFIG, "ffhq_256")
    yaws = {}
    for i, k in enumerate(sorted(protocol.images)):
        yaws[k] = [0.0, 30.0, 60.0][i % 3]
        store.put_image(protocol.hash, k, f"img-{k}")
        store.put_face(f"img-{k}", key, True, crop_sha=f"crop-{k}")
    store.put_features("mediapipe_pose", [(f"crop-{k}", True, None, np.array([-y, 1.0, 2.0])) for k, y in yaws.items()])
    rng = np.random.default_rng(0)
    for method in ("a", "b"):
        run_id = f"run-{method}"
        store.start_run(run_id, "samples", protocol.hash, method, True, CONFIG,
                        {"protocol": {"pairs": len(pairs)}, "git_revision": "test"})
        values = {}
        for p in protocol.pairs:
            bad = method == "b" and ident[p.target] == weak
            values[p.pair_id] = 5.0 + rng.normal(0, 0.1) + (20.0 if bad else 0.0) - (1.0 if method == "b" else 0.0)
        v = np.array(list(values.values()))
        store.put_results(run_id, [(p, "pose_error", x) for p, x in values.items()],
                          [("pose_error", float(v.mean()), None, None, len(v), 0, "mediapipe_pose")])
        store.finish_run(run_id)
    return store, weak, yaws, protocol


def test_by_target_identity_shows_where_a_method_breaks(tmp_path):
    store, weak, _, protocol = _store(tmp_path)
    df = tables.collect(store)
    md = breakdown.markdown(df, store, "target_identity")
    n_ident = len({r.identity for r in protocol.images.values()})
    assert md.count("## samples — target_identity:") == n_ident
    section = md.split(f"target_identity: {weak} (")[1].split("## samples")[0]
    a_line = next(line for line in section.splitlines() if line.startswith("| a |"))
    assert "**" in a_line  # on its weak identity, b is worse than a
    other = next(s for s in md.split("## samples — target_identity:")[1:] if not s.startswith(f" {weak} "))
    b_line = next(line for line in other.splitlines() if line.startswith("| b |"))
    assert "**" in b_line  # elsewhere b is better


def test_by_pose_bin_and_source_identity(tmp_path):
    store, _, yaws, protocol = _store(tmp_path)
    df = tables.collect(store)
    g = breakdown.groups(store, df, "pose_bin")
    for pid, group in g.items():
        assert group == breakdown.pose_bin(yaws[pid.split("__")[0]])
    assert set(g.values()) == {"frontal", "15–45°", ">45°"}
    md = breakdown.markdown(df, store, "pose_bin")
    assert md.index("pose_bin: frontal") < md.index("pose_bin: 15–45°") < md.index("pose_bin: >45°")
    src = breakdown.groups(store, df, "source_identity")
    ident = {k: r.identity for k, r in protocol.images.items()}
    assert all(src[p.pair_id] == ident[p.source] for p in protocol.pairs)
    assert breakdown.pose_bin(None) == "unknown" and breakdown.pose_bin(-50) == ">45°"


def test_ffpp_breaks_down_by_video_by_default():
    assert tables.DEFAULT_BREAKDOWN["ffpp"] == "target_identity"


def test_only_gone_files_fall_back_to_image_keys(tmp_path, monkeypatch):
    """A folder protocol whose folder is gone groups by image key; a bug in the data-set code is raised,
    not turned into a different breakdown."""
    from swapbench import datasets

    run = {"protocol": "folder-x", "config": {"protocol": f"folder:{tmp_path / 'gone'}"}}
    assert breakdown._identities(run) == {}

    def broken(name):
        raise AttributeError("'NoneType' object has no attribute 'identity'")

    monkeypatch.setattr(datasets, "get_protocol", broken)
    with pytest.raises(AttributeError, match="no attribute 'identity'"):
        breakdown._identities({"protocol": "samples", "config": {"protocol": "samples"}})
