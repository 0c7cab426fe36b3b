"""`bench report`: the static site of the samples run, its values against `bench leaderboard`, and a real
headless Chromium (Debian chromium + chromium-driver, driven by Selenium) opening it from the file system.

The browser tests skip when Chromium is not installed, unless SWAPBENCH_REQUIRE_BROWSER=1 (set by .ci/run,
which installs it). SWAPBENCH_ARTEFACTS=DIR: the leaderboard screenshot is written there (CI artefact).
"""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from browser import chromium_binaries, chromium_driver
from conftest import bench


@pytest.fixture(scope="module")
def site(samples_run, samples_leaderboard, tmp_path_factory):
    store, _ = samples_run
    out = tmp_path_factory.mktemp("report") / "site"
    proc = bench("report", "--out", str(out), "--store", str(store))
    return out, proc, samples_leaderboard[1]


class _Page(HTMLParser):
    """Tables (rows of cell texts, and whether a cell is bold), links and images of a page."""

    def __init__(self):
        super().__init__()
        self.tables, self.links, self.images, self.lazy = {}, [], [], []
        self._table = self._row = self._cell = None
        self._bold = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(a.get("id") or f"t{len(self.tables)}", [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell, self._bold = [], False
        elif tag == "strong" and self._cell is not None:
            self._bold = True
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "img":
            self.images.append(a["src"])
            self.lazy.append(a.get("loading") == "lazy")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(("".join(self._cell).strip(), self._bold))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def markdown_tables(text: str) -> list[list[list[str]]]:
    """The pipe tables of markdown text, as rows of cell texts (header and separator lines dropped)."""
    found, current = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if current is None:
                current = []
                found.append(current)
                continue  # the header
            if not set("".join(cells)) <= set("-:"):
                current.append(cells)
        else:
            current = None
    return found


def test_report_writes_index_leaderboard_and_method_pages(site):
    out, proc, _ = site
    assert proc.stdout.strip() == str(out / "index.html")
    for page in ("index.html", "samples.html", "samples/classic.html", "samples/source.html", "samples/target.html"):
        assert (out / page).is_file(), page
    html = (out / "samples.html").read_text()
    assert "<script src" not in html and "<link rel=\"stylesheet\"" not in html and "http" not in html.split("</head>")[0]
    assert "function sortTable" in html  # the script is inlined


def test_report_tables_equal_bench_leaderboard(site):
    out, _, leaderboard_md = site
    md = markdown_tables(leaderboard_md)
    page = parse(out / "samples.html")
    html = [page.tables["table-common"], page.tables["table-all"]]
    assert len(md) == 2
    for md_rows, html_rows in zip(md, html):
        body = html_rows[1:]  # the header row
        assert [r[0][0] for r in body] == [r[0] for r in md_rows]  # methods, in the same order
        for md_row, html_row in zip(md_rows, body):
            assert [c for c, _ in html_row] == [c.replace("**", "") for c in md_row]
            assert [b for _, b in html_row] == [c.startswith("**") for c in md_row]  # significance marks


def test_every_link_and_image_of_the_site_resolves(site):
    out, _, _ = site
    pages = sorted(out.rglob("*.html"))
    images = set()
    for path in pages:
        page = parse(path)
        for ref in page.links + page.images:
            target = urlparse(ref)
            if target.scheme or ref.startswith("#"):
                continue
            assert (path.parent / unquote(target.path)).resolve().is_file(), f"{path.name}: {ref}"
        images |= {(path.parent / src).resolve() for src in page.images}
        assert all(page.lazy), f"{path.name}: every image loads lazily"
    method = parse(out / "samples" / "classic.html")
    shots = [s for s in method.images if s.endswith(".jpg")]
    # 4 per-pair metrics with values (identity cos/top-1 and pose, expression, gaze ...) x best and worst
    assert len(shots) >= 4 * 2 * 4
    assert any("_frame.jpg" in s for s in shots), "the swaps pasted back into the target frames"
    # written once, web-sized: JPEG thumbnails of at most 320 px, each file used by one or more pages
    from PIL import Image

    on_disk = {p.resolve() for p in (out / "img").rglob("*.jpg")}
    assert on_disk == {p for p in images if p.suffix == ".jpg"}
    for p in on_disk:
        with Image.open(p) as img:
            assert img.format == "JPEG" and max(img.size) <= 320
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) < 3_000_000


def test_method_page_shows_provenance(site, samples_run):
    from swapbench.bench.store import Store

    out, _, _ = site
    html = (out / "samples" / "classic.html").read_text()
    for text in ("protocol hash", "git revision", "sha256", "torch", "Timings", "Resolved config", "bootstrap_resamples"):
        assert text in html, text
    store = Store(samples_run[0])
    run = next(r for r in store.latest_runs("samples") if r["method"] == "classic")
    prov = run["provenance"]
    users = [prov["method"], prov["face_detector"], *prov["backends"].values()]
    for user in users:  # each model with its weight files and their sha256 (the bundled backends have none)
        assert user["name"] in html and all(f"<code class=\"hash\">{h}</code>" in html for h in user["weights_sha256"].values())
    for text in (run["run_id"], run["protocol_hash"], prov["git_revision"] or "unknown", *prov["packages"].values()):
        assert text in html, text
    for stage in run["timings"]:
        assert f"<td>{stage}</td>" in html


def _shown(html: str) -> list[str]:
    """The pair ids of a gallery's figures, in order."""
    return re.findall(r"<figcaption><code>([^<]+)</code>", html)


def test_gallery_shows_the_stored_best_and_worst_pairs(site, samples_run):
    from swapbench.bench.store import Store
    from swapbench.leaderboard import stats

    out, _, _ = site
    html = (out / "samples" / "classic.html").read_text()
    store = Store(samples_run[0])
    run = next(r for r in store.latest_runs("samples") if r["method"] == "classic")
    values = stats.pair_table(store.pair_values(run["run_id"]))
    for metric, higher in (("id_cosine", True), ("pose_error", False)):
        section = html.split(f'id="m-{metric}"')[1].split("<h3")[0]
        best, worst = section.split("<h4>worst</h4>")
        ranked = values[metric].dropna().sort_index().sort_values(ascending=not higher, kind="stable")
        assert _shown(best) == list(ranked.index[:3])
        assert _shown(worst) == list(reversed(ranked.index[-3:]))
        top = ranked.iloc[0]
        assert f"<strong>{'ID cos ↑' if higher else 'Pose err (°) ↓'} {top:.3f}</strong>" in best


needs_browser = pytest.mark.skipif(chromium_binaries() is None and os.environ.get("SWAPBENCH_REQUIRE_BROWSER") != "1",
                                   reason="no chromium/chromedriver (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def driver():
    drv = chromium_driver(width=1400, height=1000)
    assert drv is not None, "chromium and chromedriver must be installed (SWAPBENCH_REQUIRE_BROWSER=1)"
    yield drv
    drv.quit()


def _severe(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _column(driver, table: str, col: int) -> list[tuple[str, str]]:
    """(method, data-sort of column col) of the visible rows, in display order."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr')).filter(r => !r.hidden)"
        ".map(r => [r.getAttribute('data-method'), r.cells[arguments[1]].getAttribute('data-sort')]);",
        f"#{table}", col)


@needs_browser
def test_browser_loads_sorts_filters_and_screenshots(site, driver, tmp_path):
    from selenium.webdriver.common.by import By

    out, _, _ = site
    driver.get((out / "samples.html").as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    assert _severe(driver) == []

    # sorting: the ID cos column (the first metric) ascending, then descending; empty cells last
    heads = driver.find_elements(By.CSS_SELECTOR, "#table-all thead th")
    col = next(i for i, th in enumerate(heads) if th.text.startswith("ID cos"))
    before_rows = _column(driver, "table-all", col)
    heads[col].find_element(By.TAG_NAME, "button").click()
    rows = _column(driver, "table-all", col)
    values = [float(v) for _, v in rows if v]
    assert values == sorted(values) and heads[col].get_attribute("aria-sort") == "ascending"
    assert [m for m, _ in rows] == [m for m, _ in sorted(before_rows, key=lambda r: (r[1] == "", float(r[1] or 0)))]
    heads[col].find_element(By.TAG_NAME, "button").click()
    values = [float(v) for _, v in _column(driver, "table-all", col) if v]
    assert values == sorted(values, reverse=True) and heads[col].get_attribute("aria-sort") == "descending"
    # sorting by method name
    heads[0].find_element(By.TAG_NAME, "button").click()
    assert [m for m, _ in _column(driver, "table-all", 0)] == sorted(m for m, _ in rows)

    # the method filter: only classic left in both tables
    for box in driver.find_elements(By.CSS_SELECTOR, "input[name=method]"):
        if box.get_attribute("value") != "classic":
            box.click()
    for table in ("table-common", "table-all"):
        assert [m for m, _ in _column(driver, table, 0)] == ["classic"]
    # the backend filter hides the columns made with that backend
    box = driver.find_element(By.CSS_SELECTOR, "input[name=backend][value=dlib_resnet_v1]")
    box.click()
    assert not heads[col].is_displayed()
    box.click()
    assert heads[col].is_displayed()
    for box in driver.find_elements(By.CSS_SELECTOR, "input[name=method]"):
        if not box.is_selected():
            box.click()

    # the screenshot of the whole leaderboard page: a CI artefact
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(height + 40, 4000))
    shot = Path(os.environ.get("SWAPBENCH_ARTEFACTS") or tmp_path) / "report_leaderboard.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 20_000
    driver.set_window_size(1400, 1000)
    assert _severe(driver) == []


@needs_browser
def test_browser_loads_every_image_of_a_method_page(site, driver):
    out, _, _ = site
    driver.get((out / "samples" / "classic.html").as_uri())
    # lazy images load when scrolled to: load them all now, then every one must have decoded
    broken = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const imgs = Array.from(document.images); imgs.forEach(i => { i.loading = 'eager'; });"
        "Promise.all(imgs.map(i => i.decode().then(() => null, () => i.getAttribute('src'))))"
        ".then(r => done(r.filter(Boolean).concat(imgs.filter(i => !i.naturalWidth).map(i => i.src))));")
    assert broken == []
    assert driver.execute_script("return document.images.length") > 20
    assert _severe(driver) == []
