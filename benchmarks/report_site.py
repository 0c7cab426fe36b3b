"""Size and load time of the `bench report` site, for the samples protocol and a synthetic one.

    python benchmarks/report_site.py                         # samples + a 1000-pair synthetic protocol
    python benchmarks/report_site.py --synthetic-pairs 0     # samples only
    python benchmarks/report_site.py --keep /tmp/reports     # keep (and reuse) the stores and sites there

For each protocol: one default `bench run` (methods target, source, classic) into a fresh store (or
the kept one), then `report.write` (timed), the site's files and bytes, and the load time of its first
pages in headless Chromium opened from the file system (navigation timing: the load event and the
first contentful paint, median of 5 cold loads, the browser cache disabled). The synthetic protocol is
the one of benchmarks/throughput.py (augmented bundled faces). Results are printed as markdown.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import swapbench.faces.mediapipe  # noqa: F401  (first: it ignores a stray SIGPROF, see there)
from swapbench.bench import config, engine
from swapbench.bench.store import Store
from swapbench.datasets import get_protocol, registered
from swapbench.leaderboard import report

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser import chromium_driver
from throughput import synthetic_protocol

TIMING = """
const nav = performance.getEntriesByType('navigation')[0];
const fcp = performance.getEntriesByName('first-contentful-paint')[0];
return [nav.loadEventEnd, fcp ? fcp.startTime : null, document.images.length,
        Array.from(document.images).filter(i => i.complete && i.naturalWidth).length];
"""


def load_times(driver, page: Path, repeats: int = 5) -> dict:
    loads, paints = [], []
    for _ in range(repeats):
        driver.execute_cdp_cmd("Network.clearBrowserCache", {})
        driver.get("about:blank")
        driver.get(page.as_uri())
        load, fcp, images, loaded = driver.execute_script(TIMING)
        loads.append(load)
        if fcp is not None:
            paints.append(fcp)
    return {"load_ms": statistics.median(loads), "fcp_ms": statistics.median(paints) if paints else float("nan"),
            "images": images, "images_loaded_at_load": loaded}


def measure(name: str, protocol, root: Path, methods: list[str], driver) -> list[str]:
    store_path = root / name / "results.sqlite"
    cfg = config.load((), {"protocol": name, "methods": methods, "store": str(store_path)})
    t0 = time.perf_counter()
    with registered(name, protocol):  # the engine finds a protocol by name; the registry is restored after
        reused = all(r.reused for r in engine.run(cfg))
    run_s = time.perf_counter() - t0
    store = Store(store_path)
    site = root / name / "site"
    t0 = time.perf_counter()
    pages = report.write(store, site, name, include_unpublishable=True)
    write_s = time.perf_counter() - t0
    size = report.site_size(site)
    lines = [f"### {name}: {len(protocol.pairs)} pairs x {len(methods)} methods ({', '.join(methods)})", "",
             f"- `bench run` {'reused from the kept store' if reused else f'{run_s:.0f} s'}; `report.write` {write_s:.1f} s",
             (f"- site: {len(pages)} pages, {size['images']} image files, {size['bytes'] / 1e6:.2f} MB "
              f"(HTML {size['html_bytes'] / 1e3:.0f} kB, images {size['image_bytes'] / 1e6:.2f} MB)"), ""]
    if driver is not None:
        lines += ["| page | bytes | load event (ms) | first contentful paint (ms) | images (loaded at load) |",
                  "|---|---:|---:|---:|---|"]
        for page in [site / "index.html", site / f"{name}.html", site / name / "classic.html"]:
            t = load_times(driver, page)
            lines.append(f"| {page.relative_to(site)} | {page.stat().st_size:,} | {t['load_ms']:.0f} | {t['fcp_ms']:.0f} "
                         f"| {t['images']} ({t['images_loaded_at_load']}) |")
        lines.append("")
    else:
        lines += ["(no chromium/chromedriver: load times not measured)", ""]
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=["target", "source", "classic"])
    ap.add_argument("--synthetic-pairs", type=int, default=1000)
    ap.add_argument("--keep", type=Path, help="folder for the stores and sites (default: a temporary one)")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp())
    root.mkdir(parents=True, exist_ok=True)
    driver = chromium_driver(1400, 1000)
    try:
        out = ["## bench report: site size and load time", ""]
        out += measure("samples", get_protocol("samples"), root, args.methods, driver)
        if args.synthetic_pairs:
            images = root / "synthetic_images"
            images.mkdir(exist_ok=True)
            out += measure("synthetic", synthetic_protocol(images, args.synthetic_pairs), root, args.methods, driver)
    finally:
        if driver is not None:
            driver.quit()
    print("\n".join(out))


if __name__ == "__main__":
    main()
