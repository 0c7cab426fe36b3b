"""Statistics of the leaderboard on synthetic stores and per-pair values: common pairs do not favour a
method that fails on the hard pairs; the paired test finds a known effect and keeps its false-positive
rate near 5% when there is none; Holm's correction; `bench compare`."""

import numpy as np
import pandas as pd
import pytest

from swapbench.bench.scoring import confidence_interval
from swapbench.bench.store import Store
from swapbench.leaderboard import stats, tables

PAIRS = 60


def _add_run(store, method, values, protocol="synthetic", failed=()):
    """A complete run with pose_error values {pair_id: value}; `failed` pairs have a failure row."""
    run_id = f"run-{method}"
    config = {"engine": {"bootstrap_resamples": 300, "seed": 0}, "fid": {"min_samples": 2048}}
    provenance = {"protocol": {"pairs": PAIRS}, "git_revision": "test"}
    store.start_run(run_id, protocol, "hash0", method, True, config, provenance)
    store.put_failures(run_id, [(p, "pose", "swap: no face found") for p in failed])
    rows = [(p, "pose_error", v) for p, v in values.items()]
    v = np.array(list(values.values()))
    agg = [("pose_error", float(v.mean()), None, None, len(v), PAIRS - len(v), "mediapipe_pose")]
    store.put_results(run_id, rows, agg)
    store.finish_run(run_id)


def _pair(i):
    return f"p{i:03d}"


@pytest.fixture
def failing_store(tmp_path):
    """`robust` and `fragile` are equally good on every pair both evaluate (fragile slightly worse);
    fragile fails on the 15 pairs where robust does worst, so its all-pairs mean looks far better."""
    rng = np.random.default_rng(1)
    base = np.linspace(1, 30, PAIRS)  # pose error, lower is better: the last pairs are the hard ones
    robust = {_pair(i): float(base[i] + rng.normal(0, 0.5)) for i in range(PAIRS)}
    hard = {_pair(i) for i in range(PAIRS - 15, PAIRS)}
    fragile = {p: v + 1.0 for p, v in robust.items() if p not in hard}
    store = Store(tmp_path / "s.sqlite")
    _add_run(store, "robust", robust)
    _add_run(store, "fragile", fragile, failed=sorted(hard))
    return store, robust, fragile


def test_common_pairs_do_not_favour_the_failing_method(failing_store):
    store, robust, fragile = failing_store
    df = tables.collect(store)
    row = df[df["metric"] == "pose_error"].set_index("method")
    # all-pairs means: the failing method looks better
    assert row.loc["fragile", "value"] < row.loc["robust", "value"]
    # common pairs: the failing method is worse, as it is on every pair both evaluated
    assert row.loc["fragile", "value_common"] > row.loc["robust", "value_common"]
    assert row.loc["robust", "n_common"] == row.loc["fragile", "n_common"] == PAIRS - 15
    assert row.loc["robust", "best_or_tied"] is True
    assert row.loc["fragile", "best_or_tied"] is False  # +1.0 on every pair: significantly worse
    md = tables.markdown(df, store)
    assert f"on {PAIRS - 15} of {PAIRS} pairs common to all 2 methods" in md
    assert f"{PAIRS - 15}/{PAIRS} evaluated, 15 failed" in md  # coverage stays beside the values
    headline = md.split("Each method on all the pairs")[0]
    robust_line = next(line for line in headline.splitlines() if line.startswith("| robust |"))
    assert "**" in robust_line
    fragile_line = next(line for line in headline.splitlines() if line.startswith("| fragile |"))
    assert "**" not in fragile_line
    # the all-pairs table is still there
    assert f"(n={PAIRS - 15})" in md.split("Each method on all the pairs")[1]


def test_csv_carries_both(failing_store, tmp_path):
    """The CSV (written from collect's frame) has each method's all-pairs and common-pairs values."""
    store, *_ = failing_store
    tables.collect(store).to_csv(tmp_path / "lb.csv", index=False)
    csv = pd.read_csv(tmp_path / "lb.csv")
    assert {"value", "ci_low", "value_common", "ci_low_common", "n_common", "best_or_tied"} <= set(csv.columns)


def test_known_effect_is_found():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 80)
    b = a + 0.5 + rng.normal(0, 0.5, 80)
    c = stats.compare_pair("pose_error", "a", "b", a, b, resamples=500, seed=0)
    assert c.p < 1e-6
    assert c.ci_low < -0.5 + 0.2 and c.ci_high > -0.5 - 0.2 and c.ci_high < 0  # interval holds the effect, not 0
    assert c.diff == pytest.approx(a.mean() - b.mean())


def test_false_positive_rate_near_five_percent():
    """Many seeded draws with no effect: the test rejects at the 5% level about 5% of the time, and
    the paired bootstrap interval excludes 0 about as often."""
    draws, n = 600, 40
    rejected, excluded = 0, 0
    for seed in range(draws):
        rng = np.random.default_rng(seed)
        shared = rng.normal(0, 1, n)  # the pair's difficulty, common to both methods
        a, b = shared + rng.normal(0, 1, n), shared + rng.normal(0, 1, n)
        rejected += stats.wilcoxon_p(a - b) < 0.05
        if seed < 200:
            lo, hi = confidence_interval(a - b, 400, seed)
            excluded += lo > 0 or hi < 0
    rate = rejected / draws
    assert 0.03 <= rate <= 0.075, rate
    assert excluded / 200 <= 0.10, excluded


def test_holm():
    p = [0.01, 0.04, 0.03, 0.005]
    adj = stats.holm(p)
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert adj.tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([]).size == 0
    assert stats.holm([0.9, 0.8]).max() <= 1.0


def test_no_difference_is_not_significant_and_ties_are_marked():
    rng = np.random.default_rng(3)
    idx = [_pair(i) for i in range(50)]
    x = rng.normal(10, 1, 50)
    t = {"a": pd.DataFrame({"pose_error": x}, index=idx),
         "b": pd.DataFrame({"pose_error": x + rng.normal(0, 0.01, 50)}, index=idx),
         "c": pd.DataFrame({"pose_error": x + 3}, index=idx)}
    comps = stats.compare_all(t, ["pose_error"], resamples=200)
    assert len(comps) == 3
    means = {m: float(v["pose_error"].mean()) for m, v in t.items()}
    best, marked = stats.best_and_ties(means, comps, "pose_error", higher_is_better=False)
    assert marked == {"a", "b"} and best in marked
    assert stats.wilcoxon_p(np.zeros(10)) == 1.0


def test_bench_compare(failing_store, capsys):
    from swapbench.cli import main

    store, *_ = failing_store
    assert main(["compare", "robust", "fragile", "--store", str(store.path), "--format", "json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    (row,) = [r for r in rows if r["metric"] == "pose_error"]
    assert row["n"] == PAIRS - 15 and row["diff"] == pytest.approx(-1.0)
    assert row["significant"] is True and row["p_holm"] < 0.05
    assert main(["compare", "robust", "nosuch", "--store", str(store.path)]) == 2


def test_subset_fid_equals_fid_and_paired_fid_bootstrap():
    from swapbench.metrics.fid_infinity import fid_of

    rng = np.random.default_rng(0)
    d = 48
    ref = rng.normal(0, 1, (400, d))
    mr, cr = ref.mean(0), np.cov(ref, rowvar=False)
    for n in (30, 120):  # below and above the feature dimension
        x = rng.normal(0.1, 1, (n, d))
        idx = rng.integers(0, n, n)  # a resample with repeats
        assert stats.SubsetFID(x, mr, cr)(idx) == pytest.approx(fid_of(x[idx], mr, cr), rel=1e-7)
        # stored features are float32: used as they are, the result is that of their float64 values
        x32 = x.astype(np.float32)
        expected = fid_of(x32[idx].astype(np.float64), mr, cr)
        assert stats.SubsetFID(x32, mr, cr)(idx) == pytest.approx(expected, rel=1e-7)
    a = rng.normal(0, 1, (40, d))
    worse = stats.compare_fid(a, a + rng.normal(0.3, 0.3, (40, d)), mr, cr, resamples=150)
    assert worse.diff < 0 and worse.ci_high < 0 and worse.p < 0.05
    same = stats.compare_fid(a, rng.normal(0, 1, (40, d)), mr, cr, resamples=150)
    assert same.ci_low < 0 < same.ci_high and same.p > 0.05


def test_bounds_are_not_ranked(failing_store):
    """With the `target` bound in the table (pose error 0), the best of the column is still a method."""
    store, robust, _ = failing_store
    _add_run(store, "target", {p: 0.0 for p in robust})
    row = tables.collect(store).query("metric == 'pose_error'").set_index("method")
    assert row.loc["robust", "best_or_tied"] is True and pd.isna(row.loc["target", "best_or_tied"])
    assert row.loc["target", "n_common"] == PAIRS - 15


def test_a_run_without_any_value_keeps_its_row(failing_store):
    """A method whose every pair failed: its row shows its coverage; the others keep their values."""
    store, robust, _ = failing_store
    run_id = "run-broken"
    store.start_run(run_id, "synthetic", "hash0", "broken", True,
                    {"engine": {"bootstrap_resamples": 300, "seed": 0}, "fid": {"min_samples": 2048}},
                    {"protocol": {"pairs": PAIRS}, "git_revision": "test"})
    store.put_failures(run_id, [(p, "swap", "boom") for p in robust])
    store.put_results(run_id, [], [])
    store.finish_run(run_id)
    md = tables.markdown(tables.collect(store), store)
    assert f"| broken | – | 0/{PAIRS} evaluated, {PAIRS} failed |" in md
    assert f"on {PAIRS - 15} of {PAIRS} pairs common to all 2 methods" in md
