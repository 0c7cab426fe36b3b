"""PRD curves of several methods in one PNG (or SVG) (recall on x, precision on y, as in Sajjadi et al. 2018)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: leaderboards are built on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_prd(curves: dict, path, title: str | None = None, dpi: int = 150, fmt: str = "png") -> Path:
    """Draw ``{method: (precision, recall)}`` and save it at path as a PNG (fmt="svg": a static SVG)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4, 4), dpi=dpi)
    try:
        for method, (precision, recall) in curves.items():
            ax.plot(np.asarray(recall), np.asarray(precision), label=method, alpha=0.7, linewidth=2)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("Recall")
        ax.set_ylabel("Precision")
        if title:
            ax.set_title(title)
        if curves:
            ax.legend(loc="lower left", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format=fmt, **({"metadata": {"Date": None}} if fmt == "svg" else {}))
    finally:
        plt.close(fig)
    return path
