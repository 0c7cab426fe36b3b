"""Leaderboards from the results store: a markdown table (and CSV) per protocol.

Methods are rows, metric columns carry ↑/↓, each aggregate is the mean over pairs with its 95%
bootstrap interval, and coverage says how many pairs were evaluated and how many failed. The footer
names the protocol hash, the backends and the runs, so every number can be traced to how it was made.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from swapbench.bench.store import Store
from swapbench.metrics import COLUMNS, FAMILIES

SET_LEVEL = {c.name for f in FAMILIES.values() if f.compares_with == "reference" for c in f.columns}


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
    return df[[c for c in CSV_COLUMNS if c in df.columns]] if rows else df


CSV_COLUMNS = ("protocol", "protocol_hash", "method", "metric", "value", "ci_low", "ci_high", "n", "n_failed", "backend",
               "pairs", "pairs_failed", "run_id", "git_revision", "min_samples")
NO_VALUE = ""  # the metric of the row standing for a run without any value


def _cell(row) -> str:
    col = COLUMNS.get(row["metric"])
    scale, fmt = (100.0, "{:.1f}") if col and col.percent else (1.0, "{:.3f}")
    text = fmt.format(row["value"] * scale)
    if pd.notna(row["ci_low"]):
        text += f" [{fmt.format(row['ci_low'] * scale)}, {fmt.format(row['ci_high'] * scale)}]"
    if row["metric"] in SET_LEVEL:
        text += f" (n={row['n']}){' †' if not meaningful(row) else ''}"
    elif row["n_failed"]:
        text += f" (n={row['n']})"
    return text


def meaningful(row) -> bool:
    """Set-level values from fewer images than the configured minimum are strongly biased."""
    return row["metric"] not in SET_LEVEL or pd.isna(row.get("min_samples")) or row["n"] >= row["min_samples"]


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
        out.append(f"## {protocol}\n")
        out.append("| method | " + " | ".join(_header(m) for m in metrics_order) + " | coverage |")
        out.append("|---|" + "---:|" * len(metrics_order) + "---|")
        for method in order:
            cells = []
            for m in metrics_order:
                hit = part[(part["method"] == method) & (part["metric"] == m)]
                cells.append(_cell(hit.iloc[0]) if len(hit) else "–")
            failed = int(runs.loc[method, "pairs_failed"])
            cells.append(f"{n_pairs - failed}/{n_pairs} evaluated, {failed} failed")
            out.append(f"| {method} | " + " | ".join(cells) + " |")
        fams = sorted({b for b in part["backend"] if b})
        out.append("")
        out.append(f"Protocol `{protocol}` hash `{phash}`, {n_pairs} pairs. Backends: {', '.join(f'`{b}`' for b in fams)}. "
                   "Each value: mean over evaluated pairs [95% percentile bootstrap interval over pairs]; "
                   "(n=…) where some pairs have no value. Coverage: a pair fails when a face cannot be found "
                   "or cropped, the method fails, or a metric backend cannot embed the swap.")
        if any(not meaningful(r) for _, r in part.iterrows()):
            out.append("")
            out.append(f"† FID, PRD and precision/recall from fewer than {int(part['min_samples'].dropna().iloc[0])} "
                       "images: strongly biased by the small sample, not meaningful as absolute values or across "
                       "protocols. FIDs from different extractors or resize policies are not comparable either.")
        reasons = Counter()
        for run_id in runs["run_id"]:
            for f in store.failures(run_id):
                reasons[(f.stage, f.reason)] += 1
        if reasons:
            out.append("")
            out.append("Failures by stage: " + "; ".join(f"{stage}: {reason} ×{n}" for (stage, reason), n in sorted(reasons.items())))
        out.append("")
        out.append("Runs: " + ", ".join(f"{m} `{runs.loc[m, 'run_id']}`" for m in order)
                   + f" (git {runs['git_revision'].dropna().iloc[0] if runs['git_revision'].notna().any() else 'unknown'}).")
        if grids and protocol in grids:
            out.append("")
            out.append(f"![{protocol}: source | target | swaps]({grids[protocol]})")
        out.append("")
    return "\n".join(out)


def _sort_key(part, method):
    # Baselines first in a fixed order, then methods by name.
    fixed = ["source", "target", "classic"]
    return (fixed.index(method) if method in fixed else len(fixed), method)


def write(store: Store, out_dir: Path, protocol: str | None = None, include_unpublishable=False) -> list[Path]:
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
    return written


def _prd_plot(store: Store, part, path: Path) -> Path | None:
    from swapbench.leaderboard.prd_plot import plot_prd

    curves = {}
    for method, run_id in part.drop_duplicates("method")[["method", "run_id"]].itertuples(index=False):
        prd = store.curves(run_id).get("prd")
        if prd:
            curves[method] = tuple(prd)
    if not curves:
        return None
    return plot_prd(curves, path, title="PRD vs the real faces")
