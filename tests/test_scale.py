"""At scale: the face stage in worker processes, and runs over several nodes with per-rank store shards.

The two-node tests simulate two machines on 127.0.0.1 with Lightning's own environment variables
(MASTER_ADDR, MASTER_PORT, NODE_RANK): two `bench run --set engine.num_nodes=2` processes, each
"node" with its own node-local shard folder (SWAPBENCH_SHARD_DIR) and temporary folder, one results
store. Measurements (speed-up, memory, overhead) are in benchmarks/, not here.
"""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from test_run import aggregates, assert_same_results, pair_values

from swapbench.bench.prepare import prepare
from swapbench.bench.store import RankStore, Store
from swapbench.datasets import get_protocol

# identity and pose: two feature passes, so a rank can be killed between two merges
RUN = ["run", "--no-progress", "--subset", "4", "--method", "classic", "--batch-size", "2",
       "--accelerator", "cpu", "--set", "engine.num_workers=1",
       "--set", "metrics={identity: dlib_resnet_v1, pose: mediapipe_pose}"]


def _rows(store, table):
    return sqlite3.connect(store).execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()


def _same_crops_and_rows(a, b):
    """(crops, store) of two face stages hold the same crops, files and rows."""
    assert a[0].keys() == b[0].keys()
    for k, x in a[0].items():
        y = b[0][k]
        assert (x.ok, x.reason, x.sha, x.image_sha) == (y.ok, y.reason, y.sha, y.image_sha), k
        if x.ok:
            assert x.path.read_bytes() == y.path.read_bytes(), k
            assert np.array_equal(x.landmarks, y.landmarks) and np.array_equal(x.matrix, y.matrix), k
    for table in ("faces", "images"):
        assert _rows(a[1].path, table) == _rows(b[1].path, table), table


def test_face_stage_in_two_workers_gives_the_same_crops_and_rows(tmp_path):
    protocol = get_protocol("samples")
    conventions = ["ffhq_256", "arcface_112"]
    stores = {n: Store(tmp_path / f"w{n}" / "r.sqlite") for n in (1, 2)}
    crops = {n: prepare(protocol, conventions, s, workers=n) for n, s in stores.items()}
    _same_crops_and_rows((crops[1], stores[1]), (crops[2], stores[2]))
    # A second pass in workers finds every row and file and recomputes nothing.
    again = prepare(protocol, conventions, stores[2], workers=2)
    assert {k: (c.sha, c.reason) for k, c in again.items()} == {k: (c.sha, c.reason) for k, c in crops[2].items()}


def test_merging_a_shard_twice_adds_nothing(tmp_path):
    results = tmp_path / "r.sqlite"
    Store(results).close()
    rank = RankStore(results, 1, tmp_path / "node1")
    rank.start_run("run1", "p", "h", "m", True, {}, {})
    rank.put_swaps("run1", [("a", True, None, "sha-a"), ("b", False, "no face", None)])
    rank.put_features("idn", [("sha-a", True, None, np.ones(3, np.float32))])
    rank.put_failures("run1", [("b", "swap", "no face")])
    rank.publish()
    shards = sorted(rank.outbox.glob("*.sqlite"))
    store = Store(results)
    for _ in range(2):  # a merge repeated after a crash before the shards were removed
        store.merge_shards(shards, {"run1": {"swap": 1.5}} if _ == 0 else None, ["run1"])
    assert store.swaps("run1")["a"].image_sha == "sha-a" and len(store.swaps("run1")) == 2
    assert store.run("run1")["status"] == "complete" and store.run("run1")["timings"] == {"swap": 1.5}
    for table, n in (("runs", 1), ("swaps", 2), ("features", 1), ("failures", 1)):
        assert store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == n, table


def _count(db_path, table) -> int:
    """Rows of a table, read-only (never creates the file); 0 while it is missing or locked."""
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=0.5)
        try:
            return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:
        return 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    """One `bench run` "node": its process, the leader of its own process group, and the files that
    receive its output (files, not pipes: nobody has to drain them while the test waits)."""
    proc: subprocess.Popen
    out: Path
    err: Path

    def output(self) -> tuple[str, str]:
        return self.out.read_text(errors="replace"), self.err.read_text(errors="replace")


@pytest.fixture
def short_tmp():
    """A short temporary folder per node, under /tmp: torch shares tensors between processes through a
    Unix socket at TMPDIR/pymp-XXXXXXXX/listener-XXXXXXXX, and an AF_UNIX path has at most 107 bytes.
    Under the test's own folder that came to 113 bytes with pytest-xdist's popen-gwK level (103 without
    it, 4 to spare): the bind failed, rank 0 died and rank 1 waited at the next barrier."""
    folders = [Path(tempfile.mkdtemp(prefix=f"sb-node{node}-", dir="/tmp")) for node in (0, 1)]
    yield folders
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _nodes(tmp_path, short_tmp, store, port, extra=()):
    """Start two "nodes" of one run: rank 0 and rank 1, each with its own node-local folders."""
    nodes = []
    for node in (0, 1):
        local = tmp_path / f"node{node}"
        local.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "NODE_RANK": str(node),
               "SWAPBENCH_SHARD_DIR": str(local / "shards"), "TMPDIR": str(short_tmp[node]), "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "swapbench.cli", *RUN, "--devices", "1", "--set", "engine.num_nodes=2",
               "--set", "engine.strategy=ddp", "--store", str(store), *extra]
        out, err = local / "stdout.txt", local / "stderr.txt"  # a second run of the node writes over them
        with open(out, "w") as fo, open(err, "w") as fe:
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fo, stderr=fe, start_new_session=True)
        nodes.append(Node(proc, out, err))
    return nodes


def _stop(nodes):
    """Kill every process of the nodes still running (each node's process group) and reap them."""
    for node in nodes:
        if node.proc.poll() is None:
            os.killpg(node.proc.pid, signal.SIGKILL)
        node.proc.wait()


def _report(nodes) -> str:
    return "\n".join(f"--- rank {i} (exit {n.proc.returncode}) stdout:\n{n.output()[0][-1500:]}\n"
                     f"--- rank {i} stderr:\n{n.output()[1][-3000:]}" for i, n in enumerate(nodes))


def _finish(nodes, timeout=600):
    """Wait for both nodes; [(stdout, stderr)] when both exited 0. A failed rank stops its peer at once
    (it would wait at the next barrier until the timeout), as does the timeout; either fails the test
    with both ranks' output."""
    deadline = time.monotonic() + timeout
    while any(n.proc.poll() is None for n in nodes):
        failed = any(n.proc.returncode not in (None, 0) for n in nodes)
        if failed or time.monotonic() > deadline:
            _stop(nodes)
            why = "a rank failed" if failed else f"no end after {timeout} s"
            raise AssertionError(f"{why}:\n{_report(nodes)}")
        time.sleep(0.2)
    assert all(n.proc.returncode == 0 for n in nodes), _report(nodes)
    return [n.output() for n in nodes]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    store = tmp_path_factory.mktemp("one") / "one.sqlite"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "swapbench.cli", *RUN, "--store", str(store)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return store


def _assert_same_store(got, expected):
    assert_same_results(aggregates(got), aggregates(expected))
    assert pair_values(got, "classic") == pair_values(expected, "classic")
    for table in ("faces", "images", "swaps", "failures"):
        assert _rows(got, table) == _rows(expected, table), table
    a, b = _rows(got, "features"), _rows(expected, "features")
    assert [r[:4] for r in a] == [r[:4] for r in b]
    for ra, rb in zip(a, b):
        if ra[4] is not None:
            np.testing.assert_allclose(np.frombuffer(ra[4], np.float32), np.frombuffer(rb[4], np.float32), atol=1e-5)
    db = sqlite3.connect(got)
    assert db.execute("SELECT status FROM runs").fetchall() == [("complete",)]
    assert db.execute("SELECT count(*), count(DISTINCT pair_id) FROM swaps").fetchone() == (4, 4)


def test_two_nodes_merge_into_the_store_of_one_process(one_process, tmp_path, short_tmp):
    store = tmp_path / "shared" / "results.sqlite"
    _finish(_nodes(tmp_path, short_tmp, store, _free_port()))
    _assert_same_store(store, one_process)
    # every shard was merged and removed; each node wrote only into its own folder
    assert not list((store.parent / "results.files" / "shards").rglob("*.sqlite"))
    assert (tmp_path / "node0" / "shards" / "rank0").is_dir() and (tmp_path / "node1" / "shards" / "rank1").is_dir()


def test_a_killed_rank_resumes_without_duplicates(one_process, tmp_path, short_tmp):
    store = tmp_path / "shared" / "results.sqlite"
    nodes = _nodes(tmp_path, short_tmp, store, _free_port())
    # Wait until the first features are merged and rank 1 writes more into its node-local shard, then kill it.
    t0 = time.time()
    while not (_count(store, "features") and any(_count(s, "features") for s in
                                                  (tmp_path / "node1" / "shards" / "rank1").glob("shard-*.sqlite"))):
        if time.time() - t0 > 300 or any(n.proc.poll() is not None for n in nodes):
            _stop(nodes)
            raise AssertionError(f"the run ended or stalled before the kill:\n{_report(nodes)}")
        time.sleep(0.05)
    _stop(nodes[1:])
    # Its peer waits at the next barrier (or fails there): the job is over, as a scheduler would end it.
    time.sleep(1)
    _stop(nodes)
    assert sqlite3.connect(store).execute("SELECT status FROM runs").fetchone() == ("running",)
    assert list((tmp_path / "node1" / "shards" / "rank1").glob("shard-*.sqlite"))  # left behind, merged below

    (_, err0), _ = _finish(_nodes(tmp_path, short_tmp, store, _free_port()))
    assert "resuming run" in err0
    _assert_same_store(store, one_process)
    assert not list((store.parent / "results.files" / "shards").rglob("*.sqlite"))


# --- a batched detector's network over many images at once ---------------------------------------------


def _protocol_with_bad_inputs(root):
    from bad_inputs import write_corpus

    from swapbench.datasets import ImageRef, Protocol

    files = write_corpus(root)
    refs = {k: r for k, r in list(get_protocol("samples").images.items())[:3]}
    for name in ("truncated.jpg", "no_face.png", "several_faces.jpg", "grayscale.png", "missing.jpg"):
        refs[name] = ImageRef(name, name, str(files[name]))
    return Protocol("batched", "1", "samples and bad inputs", refs, [])


def test_fan_in_batches_gives_the_crops_and_rows_of_image_by_image(tmp_path, monkeypatch):
    """face_alignment's network on 3 images per forward in this process, HOG boxes and FAN inputs made
    in two workers: the same crops and store rows as the whole detector per image in one process,
    with unreadable, faceless, several-face and grayscale images among them."""
    from test_detectors import RandomFAN, _save_fan

    from swapbench.faces import fan

    _save_fan(RandomFAN(), tmp_path)
    protocol = _protocol_with_bad_inputs(tmp_path / "images")
    conventions = ["ffhq_256", "arcface_112"]
    forwards = []  # FAN inputs per forward in this process (the workers' own calls are not seen)
    heatmaps = fan.FAN.heatmaps
    monkeypatch.setattr(fan.FAN, "heatmaps", lambda self, crops: forwards.append(len(crops)) or heatmaps(self, crops))
    runs = {}
    for name, workers, batch in (("one", 1, 1), ("batched", 2, 3)):
        store = Store(tmp_path / name / "r.sqlite")
        crops = prepare(protocol, conventions, store, detector="face_alignment", weights_dir=tmp_path,
                        workers=workers, detect_batch=batch)
        runs[name] = crops, store
        runs[name + " forwards"], forwards[:] = list(forwards), []
    _same_crops_and_rows(runs["one"], runs["batched"])
    # the same faces: one forward per image with faces, or one per 3 readable images (6 of them)
    with_faces = {k for (k, _), c in runs["one"][0].items() if c.ok}
    assert len(runs["one forwards"]) == len(with_faces) == 5
    assert len(runs["batched forwards"]) == 2 and sum(runs["one forwards"]) == sum(runs["batched forwards"])
    reasons = {k[0]: c.reason for k, c in runs["batched"][0].items()}
    assert "no face found" in reasons["no_face.png"] and "faces, kept the largest" in reasons["several_faces.jpg"]
    assert "unreadable" in reasons["truncated.jpg"] and runs["batched"][0]["grayscale.png", "ffhq_256"].ok
    # A second batched pass finds every row and recomputes nothing.
    again = prepare(protocol, conventions, runs["batched"][1], detector="face_alignment", weights_dir=tmp_path,
                    workers=1, detect_batch=3)
    assert {k: c.sha for k, c in again.items()} == {k: c.sha for k, c in runs["batched"][0].items()}


def test_scrfd_with_a_free_batch_axis_runs_one_forward_per_batch(tmp_path, monkeypatch):
    """An SCRFD export with a batch axis goes through one session call per batch, with the crops and rows
    of one call per image."""
    import dataclasses

    import onnxruntime
    import torch
    from test_scrfd import TinySCRFD, _export

    from swapbench.faces import detect

    class KeepBatch(torch.nn.Module):  # [B * N, C] -> [B, N, C], as exports with a free batch axis give
        def __init__(self):
            super().__init__()
            self.net = TinySCRFD(noise=0.05)

        def forward(self, x):
            return tuple(o.reshape(x.shape[0], -1, o.shape[-1]) for o in self.net(x))

    card = dataclasses.replace(detect.SCRFD.weights[0], sha256=None)
    monkeypatch.setattr(detect.SCRFD, "weights", (card,))
    _export(KeepBatch(), tmp_path / card.filename, dynamic_batch=True)
    calls = []
    run = onnxruntime.InferenceSession.run
    monkeypatch.setattr(onnxruntime.InferenceSession, "run",
                        lambda self, names, feed: calls.append(len(next(iter(feed.values())))) or run(self, names, feed))
    protocol = _protocol_with_bad_inputs(tmp_path / "images")
    runs = {}
    for name, batch in (("one", 1), ("batched", 4)):
        calls.clear()
        store = Store(tmp_path / name / "r.sqlite")
        runs[name] = prepare(protocol, ["ffhq_256"], store, detector="scrfd", weights_dir=tmp_path,
                             detect_batch=batch), store
        runs[name + " calls"] = list(calls)
    _same_crops_and_rows(runs["one"], runs["batched"])
    # 6 readable images: 6 single calls, or batches of 4 and 2 (the truncated and missing files have none)
    assert runs["one calls"] == [1] * 6 and runs["batched calls"] == [4, 2]
    assert sum(c.ok for c in runs["batched"][0].values()) >= 1


def test_detection_batch_follows_the_device_unless_set():
    from swapbench.bench import config
    from swapbench.bench.engine import detection_device

    assert detection_device(config.load((), {"engine": {"accelerator": "cpu"}})) == {"device": "cpu", "detect_batch": 1}
    cfg = config.load((), {"engine": {"accelerator": "cpu", "detect_batch": 16}})
    assert detection_device(cfg) == {"device": "cpu", "detect_batch": 16}


def test_face_workers_by_default_only_where_they_pay_for_their_start(monkeypatch):
    from swapbench.bench import config, engine

    monkeypatch.setattr(engine, "default_workers", lambda: 16)
    cfg = config.load()
    assert engine.face_workers(cfg, 36) == 1  # in this process
    assert engine.face_workers(cfg, 3 * engine.IMAGES_PER_WORKER + 5) == 3
    assert engine.face_workers(cfg, 2000) == 16
    assert engine.face_workers(config.load((), {"engine": {"num_workers": 4}}), 36) == 4  # as set


def _traced_peak(fn):
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_set_level_scoring_makes_no_copy_of_all_swap_features(tmp_path):
    """FID, FID-inf, KID, PRD and k-NN precision/recall read blocks and subsets of the one float32
    matrix of swap features: numpy's peak grows with the number of swaps by less than half that
    matrix (a single float64 copy of it would be twice its size)."""
    from swapbench.metrics import distribution

    rng = np.random.default_rng(0)
    ref = rng.standard_normal((300, 64)).astype(np.float32)
    stats = distribution.reference_stats([str(i) for i in range(300)], ref, "test/clean", tmp_path)
    options = {"min_samples": 64, "prd_clusters": 5, "prd_runs": 1, "knn_k": 3}
    peaks, sizes = [], []
    for n in (2000, 8000):
        fake = (rng.standard_normal((n, 64)) * 1.1 + 0.1).astype(np.float32)
        values = {}
        peaks.append(_traced_peak(lambda: values.update(distribution.score(fake, stats, options, seed=0)[0])))
        sizes.append(fake.nbytes)
        assert 0 < values["fid"] < 10 and 0 < values["recall"] <= 1
    assert peaks[1] - peaks[0] < 0.5 * (sizes[1] - sizes[0]), (peaks, sizes)


def test_feature_matrix_keeps_the_order_repeats_and_only_vectors_that_exist(tmp_path):
    from swapbench.bench.scoring import feature_matrix

    store = Store(tmp_path / "s.sqlite")
    vectors = {f"s{i}": np.full(3, i, np.float32) for i in range(4)}
    store.put_features("b", [(sha, True, None, v) for sha, v in vectors.items()] + [("bad", False, "no face", None)])
    got = feature_matrix(store, "b", ["s2", "bad", "s0", "s2", "missing", "s3"], 3)
    np.testing.assert_array_equal(got, np.stack([vectors[s] for s in ("s2", "s0", "s2", "s3")]))
    assert got.dtype == np.float32
