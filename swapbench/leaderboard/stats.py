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

Set-level metrics (FID, PRD, precision/recall) have no per-pair values; they are not compared here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

ALPHA = 0.05


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


def bootstrap_mean_ci(values: np.ndarray, resamples: int = 1000, seed: int = 0,
                      level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the mean (of per-pair differences, for a paired interval)."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n < 2 or resamples <= 0:
        return None, None
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    step = max(1, 2_000_000 // n)  # resamples per chunk: bounded memory on large protocols
    for i in range(0, resamples, step):
        k = min(step, resamples - i)
        means[i:i + k] = values[rng.integers(0, n, size=(k, n))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


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
    lo, hi = bootstrap_mean_ci(d, resamples, seed)
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
    both evaluated, A − B with its paired bootstrap interval, the Wilcoxon p-value and its Holm
    correction over the per-pair metrics of that protocol. Set-level metrics (FID, …) are listed with
    their stored values and difference only. Raises LookupError naming what is missing."""
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
        for c in compare_all(tabs, metrics, [a, b], common="pair", resamples=engine.get("bootstrap_resamples", 1000),
                             seed=engine.get("seed", 0)):
            rows.append({"protocol": proto, "metric": c.metric, "n": c.n, "a": c.mean_a, "b": c.mean_b, "diff": c.diff,
                         "ci_low": c.ci_low, "ci_high": c.ci_high, "p": c.p, "p_holm": c.p_holm,
                         "significant": c.significant,
                         "better": ("" if not c.significant else
                                    (a if (c.diff > 0) == COLUMNS[c.metric].higher_is_better else b))})
        agg_a, agg_b = store.aggregates(ra["run_id"]), store.aggregates(rb["run_id"])
        for m in COLUMNS:
            if m in set_level and m in agg_a and m in agg_b:
                va, vb = agg_a[m]["value"], agg_b[m]["value"]
                rows.append({"protocol": proto, "metric": m, "n": min(agg_a[m]["n"], agg_b[m]["n"]), "a": va, "b": vb,
                             "diff": va - vb, "ci_low": None, "ci_high": None, "p": None, "p_holm": None,
                             "significant": None, "better": "(set-level: no paired test)"})
    return rows
