"""`bench run` on a video protocol: every frame swapped through the engine, per-frame or per-clip noise,
the temporal family per clip with intervals over clips, WebM clips, the markdown columns, resuming."""

import os
import re
import sqlite3

import av
import cv2
import numpy as np
import pytest
import torch
from browser import chromium_binaries, chromium_driver
from conftest import bench

from swapbench.bench import config, engine
from swapbench.bench.store import Store
from swapbench.bench.engine import video_noise_keys
from swapbench.bench.runinfo import run_id_for
from swapbench.datasets import get_protocol, synthetic
from swapbench.datasets.clips import folder_video_protocol
from swapbench.faces import templates
from swapbench.leaderboard import report, tables
from swapbench.methods.baselines import Classic

FRAMES = 6
SETTINGS = ["--set", "metrics={identity: dlib_resnet_v1}", "--set", f"video.frames={FRAMES}",
            "--set", "engine.num_workers=1", "--set", "engine.bootstrap_resamples=200"]


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("video")
    folder = synthetic.write_fixture(root / "clips")
    store = root / "store.sqlite"
    bench("run", "--protocol", f"folder_video:{folder}", "--method", "target", "--method", "classic",
          *SETTINGS, store=store)
    return folder, store


def values(store, method, metric):
    db = sqlite3.connect(store)
    return dict(db.execute("SELECT pair_id, value FROM pair_values JOIN runs USING (run_id) "
                           "WHERE method=? AND metric=? ORDER BY pair_id", (method, metric)).fetchall())


def test_every_frame_is_swapped_and_each_clip_scored(video_run):
    folder, store = video_run
    db = sqlite3.connect(store)
    for method in ("target", "classic"):
        swapped = db.execute("SELECT count(*) FROM swaps JOIN runs USING (run_id) WHERE method=? AND ok",
                             (method,)).fetchone()[0]
        assert swapped == 2 * FRAMES  # 2 clips (two source photos) x FRAMES frames
        clips = values(store, method, "lmk_jitter")
        assert sorted(clips) == ["grace_hopper_astronaut", "grace_hopper_tom_hanks"]
    # the target baseline returns the target: no jitter, no flicker beyond the target's own, no identity change
    assert all(v == 0 for v in values(store, "target", "lmk_jitter").values())
    assert all(abs(v) < 1e-9 for v in values(store, "target", "flicker").values())
    # the classic swap pastes a still source face onto a moving head: it lags the target's motion
    assert all(v > 0.002 for v in values(store, "classic", "lmk_jitter").values())
    assert all(v > 0 for v in values(store, "classic", "id_drift").values())
    flick = values(store, "classic", "temporal_flickering")
    assert all(0 < v <= 1 for v in flick.values())


def test_intervals_are_over_clips_and_the_markdown_has_the_temporal_columns(video_run, tmp_path):
    folder, store = video_run
    db = sqlite3.connect(store)
    n, n_failed, lo, hi, value = db.execute(
        "SELECT n, n_failed, ci_low, ci_high, value FROM aggregates JOIN runs USING (run_id) "
        "WHERE method='classic' AND metric='lmk_jitter'").fetchone()
    assert (n, n_failed) == (2, 0) and lo <= value <= hi
    assert value == pytest.approx(np.mean(list(values(store, "classic", "lmk_jitter").values())))
    tables.write(Store(store), tmp_path)  # what `bench leaderboard` writes
    md = next(tmp_path.glob("folder_video-*.md")).read_text()
    assert "on 2 of 2 clips common to all 2 methods" in md
    for label in ("ID drift ↓", "ID f2f cos ↑", "Lmk jitter ↓", "Flicker ↓", "VBench flick ↑"):
        assert label in md, label


def test_clips_are_written_as_vp9_webm_side_by_side(video_run):
    folder, store = video_run
    clips = sorted(store.parent.glob("store.files/runs/*/clips/*.webm"))
    assert len(clips) == 4  # 2 methods x 2 clips
    with av.open(str(clips[0])) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "vp9"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(frames) == FRAMES and frames[0].shape == (256, 3 * 256, 3)


def test_a_second_run_reuses_the_complete_run(video_run):
    folder, store = video_run
    overrides = config.parse_set([s for s in SETTINGS if s != "--set"])
    cfg = config.load(overrides={**overrides, "protocol": f"folder_video:{folder}", "methods": ["classic"],
                                 "store": str(store)})
    (result,) = engine.run(cfg)
    assert result.reused and result.swapped == 2 * FRAMES


def test_per_clip_noise_reuses_one_draw_per_clip_and_changes_the_run_id(tmp_path):
    p = folder_video_protocol(synthetic.write_fixture(tmp_path, frames=4), frames=4)
    cfg = config.load()
    method = Classic()
    frame_draws = [torch.randn(3, generator=method.pair_generator(pid)) for pid in p.clips["grace_hopper_astronaut"]]
    assert not torch.equal(frame_draws[0], frame_draws[1])  # per frame: keyed by (seed, pair, frame)
    ids = {}
    for choice in ("per_frame", "per_clip"):
        cfg["engine"]["video_noise"] = choice
        method.noise_keys = video_noise_keys(p, cfg)
        ids[choice] = run_id_for(cfg, p, method, {})
    clip = p.clips["grace_hopper_astronaut"]
    draws = [torch.randn(3, generator=method.pair_generator(pid)) for pid in clip]
    assert all(torch.equal(d, draws[0]) for d in draws)
    other = torch.randn(3, generator=method.pair_generator(p.clips["grace_hopper_tom_hanks"][0]))
    assert not torch.equal(other, draws[0])  # another clip, another draw
    assert ids["per_frame"] != ids["per_clip"]
    # image protocols: the option changes nothing, and their run ids stay what they were
    samples = get_protocol("samples")
    assert video_noise_keys(samples, cfg) == {}
    cfg["engine"]["video_noise"] = "per_frame"
    a = run_id_for(cfg, samples, method, {})
    cfg["engine"]["video_noise"] = "per_clip"
    assert run_id_for(cfg, samples, method, {}) == a
    cfg["engine"]["video_noise"] = "per_pixel"
    with pytest.raises(ValueError, match="per_frame, per_clip"):
        video_noise_keys(p, cfg)


needs_browser = pytest.mark.skipif(chromium_binaries() is None and os.environ.get("SWAPBENCH_REQUIRE_BROWSER") != "1",
                                   reason="no chromium/chromedriver (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def video_site(video_run, tmp_path_factory):
    folder, store = video_run
    out = tmp_path_factory.mktemp("site")
    pages = report.write(Store(store), out)
    return out, pages


def test_report_has_a_clip_page_per_video_protocol(video_site):
    out, pages = video_site
    (page,) = [p for p in pages if p.name.endswith("_video.html")]
    html = page.read_text()
    assert html.count("<video ") == 2 * 6 * 2  # 2 methods x 6 temporal metrics x (best, worst) of 2 clips
    for src in set(re.findall(r'<video src="([^"]+)"', html)):
        assert (out / src).is_file() and src.endswith(".webm")
    board = (out / (page.name.removesuffix("_video.html") + ".html")).read_text()
    assert f'href="{page.name}"' in board
    # the method pages' galleries keep to per-frame metrics: no clip id is read as a pair
    assert "grace_hopper_astronaut.jpg" not in "".join(p.read_text() for p in pages)


@needs_browser
def test_browser_plays_a_clip(video_site):
    out, pages = video_site
    page = next(p for p in pages if p.name.endswith("_video.html"))
    driver = chromium_driver(width=1400, height=1000)
    try:
        driver.get(page.as_uri())
        state = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const v = document.querySelector('video');
            const watch = (first, t0) => {  // until currentTime moves on from its value after play(), or 8 s
                if (v.currentTime > first || Date.now() - t0 > 8000) done(
                    {ready: v.readyState, width: v.videoWidth, first: first, time: v.currentTime,
                     paused: v.paused, error: v.error && v.error.code});
                else setTimeout(() => watch(first, t0), 50);
            };
            const start = () => v.play().then(() => watch(v.currentTime, Date.now()), e => done({error: String(e)}));
            if (v.readyState >= 1) start(); else { v.addEventListener('loadedmetadata', start); v.load(); }
        """)
        assert state.get("error") is None, state
        assert state["width"] == 3 * 256 and state["ready"] >= 2 and not state["paused"]
        assert state["time"] > state["first"], state  # currentTime advances while it plays
        assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()


def test_face_smooth_steadies_the_crops_of_a_clip(tmp_path):
    from swapbench.bench.clips import smooth_crops
    from swapbench.bench.layout import face_key
    from swapbench.bench.prepare import prepare

    p = folder_video_protocol(synthetic.write_fixture(tmp_path / "clip", frames=12), frames=12)
    store = Store(tmp_path / "s.sqlite")
    crops = prepare(p, ["ffhq_256"], store)
    smoothed = smooth_crops(p, crops, ["ffhq_256"], store, 5, face_key)
    keys = [pair.target for pair in [x for x in p.pairs if x.pair_id in p.clips["grace_hopper_astronaut"]]]

    def shake(c):  # frame-to-frame acceleration of the crop's translation: what smoothing removes
        shifts = np.stack([c[k, "ffhq_256"].matrix[:, 2] for k in keys])
        return np.abs(np.diff(shifts, n=2, axis=0)).mean()

    assert shake(smoothed) < shake(crops)
    k = keys[3]
    assert smoothed[k, "ffhq_256"].path != crops[k, "ffhq_256"].path and "~smooth5" in str(smoothed[k, "ffhq_256"].path)
    # each frame keeps its own detected landmarks, mapped into the new crop
    back = cv2.invertAffineTransform(smoothed[k, "ffhq_256"].matrix)
    detected = cv2.invertAffineTransform(crops[k, "ffhq_256"].matrix)
    assert np.allclose(templates.apply_transform(back, smoothed[k, "ffhq_256"].landmarks),
                       templates.apply_transform(detected, crops[k, "ffhq_256"].landmarks), atol=0.01)
    assert smoothed["astronaut", "ffhq_256"] is crops["astronaut", "ffhq_256"]  # sources stay


def test_a_clip_with_a_faceless_frame_is_a_recorded_failure_not_a_crash(tmp_path):
    from swapbench.datasets.video import write_video

    folder = tmp_path / "clip"
    folder.mkdir()
    frames = synthetic.clip_frames(4)
    frames[2] = np.full_like(frames[2], 128)  # a grey frame: no face to find
    write_video(folder / "grace_hopper.mkv", frames, 25, codec="ffv1")
    (folder / "astronaut.png").write_bytes((synthetic.write_fixture(tmp_path / "full", frames=2) / "astronaut.png").read_bytes())
    overrides = config.parse_set([s for s in SETTINGS if s != "--set"])
    cfg = config.load(overrides={**overrides, "protocol": f"folder_video:{folder}", "methods": ["target"],
                                 "store": str(tmp_path / "s.sqlite"), "video": {"frames": 4}})
    (result,) = engine.run(cfg)
    assert result.swapped == 3 and result.failed == 1
    reasons = {(f.pair_id, f.stage): f.reason for f in result.failures}
    assert "no face" in reasons["grace_hopper_frame2__astronaut", "face"].lower()
    assert "grace_hopper_frame2" in reasons["grace_hopper_astronaut", "temporal"]
    assert values(tmp_path / "s.sqlite", "target", "lmk_jitter") == {}
