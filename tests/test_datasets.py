"""Data-set loaders, packaged protocols, video frames and the errors a user sees, on tiny real-layout trees."""

import json
import shutil

import av
import numpy as np
import pytest
from datafixtures import (
    celebahq_tree,
    face,
    ffhq_tree,
    ffpp_tree,
    frame_number,
    moving_frames,
    square,
    write_video,
)

from swapbench import cli
from swapbench.datasets import PROTOCOLS, DataError, get_protocol, load_protocol, registered
from swapbench.datasets.files import PROTOCOL_DIR
from swapbench.datasets.images import ImageError, load_image
from swapbench.datasets.layouts import celebahq_masks
from swapbench.datasets.video import frame_count, read_frame, spaced_indices
from swapbench.methods.precomputed import Precomputed


def cfg(protocol, data_root=None, subset=None, **data):
    return {"protocol": protocol, "subset": subset, "data_root": str(data_root) if data_root else None,
            "data": {"allow_missing": False, "ffhq_images": "images1024x1024", "ffpp_compression": "c23", **data}}


# --- packaged protocols --------------------------------------------------------------------------

def test_celebahq_and_ffhq_pair_target_i_with_source_i():
    for name, t0, s0 in (("celebahq", 28000, 29000), ("ffhq", 68000, 69000)):
        p = get_protocol(name)
        assert len(p.pairs) == 1000 and len(p.images) == 2000
        assert all(int(x.target) == t0 + i and int(x.source) == s0 + i for i, x in enumerate(p.pairs))
        assert len({r.identity for r in p.images.values()}) == 2000  # one image per identity
        assert all(r.uri.startswith(f"data://{name}/") for r in p.images.values())
    assert get_protocol("ffhq").pairs[0].target == "68000"


def test_ffpp_has_every_video_once_as_target_and_once_as_source_with_ten_frames():
    doc = json.loads((PROTOCOL_DIR / "ffpp.json").read_text())
    vp = [tuple(x) for x in doc["video_pairs"]]
    assert len(vp) == len(set(vp)) == 1000
    assert sorted(t for t, _ in vp) == sorted(s for _, s in vp) == [f"{i:03d}" for i in range(1000)]
    assert all((s, t) in set(vp) and s != t for t, s in vp)  # official splits give a_b and b_a
    p = get_protocol("ffpp")
    assert len(p.pairs) == 10_000 and len({r.identity for r in p.images.values()}) == 1000
    t, s = vp[0]
    frames = [x for x in p.pairs if p.images[x.target].identity == t]
    assert [(p.images[x.source].identity, x.target, x.source) for x in frames] == \
           [(s, f"{t}_frame{i}", f"{s}_frame{i}") for i in range(10)]
    assert p.images[f"{t}_frame3"].uri == f"data://ffpp/{t}.mp4#spaced=3/10"


def test_list_protocols_without_any_data(capsys, monkeypatch):
    monkeypatch.delenv("SWAPBENCH_DATA", raising=False)
    assert cli.main(["list", "protocols"]) == 0
    out = capsys.readouterr().out
    for name in ("celebahq", "ffhq", "ffpp", "samples"):
        assert name in out and PROTOCOLS[name]().hash in out
    assert "10000" in out and "1000" in out


def test_a_registered_protocol_lasts_for_its_block_and_each_caller_gets_a_copy():
    """benchmarks/throughput.py runs a `samples` subset under the name `samples`: set for good, it replaced
    the built-in protocol for every later test in the process (a 3-image `samples` protocol)."""
    full = get_protocol("samples")
    small = full.subset(2)
    with registered("samples", small), registered("tiny", small):
        inside = get_protocol("samples")
        assert inside.hash == small.hash and get_protocol("tiny").hash == small.hash
        inside.pairs.pop()  # a caller that edits its protocol ...
        assert get_protocol("samples").hash == small.hash  # ... does not edit the next caller's
        assert load_protocol(cfg("tiny")).hash == small.hash  # what the engine finds by name
    assert get_protocol("samples").hash == full.hash and len(get_protocol("samples").pairs) == 72
    assert "tiny" not in PROTOCOLS
    with pytest.raises(RuntimeError), registered("samples", small):
        raise RuntimeError  # an interrupted run restores the registry too
    assert get_protocol("samples").hash == full.hash


def test_hash_does_not_depend_on_where_the_data_is(tmp_path):
    sub = get_protocol("celebahq").subset(2)
    a = celebahq_tree(tmp_path / "a" / "celebahq", sub.images)
    b = celebahq_tree(tmp_path / "b", sub.images)  # data root = the data set's own folder
    pa, pb = load_protocol(cfg("celebahq", tmp_path / "a", 2)), load_protocol(cfg("celebahq", b, 2))
    assert pa.hash == pb.hash == sub.hash and pa.subset_of == get_protocol("celebahq").hash
    key = sub.pairs[0].target
    assert pa.location(key) == str(a / "CelebA-HQ-img" / f"{key}.jpg")
    assert pb.location(key) == str(b / "CelebA-HQ-img" / f"{key}.jpg")
    assert load_image(pa.location(key)).shape == (256, 256, 3)


# --- layouts ---------------------------------------------------------------------------------------

def test_ffhq_nested_flat_and_resolution_folders(tmp_path, monkeypatch):
    keys = get_protocol("ffhq").subset(1).images
    ffhq_tree(tmp_path / "ffhq", keys)
    ffhq_tree(tmp_path / "ffhq", keys, folder="thumbnails128x128", side=128)
    ffhq_tree(tmp_path / "ffhq", keys, folder="images512", side=64, flat=True)
    monkeypatch.setenv("SWAPBENCH_DATA", str(tmp_path))  # data root from the environment
    for folder, side, nested in (("images1024x1024", 256, True), ("thumbnails128x128", 128, True),
                                 ("images512", 64, False)):
        p = load_protocol(cfg("ffhq", None, 1, ffhq_images=folder))
        key = p.pairs[0].target
        expected = tmp_path / "ffhq" / folder / (f"{int(key) // 1000 * 1000:05d}/" if nested else "") / f"{key}.png"
        assert p.location(key) == str(expected)
        assert load_image(p.location(key)).shape == (side, side, 3)


def test_celebahq_masks_of_an_image(tmp_path):
    celebahq_tree(tmp_path, ["28003"])
    masks = celebahq_masks(tmp_path, 28003)
    assert list(masks) == ["skin"] and masks["skin"] == tmp_path / "CelebAMask-HQ-mask-anno" / "14" / "28003_skin.png"


def test_missing_data_set_says_what_is_expected_where_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SWAPBENCH_DATA", raising=False)
    with pytest.raises(DataError) as e:
        load_protocol(cfg("ffhq"))
    assert "no data root is set" in str(e.value) and "--data-root" in str(e.value)
    assert "github.com/NVlabs/ffhq-dataset" in str(e.value)
    with pytest.raises(DataError) as e:
        load_protocol(cfg("ffpp", tmp_path))
    msg = str(e.value)
    assert "original_sequences/youtube/c23/videos/<NNN>.mp4" in msg and str(tmp_path / "ffpp") in msg
    assert "github.com/ondyari/FaceForensics" in msg
    with pytest.raises(DataError, match="switchablenorms/CelebAMask-HQ"):
        load_protocol(cfg("celebahq", tmp_path))


def test_incomplete_data_set_is_an_error_unless_allowed(tmp_path, capsys):
    sub = get_protocol("celebahq").subset(3)
    present = [k for k in sub.images if k != sub.pairs[0].source]
    celebahq_tree(tmp_path, present)
    with pytest.raises(DataError) as e:
        load_protocol(cfg("celebahq", tmp_path, 3))
    msg = str(e.value)
    assert "1 of 6 images are missing" in msg and f"{sub.pairs[0].source}.jpg" in msg
    assert "needed by 1 of 3 pairs" in msg and "data.allow_missing=true" in msg
    assert "switchablenorms/CelebAMask-HQ" in msg
    p = load_protocol(cfg("celebahq", tmp_path, 3, allow_missing=True))
    assert len(p.pairs) == 3  # the pair stays; the engine records it as failed
    # The command line prints the error without a traceback and exits 2.
    rc = cli.main(["run", "--protocol", "celebahq", "--data-root", str(tmp_path), "--subset", "3",
                   "--store", str(tmp_path / "s.sqlite"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "images are missing" in err and "Traceback" not in err


# --- video frames ----------------------------------------------------------------------------------

def test_seeking_gives_the_same_frame_as_decoding_the_whole_video(tmp_path):
    path = write_video(tmp_path / "v.mp4", moving_frames(square(face(2), 128), 23), gop=5)
    with av.open(str(path)) as c:
        sequential = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert frame_count(path) == len(sequential) == 23
    for i in (0, 4, 5, 6, 13, 22):  # key frames, the frames before and after them, the last frame
        frame = read_frame(path, index=i)
        assert np.array_equal(frame, sequential[i])
        assert frame_number(frame) == i
    assert [frame_number(read_frame(path, spaced=(k, 10))) for k in range(10)] == \
           spaced_indices(23, 10) == [0, 2, 5, 7, 10, 12, 15, 17, 20, 22]
    assert np.array_equal(load_image(f"{path}#frame=13"), sequential[13])
    assert np.array_equal(load_image(f"{path}#spaced=9/10"), sequential[22])
    with pytest.raises(ImageError, match="out of range"):
        load_image(f"{path}#frame=23")
    with pytest.raises(ImageError, match="#frame=N"):
        load_image(str(path))


def test_evenly_spaced_frames_definition():
    assert spaced_indices(300, 10) == [0, 33, 66, 100, 133, 166, 199, 233, 266, 299]
    assert spaced_indices(10, 10) == list(range(10))
    assert spaced_indices(1, 3) == [0, 0, 0]


def test_ffpp_frames_are_located_in_the_chosen_compression(tmp_path):
    sub = get_protocol("ffpp").subset(1)
    videos = {r.identity for r in sub.images.values()}
    ffpp_tree(tmp_path / "ffpp", videos, n_frames=12, compression="c40")
    p = load_protocol(cfg("ffpp", tmp_path, 1, ffpp_compression="c40"))
    key = p.pairs[0].target
    video, i = key.split("_frame")
    assert p.location(key) == f"{tmp_path}/ffpp/original_sequences/youtube/c40/videos/{video}.mp4#spaced={i}/10"
    frame = load_image(p.location(key))
    assert frame_number(frame) == spaced_indices(12, 10)[int(i)]


# --- the user's own images --------------------------------------------------------------------------

def _user_folder(root):
    from PIL import Image
    for person, n in (("ann", 2), ("bob", 1)):
        (root / person).mkdir(parents=True)
        for j in range(n):
            Image.fromarray(face(j if person == "ann" else 4, 128)).save(root / person / f"{j}.jpg")
    Image.fromarray(face(5, 128)).save(root / "carl.png")
    return root


def test_folder_protocol_pairs_different_identities_and_relocates(tmp_path):
    root = _user_folder(tmp_path / "faces")
    p = load_protocol(cfg(f"folder:{root}"))
    assert p.name == "folder-faces"
    assert {k: r.identity for k, r in p.images.items()} == {"ann-0": "ann", "ann-1": "ann", "bob-0": "bob", "carl": "carl"}
    assert len(p.pairs) == 4 * 3 - 2  # every ordered pair except ann-0/ann-1 both ways
    assert p.location("bob-0") == str(root / "bob" / "0.jpg")
    moved = shutil.copytree(root, tmp_path / "elsewhere" / "faces")
    assert load_protocol(cfg(f"folder:{moved}")).hash == p.hash


def test_csv_protocol_with_identities_relative_to_csv_or_data_root(tmp_path):
    root = _user_folder(tmp_path / "faces")
    (root / "pairs.csv").write_text("source,target,source_identity,target_identity\n"
                                    "ann/0.jpg,bob/0.jpg,ann,bob\nann/1.jpg,carl.png,ann,carl\n")
    p = load_protocol(cfg(f"csv:{root / 'pairs.csv'}"))
    assert [(x.source, x.target) for x in p.pairs] == [("ann-0", "bob-0"), ("ann-1", "carl")]
    assert p.images["ann-1"].identity == "ann" and p.location("carl") == str(root / "carl.png")
    (tmp_path / "pairs.csv").write_text("source,target\nann/0.jpg,carl.png\n")
    q = load_protocol(cfg(f"csv:{tmp_path / 'pairs.csv'}", data_root=root))
    assert q.location("ann-0") == str(root / "ann" / "0.jpg") and q.images["ann-0"].identity == "ann-0"
    (tmp_path / "bad.csv").write_text("src,tgt\na.jpg,b.jpg\n")
    with pytest.raises(ValueError, match="source,target"):
        load_protocol(cfg(f"csv:{tmp_path / 'bad.csv'}"))


def test_precomputed_pattern_fields():
    p = get_protocol("celebahq").subset(2)
    m = Precomputed(Precomputed.Options("/swaps", "{target}_{source}.jpg"))
    files = m.input_images(p)
    assert files == {x.pair_id: f"/swaps/{x.target}_{x.source}.jpg" for x in p.pairs}
    assert m.convention == "ffhq_256"
    with pytest.raises(ValueError, match="fields"):
        Precomputed(Precomputed.Options("/swaps", "{tgt}.jpg"))
