"""The results store: one SQLite file holding runs, face crops, swaps, features, per-pair values and aggregates.

Every table is keyed so that writing the same thing twice is harmless (INSERT OR REPLACE on the
natural key). That is what makes resuming safe: a run killed at any point is resumed by recomputing
only what has no row yet, and a repeated write never duplicates a row. WAL mode and a busy timeout
let several processes (DDP ranks, or two `bench run`s) write to one store.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np
import platformdirs

from swapbench.bench import layout

STORE_ENV = "SWAPBENCH_STORE"
SHARD_ENV = "SWAPBENCH_SHARD_DIR"  # node-local folder for the shards of a multi-node run

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    protocol TEXT NOT NULL,
    protocol_hash TEXT NOT NULL,
    method TEXT NOT NULL,
    publishable INTEGER NOT NULL,
    status TEXT NOT NULL,            -- running | complete
    config TEXT NOT NULL,            -- resolved config, JSON
    provenance TEXT NOT NULL,        -- versions, git revision, weights and backend hashes, seed, JSON
    timings TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    protocol_hash TEXT NOT NULL,
    key TEXT NOT NULL,
    image_sha TEXT,                  -- NULL when the image could not be read
    PRIMARY KEY (protocol_hash, key)
);
CREATE TABLE IF NOT EXISTS faces (
    image_sha TEXT NOT NULL,
    convention TEXT NOT NULL,
    ok INTEGER NOT NULL,
    reason TEXT,                     -- why no crop, or the multi-face choice ("<detector>: 1 face")
    landmarks TEXT,                  -- [N, 2] in crop pixels, JSON (68 dlib-compatible, or the detector's own)
    matrix TEXT,                     -- 2x3 image -> crop, JSON
    crop_sha TEXT,
    detector TEXT NOT NULL DEFAULT 'dlib_hog',  -- face.detector that found the face
    PRIMARY KEY (image_sha, convention)  -- convention: "ffhq_256", "ffhq_256@<detector>", "...+<policy>" (see bench.layout.face_key)
);
CREATE TABLE IF NOT EXISTS swaps (
    run_id TEXT NOT NULL,
    pair_id TEXT NOT NULL,
    ok INTEGER NOT NULL,
    reason TEXT,
    image_sha TEXT,
    PRIMARY KEY (run_id, pair_id)
);
CREATE TABLE IF NOT EXISTS features (
    image_sha TEXT NOT NULL,
    backend TEXT NOT NULL,
    ok INTEGER NOT NULL,
    reason TEXT,
    vector BLOB,                     -- float32
    PRIMARY KEY (image_sha, backend)
);
CREATE TABLE IF NOT EXISTS failures (
    run_id TEXT NOT NULL,
    pair_id TEXT NOT NULL,
    stage TEXT NOT NULL,             -- face | swap | metric family
    reason TEXT NOT NULL,
    PRIMARY KEY (run_id, pair_id, stage)
);
CREATE TABLE IF NOT EXISTS pair_values (
    run_id TEXT NOT NULL,
    pair_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (run_id, pair_id, metric)
);
CREATE TABLE IF NOT EXISTS curves (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,              -- e.g. prd: [precision, recall]
    data TEXT NOT NULL,              -- JSON
    PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS aggregates (
    run_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    ci_low REAL,
    ci_high REAL,
    n INTEGER NOT NULL,              -- pairs that have a value
    n_failed INTEGER NOT NULL,       -- pairs of the run without a value for this metric
    backend TEXT NOT NULL,
    PRIMARY KEY (run_id, metric)
);
"""


class Swap(NamedTuple):
    ok: bool
    reason: str | None  # why the swap failed
    image_sha: str | None  # pixel hash of the stored swap


class Feature(NamedTuple):
    ok: bool
    reason: str | None  # why no vector could be computed
    vector: np.ndarray | None


class Failure(NamedTuple):
    pair_id: str
    stage: str
    reason: str


def default_path() -> Path:
    if os.environ.get(STORE_ENV):
        return Path(os.environ[STORE_ENV]).expanduser()
    return Path(platformdirs.user_data_dir("swapbench")) / "results.sqlite"


class Store:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path).expanduser() if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Images (crops, swaps) live next to the database, addressed by content hash or run.
        self.files = layout.files_dir(self.path)
        self.db = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.w = self.db  # the connection writes go to (a rank's shard in a RankStore)
        self._migrate()

    def _migrate(self):
        """Stores written before detectors were selectable: their faces rows all came from dlib_hog."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(faces)")}
        if "detector" not in columns:
            try:
                self.db.execute("ALTER TABLE faces ADD COLUMN detector TEXT NOT NULL DEFAULT 'dlib_hog'")
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise

    def close(self):
        self.db.close()

    @contextmanager
    def transaction(self):
        self.w.execute("BEGIN IMMEDIATE")
        try:
            yield self.w
        except BaseException:
            self.w.execute("ROLLBACK")
            raise
        self.w.execute("COMMIT")

    def sync(self):
        """Make every process's writes readable by all (a no-op for one shared store; see RankStore)."""

    # --- runs -------------------------------------------------------------------------------
    def run(self, run_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            return None
        cols = [d[0] for d in self.db.execute("SELECT * FROM runs LIMIT 0").description]
        out = dict(zip(cols, row))
        for k in ("config", "provenance", "timings"):
            out[k] = json.loads(out[k])
        return out

    def start_run(self, run_id, protocol, protocol_hash, method, publishable, config, provenance):
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO runs VALUES (?,?,?,?,?,'running',?,?,'{}',?,?)",
                (run_id, protocol, protocol_hash, method, int(publishable), json.dumps(config, sort_keys=True),
                 json.dumps(provenance, sort_keys=True), now, now),
            )
            db.execute("UPDATE runs SET status='running', updated=? WHERE run_id=? AND status!='complete'", (now, run_id))

    def add_timing(self, run_id, stage: str, seconds: float):
        with self.transaction() as db:
            (timings,) = db.execute("SELECT timings FROM runs WHERE run_id=?", (run_id,)).fetchone()
            timings = json.loads(timings)
            timings[stage] = timings.get(stage, 0.0) + seconds
            db.execute("UPDATE runs SET timings=?, updated=? WHERE run_id=?", (json.dumps(timings), time.time(), run_id))

    def finish_run(self, run_id):
        self.w.execute("UPDATE runs SET status='complete', updated=? WHERE run_id=?", (time.time(), run_id))

    def latest_runs(self, protocol: str | None = None, publishable_only: bool = True) -> list[dict]:
        """The newest complete run of each (protocol, method)."""
        q = "SELECT run_id FROM runs WHERE status='complete'"
        args: list = []
        if protocol:
            q += " AND protocol=?"
            args.append(protocol)
        if publishable_only:
            q += " AND publishable=1"
        q += " ORDER BY updated"
        latest: dict = {}
        for (run_id,) in self.db.execute(q, args).fetchall():
            r = self.run(run_id)
            latest[(r["protocol"], r["method"])] = r
        return list(latest.values())

    # --- images and faces ----------------------------------------------------------------------
    def put_image(self, protocol_hash, key, image_sha):
        self.w.execute("INSERT OR REPLACE INTO images VALUES (?,?,?)", (protocol_hash, key, image_sha))

    def image_sha(self, protocol_hash, key) -> str | None:
        row = self.db.execute("SELECT image_sha FROM images WHERE protocol_hash=? AND key=?", (protocol_hash, key)).fetchone()
        return row[0] if row else None

    # --- faces ------------------------------------------------------------------------------
    def face(self, image_sha, convention) -> dict | None:
        row = self.db.execute(
            "SELECT ok, reason, landmarks, matrix, crop_sha, detector FROM faces WHERE image_sha=? AND convention=?",
            (image_sha, convention),
        ).fetchone()
        if row is None:
            return None
        ok, reason, lm, m, crop_sha, detector = row
        return {
            "ok": bool(ok), "reason": reason, "crop_sha": crop_sha, "detector": detector,
            "landmarks": np.array(json.loads(lm), dtype=np.float32) if lm else None,
            "matrix": np.array(json.loads(m)) if m else None,
        }

    def put_face(self, image_sha, convention, ok, reason=None, landmarks=None, matrix=None, crop_sha=None,
                 detector="dlib_hog"):
        self.w.execute(
            "INSERT OR REPLACE INTO faces (image_sha, convention, ok, reason, landmarks, matrix, crop_sha, detector)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (image_sha, convention, int(ok), reason,
             json.dumps(np.asarray(landmarks).tolist()) if landmarks is not None else None,
             json.dumps(matrix.tolist()) if matrix is not None else None, crop_sha, detector),
        )

    # --- swaps ------------------------------------------------------------------------------
    def put_swaps(self, run_id, rows):
        """rows: (pair_id, ok, reason, image_sha)."""
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO swaps VALUES (?,?,?,?,?)", [(run_id, *r) for r in rows])

    def swaps(self, run_id) -> dict[str, "Swap"]:
        rows = self.db.execute("SELECT pair_id, ok, reason, image_sha FROM swaps WHERE run_id=?", (run_id,))
        return {p: Swap(bool(ok), reason, sha) for p, ok, reason, sha in rows}

    # --- features ---------------------------------------------------------------------------
    def put_features(self, backend, rows):
        """rows: (image_sha, ok, reason, vector or None)."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO features VALUES (?,?,?,?,?)",
                [(sha, backend, int(ok), reason, np.asarray(v, np.float32).tobytes() if ok else None)
                 for sha, ok, reason, v in rows],
            )

    def features(self, backend, shas) -> dict[str, "Feature"]:
        return {sha: f._replace(vector=None if f.vector is None else f.vector.copy())
                for sha, f in self.iter_features(backend, shas)}

    def iter_features(self, backend, shas):
        """(sha, Feature) of the stored rows of `shas`, in no particular order; each vector is a read-only
        view of the row's bytes (copy it to keep it beyond the loop)."""
        shas = list(shas)
        for i in range(0, len(shas), 500):
            chunk = shas[i:i + 500]
            q = f"SELECT image_sha, ok, reason, vector FROM features WHERE backend=? AND image_sha IN ({','.join('?' * len(chunk))})"
            for sha, ok, reason, blob in self.db.execute(q, (backend, *chunk)):
                yield sha, Feature(bool(ok), reason, np.frombuffer(blob, np.float32) if blob is not None else None)

    def feature_shas(self, backend, shas) -> set[str]:
        """Which of `shas` have a features row (ok or not), without reading any vector."""
        out, shas = set(), list(shas)
        for i in range(0, len(shas), 500):
            chunk = shas[i:i + 500]
            q = f"SELECT image_sha FROM features WHERE backend=? AND image_sha IN ({','.join('?' * len(chunk))})"
            out.update(sha for (sha,) in self.db.execute(q, (backend, *chunk)))
        return out

    # --- failures, values, aggregates ----------------------------------------------------------
    def put_failures(self, run_id, rows):
        """rows: (pair_id, stage, reason)."""
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO failures VALUES (?,?,?,?)", [(run_id, *r) for r in rows])

    def failures(self, run_id) -> list[Failure]:
        rows = self.db.execute(
            "SELECT pair_id, stage, reason FROM failures WHERE run_id=? ORDER BY pair_id, stage", (run_id,)
        ).fetchall()
        return [Failure(*r) for r in rows]

    def put_results(self, run_id, values, aggregates, curves=None):
        """values: (pair_id, metric, value); aggregates: (metric, value, lo, hi, n, n_failed, backend).

        Scoring is recomputed from stored features as a whole, so its rows replace the old ones.
        """
        with self.transaction() as db:
            db.execute("DELETE FROM pair_values WHERE run_id=?", (run_id,))
            db.execute("DELETE FROM aggregates WHERE run_id=?", (run_id,))
            db.execute("DELETE FROM curves WHERE run_id=?", (run_id,))
            db.executemany("INSERT INTO curves VALUES (?,?,?)",
                           [(run_id, k, json.dumps(v)) for k, v in (curves or {}).items()])
            db.executemany("INSERT INTO pair_values VALUES (?,?,?,?)", [(run_id, *v) for v in values])
            db.executemany("INSERT INTO aggregates VALUES (?,?,?,?,?,?,?,?)", [(run_id, *a) for a in aggregates])

    def pair_values(self, run_id) -> list[tuple[str, str, float]]:
        return self.db.execute(
            "SELECT pair_id, metric, value FROM pair_values WHERE run_id=? ORDER BY pair_id, metric", (run_id,)
        ).fetchall()

    def curves(self, run_id) -> dict:
        return {k: json.loads(v) for k, v in self.db.execute("SELECT name, data FROM curves WHERE run_id=?", (run_id,))}

    def aggregates(self, run_id) -> dict[str, dict]:
        rows = self.db.execute(
            "SELECT metric, value, ci_low, ci_high, n, n_failed, backend FROM aggregates WHERE run_id=?", (run_id,)
        )
        return {m: dict(value=v, ci_low=lo, ci_high=hi, n=n, n_failed=nf, backend=b) for m, v, lo, hi, n, nf, b in rows}

    # --- merging the shards of a multi-node run ------------------------------------------------
    def merge_shards(self, shards, timings=None, finished=()) -> int:
        """Copy every row of the shard files into this store in one transaction; the number of rows read.

        Rows replace rows with the same natural key, so merging a shard twice (a merge repeated after a
        crash between the commit and the removal of the shard files) adds nothing. A run's scoring
        (pair values, aggregates, curves) replaces the run's older scoring as a whole, as put_results does.
        timings: {run_id: {stage: seconds}} added to the runs' timings; finished: run ids marked complete.
        """
        n = 0
        with self.transaction() as db:
            for shard in shards:
                src = sqlite3.connect(f"file:{Path(shard)}?mode=ro", uri=True)
                try:
                    for table in ("runs", "images", "faces", "swaps", "features", "failures"):
                        n += _copy_rows(src, db, table, "INSERT OR IGNORE" if table == "runs" else "INSERT OR REPLACE")
                    # a run the shard saw start again (rerun) is running until finished
                    for (run_id,) in src.execute("SELECT run_id FROM runs").fetchall():
                        db.execute("UPDATE runs SET status='running', updated=? WHERE run_id=? AND status!='complete'",
                                   (time.time(), run_id))
                    scored = {r for t in ("pair_values", "aggregates", "curves")
                              for (r,) in src.execute(f"SELECT DISTINCT run_id FROM {t}")}
                    for run_id in scored:
                        for t in ("pair_values", "aggregates", "curves"):
                            db.execute(f"DELETE FROM {t} WHERE run_id=?", (run_id,))
                    for t in ("pair_values", "aggregates", "curves"):
                        n += _copy_rows(src, db, t, "INSERT OR REPLACE")
                finally:
                    src.close()
            for run_id, stages in (timings or {}).items():
                row = db.execute("SELECT timings FROM runs WHERE run_id=?", (run_id,)).fetchone()
                if row is None:
                    continue
                t = json.loads(row[0])
                for stage, seconds in stages.items():
                    t[stage] = t.get(stage, 0.0) + seconds
                db.execute("UPDATE runs SET timings=?, updated=? WHERE run_id=?", (json.dumps(t), time.time(), run_id))
            for run_id in finished:
                db.execute("UPDATE runs SET status='complete', updated=? WHERE run_id=?", (time.time(), run_id))
        return n


def _copy_rows(src, dst, table, verb) -> int:
    cols = [row[1] for row in src.execute(f"PRAGMA table_info({table})")]
    rows = src.execute(f"SELECT {','.join(cols)} FROM {table}").fetchall()
    dst.executemany(f"{verb} INTO {table} ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", rows)
    return len(rows)


class RankStore(Store):
    """One process's view of the results store in a run over several nodes.

    SQLite must not be written from several hosts at once (WAL needs memory shared on one host, and
    network file systems break its locks). So each rank writes to its own shard, a SQLite file in
    `shard_dir` (node-local, or per rank on the shared file system), and reads the results store
    read-only. At each sync point (after every prediction pass and at the end of a method's run) every
    rank publishes its shard into the shared `<store>.files/shards/merge/` folder (a copy under a
    temporary name, then a rename), all ranks meet at a barrier, global rank 0 alone merges the
    published shards into the results store in one transaction and removes them, and all meet again.
    A rank killed mid-run leaves its shard behind; it is published at the next run's first sync and
    merged like any other (every row is keyed, so nothing is counted twice).
    """

    def __init__(self, path, rank: int, shard_dir=None):
        self.path = Path(path).expanduser()
        self.files = layout.files_dir(self.path)
        self.rank = rank
        self.local = Path(shard_dir).expanduser() / f"rank{rank}" if shard_dir else layout.shards_dir(self.files) / f"rank{rank}"
        self.local.mkdir(parents=True, exist_ok=True)
        self.outbox = layout.shards_dir(self.files) / "merge"
        self.outbox.mkdir(parents=True, exist_ok=True)
        self._timings: dict = {}
        self._finished: list = []
        self._serial = 0
        self.db = self._reader()
        self._open_shard()

    def _reader(self):
        if not self.path.is_file():  # nothing merged yet: an empty store
            db = sqlite3.connect(":memory:", isolation_level=None)
            db.executescript(SCHEMA)
            return db
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=120, isolation_level=None)

    def _open_shard(self):
        self._serial += 1
        self.shard = self.local / f"shard-{os.getpid()}-{self._serial}.sqlite"
        self.w = sqlite3.connect(self.shard, timeout=120, isolation_level=None)
        self.w.execute("PRAGMA journal_mode=DELETE")
        self.w.executescript(SCHEMA)

    def close(self):
        self.db.close()
        self.w.close()

    def add_timing(self, run_id, stage: str, seconds: float):
        stages = self._timings.setdefault(run_id, {})
        stages[stage] = stages.get(stage, 0.0) + seconds

    def finish_run(self, run_id):
        self._finished.append(run_id)

    def put_results(self, run_id, values, aggregates, curves=None):
        if self.rank == 0:  # every rank computes the same synchronised scores; rank 0's are kept
            super().put_results(run_id, values, aggregates, curves)

    def publish(self):
        """Hand this rank's shards (also those a killed earlier run left here) to the merge folder."""
        self.w.close()
        for shard in sorted(self.local.glob("shard-*.sqlite"), key=lambda p: p.stat().st_mtime):
            final = self.outbox / f"rank{self.rank}-{time.time_ns()}-{shard.name}"
            tmp = final.with_name(f".{final.name}.tmp")
            tmp.write_bytes(shard.read_bytes())
            os.replace(tmp, final)
            shard.unlink()

    def merge(self) -> int:
        """Global rank 0: merge every published shard, oldest first, then remove them."""
        shards = sorted(self.outbox.glob("*.sqlite"), key=lambda p: (p.stat().st_mtime, p.name))
        results = Store(self.path)
        try:
            n = results.merge_shards(shards, self._timings, self._finished)
        finally:
            results.close()
        self._timings, self._finished = {}, []
        for shard in shards:
            shard.unlink()
        return n

    def sync(self):
        import torch.distributed as dist

        self.db.close()
        self.publish()
        distributed = dist.is_available() and dist.is_initialized()
        if distributed:
            dist.barrier()
        if self.rank == 0:
            self.merge()
        if distributed:
            dist.barrier()
        self.db = self._reader()
        self._open_shard()


def open_store(path, num_nodes: int = 1, rank: int = 0, shard_dir=None) -> Store:
    """The results store itself on one node; a RankStore (per-rank shard, merged by rank 0) on several."""
    if num_nodes > 1:
        return RankStore(path or default_path(), rank, shard_dir or os.environ.get(SHARD_ENV))
    return Store(path)
