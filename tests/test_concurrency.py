"""Two `bench run` processes on one store at once, and determinism across runs and batch sizes."""

import sqlite3
import subprocess
import sys

from conftest import REPO
from test_run import aggregates, assert_same_results, pair_values


def test_two_processes_share_one_store_and_match_an_independent_run(samples_run, tmp_path):
    reference, _ = samples_run
    store = tmp_path / "shared.sqlite"
    base = [sys.executable, "-m", "swapbench.cli", "run", "--no-progress", "--store", str(store)]
    procs = [
        subprocess.Popen(base + ["--method", "classic,target", "--batch-size", "3"], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        subprocess.Popen(base + ["--method", "classic", "--batch-size", "5"], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
    ]
    for p in procs:
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, err
    got = aggregates(store)
    expected = {k: v for k, v in aggregates(reference).items() if k[0] in ("classic", "target")}
    assert_same_results(got, expected)  # same seed and config: the same numbers, whatever the batch size
    for method in ("classic", "target"):
        assert pair_values(store, method) == pair_values(reference, method)
    db = sqlite3.connect(store)
    assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    assert db.execute("SELECT count(*) FROM swaps").fetchone()[0] == 2 * 72
