"""Leaderboards from the results store: a markdown table (and CSV) per protocol.

Methods are rows, metric columns carry ↑/↓, and coverage says how many pairs were evaluated and how
many failed. The headline table shows each per-pair metric as its mean over the pairs that every listed
method evaluated, with its 95% bootstrap interval, in bold for the column's best method and every
method not significantly different from it (leaderboard/stats.py); a second table and the CSV keep
each method's mean over all the pairs it evaluated. The footer
names the protocol hash, the backends and the runs, so every number can be traced to how it was made.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from swapbench.bench.store import Store
from swapbench.metrics import COLUMNS, FAMILIES, TEMPORAL_COLUMNS, VARIANT_OF, shown_as


def _with_variants(names: set[str]) -> set[str]:
    """Column names with their variants on other features (fid -> fd_dinov2, ...): the same kind of value."""
    return names | {v for v, m in VARIANT_OF.items() if m in names}


TEMPORAL = {c.name for c in TEMPORAL_COLUMNS}  # per clip of a video protocol
SET_LEVEL = _with_variants({c.name for f in FAMILIES.values() if f.compares_with == "reference" for c in f.columns})
UNBIASED_AT_SMALL_N = _with_variants({"kid", "kid_std"})  # set-level values that stay meaningful below fid.min_samples
SMALL_VALUES = _with_variants({"kid", "kid_std"})  # shown with more decimals


def collect(store: Store, protocol: str | None = None, include_unpublishable: bool = False) -> pd.DataFrame:
    rows = []
    for run in store.latest_runs(protocol, publishable_only=not include_unpublishable):
        failed_pairs = {f.pair_id for f in store.failures(run["run_id"])}
        common = {"protocol": run["protocol"], "protocol_hash": run["protocol_hash"], "method": run["method"],
                  "pairs": run["provenance"]["protocol"]["pairs"], "pairs_failed": len(failed_pairs),
                  "run_id": run["run_id"], "git_revision": run["provenance"].get("git_revision"),
                  "min_samples": (run["config"].get("fid") or {}).get("min_samples")}
        aggregates = store.aggregates(run["run_id"])
        for metric, agg in aggregates.items():
            rows.append({**common, "metric": metric, **agg})
        if not aggregates:  # every pair failed: the run still has its row, with its coverage
            rows.append({**common, "metric": NO_VALUE, "value": float("nan"), "ci_low": None, "ci_high": None,
                         "n": 0, "n_failed": common["pairs"], "backend": ""})
    df = pd.DataFrame(rows)
    if rows:
        df = add_common_pairs(df, store)
        df["metric"] = [shown_as(m, b) for m, b in zip(df["metric"], df["backend"])]  # FD-DINOv2, never in FID's column
    return df[[c for c in CSV_COLUMNS if c in df.columns]] if rows else df


CSV_COLUMNS = ("protocol", "protocol_hash", "method", "metric", "value", "ci_low", "ci_high", "n", "n_failed", "backend",
               "value_common", "ci_low_common", "ci_high_common", "n_common", "n_methods_common", "best_or_tied",
               "pairs", "pairs_failed", "run_id", "git_revision", "min_samples")


def add_common_pairs(df: pd.DataFrame, store: Store, pairs: set[str] | None = None,
                     loaded: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Per protocol and per-pair column: the mean on the pairs every listed method evaluated, its 95%
    bootstrap interval, and whether the method is the column's best or not significantly different
    from it (Wilcoxon signed-rank, Holm-corrected over all comparisons of the table)."""
    from swapbench.bench.scoring import confidence_interval
    from swapbench.leaderboard import stats

    df = df.copy()
    for col, default in (("value_common", float("nan")), ("ci_low_common", None), ("ci_high_common", None),
                         ("n_common", pd.NA), ("n_methods_common", pd.NA), ("best_or_tied", pd.NA)):
        df[col] = default
    df["value_common"] = df["value_common"].astype(float)
    df["ci_low_common"] = df["ci_low_common"].astype(object)
    df["ci_high_common"] = df["ci_high_common"].astype(object)
    for _, part in df.groupby(["protocol", "protocol_hash"], sort=False):
        runs = part.drop_duplicates("method").set_index("method")["run_id"]
        tables = {m: loaded[r] if loaded and r in loaded else stats.pair_table(store.pair_values(r))
                  for m, r in runs.items()}
        if pairs is not None:  # a breakdown group
            tables = {m: t[t.index.isin(pairs)] for m, t in tables.items()}
        run = store.run(runs.iloc[0])
        resamples, seed = run["config"]["engine"]["bootstrap_resamples"], run["config"]["engine"]["seed"]
        per_pair = [m for m in COLUMNS if m not in SET_LEVEL and any(m in t.columns for t in tables.values())]
        # The bounds (source, target) are reference rows, not contenders: the best of a column and the
        # Holm family are taken over the other methods, and nothing is marked with fewer than two.
        ranked = [m for m in tables if m not in BOUNDS]
        comparisons = stats.compare_all(tables, per_pair, methods=ranked, common="all", resamples=resamples,
                                        seed=seed) if len(ranked) >= 2 else []
        for metric in per_pair:
            pairs = stats.common_pairs(tables, metric)
            having = [m for m, t in tables.items() if metric in t.columns and t[metric].notna().any()]
            means = {}
            for method in having:
                v = tables[method].loc[pairs, metric].to_numpy() if pairs else np.zeros(0)
                sel = (df["protocol_hash"] == part["protocol_hash"].iloc[0]) & (df["method"] == method) & (df["metric"] == metric)
                if not len(v):
                    continue
                means[method] = float(v.mean())
                lo, hi = confidence_interval(v, resamples, seed)
                idx = df.index[sel]
                df.loc[idx, "value_common"] = means[method]
                df.loc[idx, "ci_low_common"] = lo
                df.loc[idx, "ci_high_common"] = hi
                df.loc[idx, "n_common"] = len(pairs)
                df.loc[idx, "n_methods_common"] = len(having)
            if len([m for m in means if m in ranked]) < 2:
                continue
            _, marked = stats.best_and_ties({m: v for m, v in means.items() if m in ranked}, comparisons, metric,
                                            COLUMNS[metric].higher_is_better)
            for method in (m for m in means if m in ranked):
                sel = (df["protocol_hash"] == part["protocol_hash"].iloc[0]) & (df["method"] == method) & (df["metric"] == metric)
                df.loc[df.index[sel], "best_or_tied"] = method in marked
    return df


BOUNDS = ("source", "target")  # baselines that bound the scores; never marked best
DEFAULT_BREAKDOWN = {"ffpp": "target_identity"}  # FF++: the identity is the video, one target video per pair
NO_VALUE = ""  # the metric of the row standing for a run without any value


NON_NEGATIVE = _with_variants({"fid", "fid_inf"})  # distances: a negative estimate is noise or a failed extrapolation
EXTRAPOLATED = _with_variants({"fid_inf"})  # not shown at all below fid.min_samples


def hidden(row) -> str | None:
    """The footnote mark of a set-level value that is not shown as a number, or None: FID∞ below
    fid.min_samples (†), a negative FID or FID∞ at any n (‡)."""
    if row["metric"] in EXTRAPOLATED and not meaningful(row):
        return "†"
    if row["metric"] in NON_NEGATIVE and pd.notna(row["value"]) and row["value"] < 0:
        return "‡"
    return None


def _cell(row, common: bool = False) -> str:
    """A value with its interval; common=True: the headline value on the pairs common to all methods
    (bold when the column's best or not significantly different from it)."""
    col = COLUMNS.get(row["metric"])
    scale, fmt = (100.0, "{:.1f}") if col and col.percent else (1.0, "{:.5f}" if row["metric"] in SMALL_VALUES else "{:.3f}")
    if col and col.decimals is not None:  # a column that says its own precision (e.g. the temporal ones)
        fmt = f"{{:.{col.decimals}f}}"
    use_common = common and row["metric"] not in SET_LEVEL
    if use_common and pd.isna(row.get("value_common")):
        return "–"
    if mark := hidden(row):
        return f"– (n={row['n']}) {mark}"
    value, lo, hi = ((row["value_common"], row["ci_low_common"], row["ci_high_common"]) if use_common
                     else (row["value"], row["ci_low"], row["ci_high"]))
    text = fmt.format(value * scale)
    if use_common and row.get("best_or_tied") is True:
        text = f"**{text}**"
    if lo is not None and pd.notna(lo):
        text += f" [{fmt.format(lo * scale)}, {fmt.format(hi * scale)}]"
    if row["metric"] in SET_LEVEL:
        text += f" (n={row['n']}){' †' if not meaningful(row) else ''}"
    elif row["n_failed"] and not use_common:
        text += f" (n={row['n']})"
    return text


def meaningful(row) -> bool:
    """Set-level values from fewer images than the configured minimum are strongly biased."""
    return row["metric"] not in SET_LEVEL or row["metric"] in UNBIASED_AT_SMALL_N or pd.isna(row.get("min_samples")) or row["n"] >= row["min_samples"]


def _header(metric: str) -> str:
    col = COLUMNS.get(metric)
    if col is None:
        return metric
    return f"{col.label} {'↑' if col.higher_is_better else '↓'}"


def markdown(df: pd.DataFrame, store: Store, grids: dict[str, str] | None = None) -> str:
    if df.empty:
        return "No complete runs in the store yet: run `bench run` first.\n"
    out = []
    for (protocol, phash), part in df.groupby(["protocol", "protocol_hash"], sort=True):
        metrics_order = [m for m in COLUMNS if m in set(part["metric"])] + sorted(set(part["metric"]) - set(COLUMNS) - {NO_VALUE})
        runs = part.drop_duplicates("method").set_index("method")
        order = sorted(runs.index, key=lambda m: _sort_key(part, m))
        n_pairs = int(runs["pairs"].iloc[0])
        has_common = "value_common" in part.columns and part["value_common"].notna().any()
        out.append(f"## {protocol}\n")
        out += _table(part, runs, order, metrics_order, n_pairs, common=has_common)
        fams = sorted({b for b in part["backend"] if b})
        backends = ", ".join(f"`{b}`" for b in fams) or "none (no metric has a value)"
        out.append("")
        if has_common:
            out.append(f"Protocol `{protocol}` hash `{phash}`, {n_pairs} pairs. Backends: {backends}. "
                       "Each per-pair value: mean over the pairs that every listed method evaluated "
                       f"({_common_text(part, metrics_order, n_pairs)}) [95% percentile bootstrap interval over those "
                       "pairs]. **Bold**: the best value of its column and every method not significantly different "
                       "from it (paired Wilcoxon signed-rank test on those pairs, Holm-corrected over all comparisons "
                       "of this table, 5% level; the bounds `source` and `target` are not ranked; `bench compare A B` "
                       "prints the differences). Coverage: a pair fails "
                       "when a face cannot be found or cropped, the method fails, or a metric backend cannot embed "
                       "the swap. FID, FID∞ (an extrapolated estimate), KID (± its sd over subsets), PRD and "
                       "precision/recall: all swaps of each method.")
            out.append("")
            out.append("Each method on all the pairs it evaluated (mean [95% bootstrap interval]; (n=…) where some "
                       "pairs have no value):")
            out.append("")
            out += _table(part, runs, order, metrics_order, n_pairs, common=False)
            out.append("")
        else:
            out.append(f"Protocol `{protocol}` hash `{phash}`, {n_pairs} pairs. Backends: {backends}. "
                       "Each value: mean over evaluated pairs [95% percentile bootstrap interval over pairs]; "
                       "(n=…) where some pairs have no value. Coverage: a pair fails when a face cannot be found "
                       "or cropped, the method fails, or a metric backend cannot embed the swap.")
        for note in footnotes(part):
            out.append("")
            out.append(note)
        reasons = Counter()
        for run_id in runs["run_id"]:
            for f in store.failures(run_id):
                reasons[(f.stage, f.reason)] += 1
        failures = sorted((k, n) for k, n in reasons.items() if k[0] != "note")
        notes = sorted((reason, n) for (stage, reason), n in reasons.items() if stage == "note")
        if failures:
            out.append("")
            out.append("Failures by stage: " + "; ".join(f"{stage}: {reason} ×{n}" for (stage, reason), n in failures))
        if notes:  # remarks of the methods on pairs they did swap (SwapMethod.note)
            out.append("")
            out.append("Notes: " + "; ".join(f"{reason} ×{n}" for reason, n in notes))
        out.append("")
        out.append("Runs: " + ", ".join(f"{m} `{runs.loc[m, 'run_id']}`" for m in order)
                   + f" (git {runs['git_revision'].dropna().iloc[0] if runs['git_revision'].notna().any() else 'unknown'}).")
        if grids and protocol in grids:
            out.append("")
            out.append(f"![{protocol}: source | target | swaps]({grids[protocol]})")
        out.append("")
    return "\n".join(out)


COMPACT_SKIP = _with_variants({"kid_std"})  # the spread of KID over subsets: in the full tables only


@dataclass
class Compact:
    """One protocol's headline values for a terminal, one row per metric and one column per method (so
    that it fits 80 columns), best-or-tied marked apart."""

    protocol: str
    methods: list[str]
    rows: list[list[str]]  # [metric label (with † where it applies), value per method]; last: evaluated pairs
    best: list[list[bool]]  # per value of rows
    footnote: bool  # some label carries †


def compact(df: pd.DataFrame) -> list[Compact]:
    """The headline table of each protocol (common-pairs values where there are some) without intervals,
    sample sizes or prose: what fits a terminal at the end of `bench run`."""
    out = []
    if df.empty:
        return out
    for (protocol, _), part in df.groupby(["protocol", "protocol_hash"], sort=True):
        runs = part.drop_duplicates("method").set_index("method")
        order = sorted(runs.index, key=lambda m: _sort_key(part, m))
        n_pairs = int(runs["pairs"].iloc[0])
        common = "value_common" in part.columns and part["value_common"].notna().any()
        rows, best, flagged = [], [], False
        for m in (m for m in COLUMNS if m in set(part["metric"]) and m not in COMPACT_SKIP):
            hits = {method: part[(part["method"] == method) & (part["metric"] == m)] for method in order}
            found = [h.iloc[0] for h in hits.values() if len(h)]
            dagger = any(not meaningful(r) and not hidden(r) for r in found) or any(hidden(r) == "†" for r in found)
            flagged |= dagger
            rows.append([_header(m) + (" †" if dagger else "")]
                        + [_short(h.iloc[0], common) if len(h) else "–" for h in hits.values()])
            best.append([len(h) > 0 and common and m not in SET_LEVEL and h.iloc[0].get("best_or_tied") is True
                         for h in hits.values()])
        rows.append(["evaluated"] + [f"{n_pairs - int(runs.loc[method, 'pairs_failed'])}/{n_pairs}" for method in order])
        best.append([False] * len(order))
        out.append(Compact(protocol, order, rows, best, flagged))
    return out


def _short(row, common: bool) -> str:
    """A headline value in at most about 7 characters: 3 decimals below 10 (4 for KID), 1 up to 100, whole above."""
    if hidden(row):
        return "–"
    use_common = common and row["metric"] not in SET_LEVEL
    value = row["value_common"] if use_common else row["value"]
    if pd.isna(value):
        return "–"
    col = COLUMNS.get(row["metric"])
    value = value * (100.0 if col and col.percent else 1.0)
    if col and col.decimals is not None and abs(value) < 100:
        return f"{value:.{col.decimals}f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10 or (col and col.percent):
        return f"{value:.1f}"
    return f"{value:.4f}" if row["metric"] in SMALL_VALUES else f"{value:.3f}"


def footnotes(part) -> list[str]:
    """The footnotes a protocol's table needs: † small sample, ‡ negative FID, the KID estimator."""
    rows = [r for _, r in part.iterrows()]
    notes = []
    if any(not meaningful(r) for r in rows):
        n = int(part["min_samples"].dropna().iloc[0])
        notes.append(f"† FID, PRD and precision/recall from fewer than {n} images: strongly biased by the small "
                     "sample, not meaningful as absolute values or across protocols. FID∞ is not shown below "
                     f"{n} images: it extrapolates FID to infinitely many images from FIDs of subsets, which needs "
                     "thousands of images. FIDs from different extractors or resize policies are not comparable either.")
    if any(hidden(r) == "‡" for r in rows):
        notes.append("‡ The FID or FID∞ estimate came out negative, which a distance cannot be (numerical error "
                     "of the matrix square root, or an extrapolation that overshoots): not shown.")
    if any(r["metric"] in _with_variants({"kid"}) for r in rows):
        notes.append("KID is an unbiased estimator: it can be slightly negative when the swaps and the real faces "
                     "are not distinguishable at this sample size; read values near 0 against KID sd.")
    return notes


def _row(cells) -> str:
    """One row of a GitHub markdown table: every row of a table has the same number of cells."""
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _table(part, runs, order, metrics_order, n_pairs, common: bool) -> list[str]:
    lines = [_row(["method", *(_header(m) for m in metrics_order), "coverage"]),
             _row(["---", *("---:" for _ in metrics_order), "---"])]
    for method in order:
        cells = [method]
        for m in metrics_order:
            hit = part[(part["method"] == method) & (part["metric"] == m)]
            cells.append(_cell(hit.iloc[0], common) if len(hit) else "–")
        failed = int(runs.loc[method, "pairs_failed"])
        cells.append(f"{n_pairs - failed}/{n_pairs} evaluated, {failed} failed")
        lines.append(_row(cells))
    return lines


def _common_text(part, metrics_order, n_pairs) -> str:
    """e.g. "ID cos, ID top-1 %: 70 of 72 pairs common to all 3 methods; Pose err (°): 71 of 72 …".
    The temporal columns of a video protocol count clips, not pairs (frames)."""
    groups: dict[tuple, list[str]] = {}
    for m in metrics_order:
        rows = part[(part["metric"] == m) & part["n_common"].notna()]
        if m in SET_LEVEL or rows.empty:
            continue
        unit, total = ("clips", int(rows["n"].iloc[0] + rows["n_failed"].iloc[0])) if m in TEMPORAL else ("pairs", n_pairs)
        key = (int(rows["n_common"].iloc[0]), int(rows["n_methods_common"].iloc[0]), unit, total)
        groups.setdefault(key, []).append(COLUMNS[m].label if m in COLUMNS else m)
    if len(groups) == 1:
        (n, k, unit, total), _ = next(iter(groups.items()))
        return f"on {n} of {total} {unit} common to all {k} methods"
    return "; ".join(f"{', '.join(labels)}: on {n} of {total} {unit} common to all {k} methods"
                     for (n, k, unit, total), labels in groups.items())


def _sort_key(part, method):
    # Baselines first in a fixed order, then methods by name.
    fixed = ["source", "target", "classic"]
    return (fixed.index(method) if method in fixed else len(fixed), method)


def write(store: Store, out_dir: Path, protocol: str | None = None, include_unpublishable=False,
          by: str | None = None) -> list[Path]:
    """The leaderboard files of each protocol; with `by`, also `<protocol>_by_<by>.md` (one table per group)."""
    from swapbench.leaderboard.grid import comparison_grid, frame_grid

    out_dir.mkdir(parents=True, exist_ok=True)
    df = collect(store, protocol, include_unpublishable)
    written = []
    if df.empty:
        return written
    for name, part in df.groupby("protocol"):
        grid = comparison_grid(store, part, out_dir / f"{name}_grid.png")
        frames = frame_grid(store, part, out_dir / f"{name}_frames.png")
        prd_png = _prd_plot(store, part, out_dir / f"{name}_prd.png")
        md = out_dir / f"{name}.md"
        text = markdown(part, store, {name: grid.name} if grid else None)
        if frames:
            text += f"\n![{name}: target frames and the swaps pasted back]({frames.name})\n"
        if prd_png:
            text += f"\n![{name}: PRD curves]({prd_png.name})\n"
        md.write_text(f"# swapbench leaderboard: {name}\n\n" + text)
        csv = out_dir / f"{name}.csv"
        part.sort_values(["method", "metric"]).to_csv(csv, index=False)
        written += [md, csv] + [p for p in (grid, frames, prd_png) if p]
        by_here = by or DEFAULT_BREAKDOWN.get(name)
        if by_here:
            from swapbench.leaderboard import breakdown

            path = out_dir / f"{name}_by_{by_here}.md"
            path.write_text(f"# swapbench leaderboard: {name}, by {by_here}\n\n" + breakdown.markdown(part, store, by_here))
            written.append(path)
    return written


def _prd_plot(store: Store, part, path: Path, fmt: str = "png") -> Path | None:
    """The PRD curves of a protocol's runs in one plot (None when no run has them)."""
    from swapbench.leaderboard.prd_plot import plot_prd

    curves = {}
    for method, run_id in part.drop_duplicates("method")[["method", "run_id"]].itertuples(index=False):
        prd = store.curves(run_id).get("prd")
        if prd:  # a curve on other features than Inception's is labelled with its backend, like its columns
            backend = store.aggregates(run_id).get("prd_f8", {}).get("backend") or ""
            curves[method if shown_as("prd_f8", backend) == "prd_f8" else f"{method} ({backend})"] = tuple(prd)
    if not curves:
        return None
    return plot_prd(curves, path, title="PRD vs the real faces", fmt=fmt)
