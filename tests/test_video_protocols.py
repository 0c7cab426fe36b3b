"""Video protocols (ffpp_video, folder_video:), the synthetic clip fixture and clip decoding with PyAV."""

import json
import shutil

import numpy as np
import pytest
from datafixtures import ffpp_tree, frame_number, moving_frames, write_video

from swapbench.datasets import DataError, get_protocol, load_protocol
from swapbench.datasets import video as video_module
from swapbench.datasets import synthetic
from swapbench.datasets.clips import folder_video_protocol
from swapbench.datasets.files import PROTOCOL_DIR
from swapbench.datasets.images import load_image
from swapbench.datasets.video import read_frame


def cfg(protocol, data_root=None, subset=None, frames=None):
    return {"protocol": protocol, "subset": subset, "data_root": str(data_root) if data_root else None,
            "video": {"frames": frames}, "data": {"allow_missing": False, "ffpp_compression": "c23"}}


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory):
    return synthetic.write_fixture(tmp_path_factory.mktemp("clip"))


def test_synthetic_clip_is_deterministic_lossless_and_moves_smoothly(fixture_dir):
    frames = synthetic.clip_frames()
    assert len(frames) == synthetic.FRAMES == 24
    assert all(np.array_equal(a, b) for a, b in zip(frames, synthetic.clip_frames()))  # no randomness
    decoded = [read_frame(fixture_dir / "grace_hopper.mkv", index=t) for t in range(24)]
    assert all(np.array_equal(a, b) for a, b in zip(frames, decoded))  # FFV1 RGB: lossless
    steps = [np.abs(frames[t + 1].astype(int) - frames[t]).mean() for t in range(23)]
    assert 0.5 < min(steps) and max(steps) < 1.5 * min(steps)  # every frame moves, none jumps
    static = synthetic.clip_frames(6, motion=0, lighting=0)
    assert all(np.array_equal(f, synthetic.base_frame()) for f in static)


def test_clip_frames_read_in_any_order_equal_the_frames_written(tmp_path):
    base = np.full((96, 256, 3), 90, np.uint8)  # the frame-number bar needs 4 px per frame
    path = write_video(tmp_path / "v.mp4", moving_frames(base, 40), gop=8)
    in_order = [frame_number(read_frame(path, index=i)) for i in range(40)]
    assert in_order == list(range(40))
    shuffled = [5, 30, 31, 2, 39, 0, 17, 16]  # backwards, far forwards: the open decoder seeks again
    assert [frame_number(read_frame(path, index=i)) for i in shuffled] == shuffled
    other = write_video(tmp_path / "w.mp4", moving_frames(base, 10), gop=8)
    assert frame_number(read_frame(other, index=3)) == 3  # another file: another decoder
    assert frame_number(read_frame(path, index=7)) == 7
    with pytest.raises(video_module.VideoError, match="frame 40 is out of range"):
        read_frame(path, index=40)


def test_ffpp_video_is_the_test_split_faceswap_pairs_in_clips_of_32_frames():
    doc = json.loads((PROTOCOL_DIR / "ffpp_video.json").read_text())
    pairs = [tuple(x) for x in doc["clip_pairs"]]
    assert len(pairs) == len(set(pairs)) == 140
    assert all((s, t) in set(pairs) for t, s in pairs)  # each split entry [a, b] gives a_b and b_a
    all_pairs = {tuple(x) for x in json.loads((PROTOCOL_DIR / "ffpp.json").read_text())["video_pairs"]}
    assert set(pairs) <= all_pairs  # FF++'s own manipulation pairs
    p = get_protocol("ffpp_video")
    assert len(p.clips) == 140 and len(p.pairs) == 140 * 32
    t, s = pairs[0]
    clip = p.clips[f"{t}_{s}"]
    assert clip == [f"{t}_frame{i}__{s}_frame0" for i in range(32)]
    assert p.images[f"{t}_frame5"].uri == f"data://ffpp/{t}.mp4#frame=5"
    assert p.images[f"{s}_frame0"].identity == s
    # K clips, T frames
    sub = p.subset(3)
    assert len(sub.clips) == 3 and len(sub.pairs) == 96 and sub.subset_of == p.hash
    assert sub.clips == get_protocol("ffpp_video").subset(3).clips  # the same clips on every machine
    short = get_protocol("ffpp_video", frames=8)
    assert len(short.pairs) == 140 * 8 and short.version == "1+T8" and short.hash != p.hash


def test_ffpp_video_reads_ffpp_originals_and_names_what_is_missing(tmp_path):
    sub = get_protocol("ffpp_video").subset(2)
    videos = {ref.identity for ref in sub.images.values()}
    with pytest.raises(DataError) as e:
        load_protocol(cfg("ffpp_video", tmp_path, 2))
    assert "original_sequences/youtube/c23/videos/<NNN>.mp4" in str(e.value)
    ffpp_tree(tmp_path, videos, n_frames=6)
    p = load_protocol(cfg("ffpp_video", tmp_path, 2, frames=6))
    assert len(p.clips) == 2 and all(len(c) == 6 for c in p.clips.values())
    key = next(iter(p.clips.values()))[4].partition("__")[0]
    assert frame_number(load_image(p.location(key))) == 4
    with pytest.raises(ValueError, match="has no video clips"):
        load_protocol({**cfg("samples"), "video": {"frames": 4}})


def test_folder_video_pairs_every_photo_with_every_video(fixture_dir, tmp_path):
    p = folder_video_protocol(fixture_dir, frames=5)
    assert sorted(p.clips) == ["grace_hopper_astronaut", "grace_hopper_tom_hanks"]
    assert p.clips["grace_hopper_astronaut"] == [f"grace_hopper_frame{i}__astronaut" for i in range(5)]
    assert p.images["grace_hopper_frame3"].uri == "data://user/grace_hopper.mkv#frame=3"
    assert p.fps == synthetic.FPS  # the clips' WebM plays at the video's own rate
    assert np.array_equal(load_image(p.location("grace_hopper_frame3")), synthetic.clip_frames()[3])
    # the hash does not depend on where the folder is
    moved = shutil.copytree(fixture_dir, tmp_path / "elsewhere" / fixture_dir.name)
    assert folder_video_protocol(moved, frames=5).hash == p.hash
    assert len(folder_video_protocol(fixture_dir, frames=100).clips["grace_hopper_astronaut"]) == 24  # whole video
    assert load_protocol(cfg(f"folder_video:{fixture_dir}", subset=1, frames=4)).pairs[0].target.endswith("frame0")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.png").write_bytes((fixture_dir / "astronaut.png").read_bytes())
    with pytest.raises(DataError, match="found 1 photographs and 0 videos"):
        folder_video_protocol(tmp_path / "empty")


def test_image_protocol_hashes_do_not_change_with_clips():
    # hashes recorded by earlier stores: a protocol without clips hashes as before clips existed
    assert get_protocol("samples").clips is None
    p = get_protocol("celebahq")
    assert p.hash == p.subset(None).hash and len(p.subset(5).pairs) == 5
