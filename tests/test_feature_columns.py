"""The inception family's values on DINOv2 features get their own columns in every leaderboard: "FD-DINOv2",
"FD∞-DINOv2 (est.)", "KD-DINOv2", PRD and precision/recall marked DINOv2, never under FID's headers."""

import re

from synthetic_store import CONFIG, PAIRS, add_run, pairs
from test_tables_markdown import assert_valid_tables

from swapbench.bench.store import Store
from swapbench.leaderboard import report, tables
from swapbench.metrics import COLUMNS, FAMILIES, shown_as

SET = {"fid": (81.25, PAIRS), "fid_inf": (70.5, PAIRS), "kid": (0.01234, PAIRS), "kid_std": (0.001, PAIRS),
       "prd_f8": (0.5, PAIRS), "precision": (0.75, PAIRS)}


def headers(md: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in md.splitlines()
            if line.startswith("| method |")]


def test_every_set_level_column_has_a_dinov2_column():
    for c in FAMILIES["inception"].columns:
        variant = COLUMNS[shown_as(c.name, "dinov2_vitl14")]
        assert variant.name != c.name and "DINOv2" in variant.label and "FID" not in variant.label
        assert variant.higher_is_better == c.higher_is_better
        assert shown_as(c.name, "fid_helper_inception/clean") == c.name  # Inception keeps FID
        assert shown_as(c.name, "dinov2_vitl14/dgm_eval") == variant.name  # the stored name carries its input rule
    assert COLUMNS[shown_as("fid", "dinov2_vitl14")].label == "FD-DINOv2"
    assert shown_as("pose_error", "dinov2_vitl14") == "pose_error"


def test_markdown_dinov2_run_reads_fd_dinov2(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    add_run(store, "classic", {"pose_error": pairs()}, SET, set_backend="dinov2_vitl14")
    md = tables.markdown(tables.collect(store), store)
    assert assert_valid_tables(md) == 2
    (head, *_) = headers(md)
    assert "FD-DINOv2 ↓" in head and "KD-DINOv2 ↓" in head and "P (k=3, DINOv2) ↑" in head
    assert not any(re.match(r"(FID|KID|PRD F8 ↑|P \(k=3\))", h) for h in head), head
    assert "81.250" in md and "0.01234" in md and "FD∞-DINOv2 (est.) ↓" in head
    assert f"– (n={PAIRS}) †" in md  # FD∞ below fid.min_samples is hidden like FID∞
    compact = tables.compact(tables.collect(store))[0]
    labels = [r[0] for r in compact.rows]
    assert any(lb.startswith("FD-DINOv2") for lb in labels) and not any(lb.startswith("FID") for lb in labels)
    assert not any(lb.startswith("KD-DINOv2 sd") for lb in labels)  # the spread stays out of the terminal table


def test_markdown_never_mixes_inception_and_dinov2_in_one_column(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    add_run(store, "classic", {"pose_error": pairs()}, {"fid": (81.25, PAIRS)}, set_backend="dinov2_vitl14")
    add_run(store, "target", {"pose_error": pairs(1)}, {"fid": (42.5, PAIRS)}, set_backend="fid_helper_inception/clean")
    md = tables.markdown(tables.collect(store), store)
    head = headers(md)[0]
    assert "FID ↓" in head and "FD-DINOv2 ↓" in head
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip().strip("|").split("|")]
            for line in md.splitlines() if line.startswith("| classic") or line.startswith("| target")}
    fid, fd = head.index("FID ↓"), head.index("FD-DINOv2 ↓")
    assert rows["classic"][fid] == "–" and rows["classic"][fd].startswith("81.250")
    assert rows["target"][fd] == "–" and rows["target"][fid].startswith("42.500")


def test_html_leaderboard_headers(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    add_run(store, "classic", {"pose_error": pairs()}, SET, set_backend="dinov2_vitl14")
    data = report.leaderboard_data(tables.collect(store), store)
    by_metric = {c["metric"]: c for c in data["columns"]}
    assert by_metric["fd_dinov2"]["header"] == "FD-DINOv2 ↓" and by_metric["fd_dinov2"]["set_level"]
    assert by_metric["fd_dinov2"]["backends"] == ["dinov2_vitl14"] and "fid" not in by_metric
    data["prd"] = None
    page = tmp_path / "synthetic.html"
    report._render(report._environment(), "leaderboard.html.j2", page, root="", protocol=data)  # as report.write
    text = page.read_text(encoding="utf-8")
    assert "<button type=\"button\">FD-DINOv2 ↓</button>" in text and "KD-DINOv2 ↓" in text
    assert "<button type=\"button\">FID ↓</button>" not in text and "81.250" in text


def test_prd_curves_say_their_features(tmp_path, monkeypatch):
    store = Store(tmp_path / "s.sqlite")
    for method, backend in (("classic", "dinov2_vitl14/dgm_eval"), ("target", "fid_helper_inception/clean")):
        store.start_run(f"run-{method}", "synthetic", "hash0", method, True, CONFIG,
                        {"protocol": {"pairs": PAIRS}, "git_revision": "t"})
        store.put_results(f"run-{method}", [], [("prd_f8", 0.5, None, None, PAIRS, 0, backend)],
                          {"prd": ([0.9, 0.5], [0.1, 0.6])})
        store.finish_run(f"run-{method}")
    drawn = {}
    monkeypatch.setattr("swapbench.leaderboard.prd_plot.plot_prd", lambda curves, path, **kw: drawn.update(curves) or path)
    tables._prd_plot(store, tables.collect(store), tmp_path / "prd.png")
    assert set(drawn) == {"classic (dinov2_vitl14/dgm_eval)", "target"}
