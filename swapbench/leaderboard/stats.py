"""Statistics over stored per-pair values: common pairs, paired differences and their significance.

Why common pairs. A method's mean over the pairs *it* evaluated rewards failing on hard pairs: a
method that fails exactly where another does worst looks better than it is. The leaderboard's headline
values are therefore means over the pairs that every listed method evaluated (per column), with each
method's coverage beside them, and the all-pairs values kept in a second table and in the CSV.

Paired comparison of two methods on one metric, over the pairs both (or all) evaluated:

- the difference of the means (A − B, equal to the mean of the per-pair differences);
- a 95% paired percentile bootstrap interval: the pairs are resampled with replacement and the mean
  difference recomputed (the two methods' values of a pair always travel together);
- a two-sided Wilcoxon signed-rank test of the per-pair differences (scipy; zero differences dropped,
  as Wilcoxon does; all differences zero gives p = 1);
- Holm's step-down correction of the p-values over every comparison of one table (all metrics and all
  pairs of methods), which keeps the probability of any false "significant" in the table at 5% or less.

FID is compared on the pairs both methods swapped (`compare_fid`): a paired bootstrap over pairs for
the interval (each resample recomputes both FIDs on the drawn pairs' swaps against the fixed
reference) and a paired sign-flip permutation test for the p-value, which joins the Holm family of
`bench compare`. The other set-level values (KID, FID∞, PRD,
precision/recall) are listed with their difference only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from swapbench.bench.scoring import confidence_interval

ALPHA = 0.05
FID_RESAMPLES = 200  # each resample recomputes two FIDs


def pair_table(rows) -> pd.DataFrame:
    """(pair_id, metric, value) rows (Store.pair_values) -> a frame indexed by pair id, one column per metric."""
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(list(rows), columns=["pair_id", "metric", "value"])
    return df.pivot(index="pair_id", columns="metric", values="value")


def common_pairs(tables: dict[str, pd.DataFrame], metric: str) -> list[str]:
    """The pairs with a value of `metric` in every method that has any value of it, sorted."""
    sets = [set(t.index[t[metric].notna()]) for t in tables.values() if metric in t.columns and t[metric].notna().any()]
    return sorted(set.intersection(*sets)) if sets else []


def wilcoxon_p(diff: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (1.0 when none is non-zero)."""
    diff = np.asarray(diff, dtype=np.float64)
    if not np.any(diff != 0):
        return 1.0
    return float(wilcoxon(diff, zero_method="wilcox", alternative="two-sided").pvalue)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control over all the given tests)."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


@dataclass
class Comparison:
    metric: str
    a: str
    b: str
    n: int  # pairs compared
    mean_a: float
    mean_b: float
    diff: float  # mean_a - mean_b
    ci_low: float | None
    ci_high: float | None
    p: float  # Wilcoxon signed-rank, uncorrected
    p_holm: float = float("nan")

    @property
    def significant(self) -> bool:
        return self.p_holm < ALPHA


def compare_pair(metric: str, a: str, b: str, va: np.ndarray, vb: np.ndarray, resamples=1000, seed=0) -> Comparison:
    """Paired comparison of two methods' values on the same pairs (aligned arrays)."""
    va, vb = np.asarray(va, np.float64), np.asarray(vb, np.float64)
    d = va - vb
    if len(d) == 0:
        nan = float("nan")
        return Comparison(metric, a, b, 0, nan, nan, nan, None, None, 1.0)
    lo, hi = confidence_interval(d, resamples, seed)  # the interval of the mean paired difference
    return Comparison(metric, a, b, len(d), float(va.mean()), float(vb.mean()), float(d.mean()), lo, hi, wilcoxon_p(d))


def compare_all(tables: dict[str, pd.DataFrame], metrics: list[str], methods: list[str] | None = None,
                common: str = "all", resamples: int = 1000, seed: int = 0) -> list[Comparison]:
    """Every metric x every two methods, Holm-corrected together.

    common="all": each metric on the pairs every method of `tables` evaluated (the leaderboard's
    headline pairs); common="pair": on the pairs the two compared methods both evaluated.
    """
    methods = methods or list(tables)
    out = []
    for metric in metrics:
        shared = common_pairs(tables, metric) if common == "all" else None
        for a, b in itertools.combinations(methods, 2):
            ta, tb = tables[a], tables[b]
            if metric not in ta.columns or metric not in tb.columns:
                continue
            pairs = shared if shared is not None else sorted(
                set(ta.index[ta[metric].notna()]) & set(tb.index[tb[metric].notna()]))
            if not pairs:
                continue
            out.append(compare_pair(metric, a, b, ta.loc[pairs, metric].to_numpy(), tb.loc[pairs, metric].to_numpy(),
                                    resamples, seed))
    for c, adj in zip(out, holm([c.p for c in out])):
        c.p_holm = float(adj)
    return out


def best_and_ties(means: dict[str, float], comparisons: list[Comparison], metric: str,
                  higher_is_better: bool) -> tuple[str | None, set[str]]:
    """The best method of a column (by its mean on common pairs) and every method not significantly
    different from it (Holm-corrected); the set includes the best."""
    valid = {m: v for m, v in means.items() if v is not None and np.isfinite(v)}
    if not valid:
        return None, set()
    best = (max if higher_is_better else min)(valid, key=valid.get)
    marked = {best}
    for c in comparisons:
        if c.metric == metric and best in (c.a, c.b) and not c.significant:
            marked.add(c.b if c.a == best else c.a)
    return best, marked


def compare_methods(store, a: str, b: str, protocol: str | None = None, include_unpublishable: bool = True) -> list[dict]:
    """`bench compare A B`: per protocol both methods ran, every metric: A's and B's mean on the pairs
    both evaluated, A − B with its paired bootstrap interval, the p-value (Wilcoxon; paired bootstrap for
    FID on the pairs both swapped) and its Holm correction over the compared metrics of that protocol.
    Other set-level metrics are listed with their stored values and difference only. Raises
    LookupError naming what is missing."""
    from swapbench.metrics import COLUMNS, FAMILIES

    set_level = {c.name for f in FAMILIES.values() if f.compares_with == "reference" for c in f.columns}
    runs: dict[tuple[str, str], dict] = {}
    for r in store.latest_runs(protocol, publishable_only=not include_unpublishable):
        runs[(r["protocol"], r["method"])] = r
    protocols = sorted({p for p, m in runs if m == a} & {p for p, m in runs if m == b})
    if not protocols:
        known = sorted({m for _, m in runs})
        raise LookupError(f"no protocol{f' {protocol}' if protocol else ''} has complete runs of both {a!r} and {b!r} "
                          f"in {store.path}; methods with runs: {', '.join(known) or 'none'}")
    rows = []
    for proto in protocols:
        ra, rb = runs[(proto, a)], runs[(proto, b)]
        engine = ra["config"].get("engine", {})
        tabs = {a: pair_table(store.pair_values(ra["run_id"])), b: pair_table(store.pair_values(rb["run_id"]))}
        metrics = [m for m in COLUMNS if m not in set_level and m in tabs[a].columns and m in tabs[b].columns]
        resamples, seed = engine.get("bootstrap_resamples", 1000), engine.get("seed", 0)
        comps = compare_all(tabs, metrics, [a, b], common="pair", resamples=resamples, seed=seed)
        fid = compare_fid_runs(store, ra, rb, resamples=min(resamples, FID_RESAMPLES), seed=seed)
        if fid is not None:
            comps.append(fid)
        for c, adj in zip(comps, holm([c.p for c in comps])):
            c.p_holm = float(adj)
        for c in comps:
            rows.append({"protocol": proto, "metric": c.metric, "n": c.n, "a": c.mean_a, "b": c.mean_b, "diff": c.diff,
                         "ci_low": c.ci_low, "ci_high": c.ci_high, "p": c.p, "p_holm": c.p_holm,
                         "significant": c.significant,
                         "better": ("" if not c.significant else
                                    (a if (c.diff > 0) == COLUMNS[c.metric].higher_is_better else b))})
        agg_a, agg_b = store.aggregates(ra["run_id"]), store.aggregates(rb["run_id"])
        for m in COLUMNS:
            if m in set_level and m in agg_a and m in agg_b and not (m == "fid" and fid is not None):
                va, vb = agg_a[m]["value"], agg_b[m]["value"]
                rows.append({"protocol": proto, "metric": m, "n": min(agg_a[m]["n"], agg_b[m]["n"]), "a": va, "b": vb,
                             "diff": va - vb, "ci_low": None, "ci_high": None, "p": None, "p_holm": None,
                             "significant": None, "better": "(set-level: no paired test)"})
    return rows


class SubsetFID:
    """FID of any resample (indices, repeats allowed) of one method's swap features against a fixed
    reference, without recomputing products: with G = X Σ_r Xᵀ and K = X Xᵀ precomputed, the trace term
    of a resample is the eigenvalue sum of its double-centred block of G (n ≤ d), equal to FID's
    tr((Σ_r Σ_f)^½); above the feature dimension it is computed in feature space."""

    def __init__(self, features: np.ndarray, ref_mean: np.ndarray, ref_cov: np.ndarray):
        from swapbench.metrics.fid_infinity import _sqrt_psd

        self.x = np.asarray(features)  # kept as given: above d rows fid_of converts one chunk at a time
        self.ref_mean = np.asarray(ref_mean, np.float64)
        self.ref_cov = np.asarray(ref_cov, np.float64)
        self.small = len(self.x) <= self.x.shape[1]
        self.const = float(self.ref_mean @ self.ref_mean + np.trace(self.ref_cov))
        if self.small:
            x = self.x.astype(np.float64)
            self.g = x @ self.ref_cov @ x.T
            self.k = x @ x.T
            self.xm = x @ self.ref_mean
        else:
            self.sqrt = _sqrt_psd(self.ref_cov)

    def __call__(self, idx) -> float:
        from swapbench.metrics.fid_infinity import fid_of

        idx = np.asarray(idx)
        if not self.small:
            return fid_of(self.x, self.ref_mean, self.ref_cov, self.sqrt, index=idx)
        m = len(idx)
        k = self.k[np.ix_(idx, idx)]
        mean_sq = k.sum() / m**2
        trace_fake = (np.trace(k) - m * mean_sq) / (m - 1)
        h = _double_centre(self.g[np.ix_(idx, idx)]) / (m - 1)
        tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((h + h.T) / 2), 0, None)).sum()
        return float(mean_sq - 2 * self.xm[idx].mean() + self.const + trace_fake - 2 * tr_sqrt)


def _double_centre(a: np.ndarray) -> np.ndarray:
    return a - a.mean(axis=0, keepdims=True) - a.mean(axis=1, keepdims=True) + a.mean()


def compare_fid(a: np.ndarray, b: np.ndarray, ref_mean: np.ndarray, ref_cov: np.ndarray, resamples: int = 200,
                seed: int = 0, metric: str = "fid", names=("a", "b")) -> Comparison:
    """Paired comparison of FID: `a` and `b` are the two methods' swap features of the same pairs, row i
    of each from pair i.

    Interval: paired bootstrap over pairs — each resample draws pairs with replacement and recomputes
    both FIDs on the drawn pairs; the percentile interval of FID_a − FID_b.
    p-value: paired sign-flip permutation test — under "no difference", which method made a pair's swap
    is exchangeable, so each permutation swaps the two methods' swaps of a random half of the pairs and
    recomputes the difference; p = (#|Δ_perm| ≥ |Δ| + 1)/(R + 1). (The bootstrap's own tail p-value
    was measured to be very conservative: 0 of 200 null draws rejected at 5%.)"""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    n = len(a)
    both = SubsetFID(np.concatenate([a, b]), ref_mean, ref_cov)  # rows 0..n-1: a, n..2n-1: b
    everything = np.arange(n)
    va, vb = both(everything), both(everything + n)
    observed = va - vb
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    for r in range(resamples):
        idx = rng.integers(0, n, n)
        diffs[r] = both(idx) - both(idx + n)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    extreme = 0
    for _ in range(resamples):
        flip = rng.random(n) < 0.5
        ia = np.where(flip, everything + n, everything)
        ib = np.where(flip, everything, everything + n)
        extreme += abs(both(ia) - both(ib)) >= abs(observed) - 1e-12
    p = (extreme + 1) / (resamples + 1)
    return Comparison(metric, names[0], names[1], n, va, vb, observed, float(lo), float(hi), float(p))


def swap_features(store, run: dict, backend: str) -> dict[str, np.ndarray]:
    """pair id -> stored feature of the run's swap (pairs whose swap exists and has a feature)."""
    swaps = {p: s.image_sha for p, s in store.swaps(run["run_id"]).items() if s.ok}
    feats = store.features(backend, set(swaps.values()))
    return {p: feats[s].vector for p, s in swaps.items() if s in feats and feats[s].ok}


def reference_moments(store, run: dict, backend: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean, covariance and count of the stored features of every real face crop of the run's protocol."""
    from swapbench.bench import layout

    key = layout.face_key_of_run(run["config"], run["config"]["face"]["eval_convention"])
    shas = [s for (s,) in store.db.execute("SELECT image_sha FROM images WHERE protocol_hash=? AND image_sha IS NOT NULL",
                                           (run["protocol_hash"],))]
    crops = sorted({f["crop_sha"] for f in (store.face(s, key) for s in shas) if f and f["ok"] and f["crop_sha"]})
    feats = store.features(backend, crops)
    ref = np.stack([feats[c].vector for c in crops if c in feats and feats[c].ok]).astype(np.float64)
    return ref.mean(axis=0), np.cov(ref, rowvar=False), len(ref)


def compare_fid_runs(store, ra: dict, rb: dict, resamples: int = 200, seed: int = 0) -> Comparison | None:
    """The paired FID bootstrap of two runs on the pairs both swapped and embedded; None when the
    stored features do not reproduce the stored FIDs (the reference set could not be rebuilt)."""
    agg_a, agg_b = store.aggregates(ra["run_id"]), store.aggregates(rb["run_id"])
    if "fid" not in agg_a or "fid" not in agg_b or agg_a["fid"]["backend"] != agg_b["fid"]["backend"]:
        return None
    backend = agg_a["fid"]["backend"]
    fa, fb = swap_features(store, ra, backend), swap_features(store, rb, backend)
    try:
        mean, cov, _ = reference_moments(store, ra, backend)
    except ValueError:  # no reference features stored
        return None
    for feats, agg in ((fa, agg_a), (fb, agg_b)):
        if len(feats) < 3:
            return None
        full = SubsetFID(np.stack([feats[p] for p in sorted(feats)]), mean, cov)(np.arange(len(feats)))
        if abs(full - agg["fid"]["value"]) > 1e-3 * max(1.0, abs(agg["fid"]["value"])):
            return None
    pairs = sorted(set(fa) & set(fb))
    if len(pairs) < 3:
        return None
    return compare_fid(np.stack([fa[p] for p in pairs]), np.stack([fb[p] for p in pairs]), mean, cov, resamples, seed,
                       names=(ra["method"], rb["method"]))
