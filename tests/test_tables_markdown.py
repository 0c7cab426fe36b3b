"""Every markdown table the leaderboard writes is valid GitHub markdown whatever the store holds (empty,
only failures, one method, one metric family), and no impossible number is printed: FID∞ below
fid.min_samples and any negative FID or FID∞ are shown as "–" with their footnote; KID's footnote says
why it may be negative."""

import re

import pytest
from markdown_it import MarkdownIt
from synthetic_store import PAIRS
from synthetic_store import add_run as _add_run
from synthetic_store import pairs as _pairs

from swapbench.bench.store import Store
from swapbench.leaderboard import breakdown, tables


def assert_valid_tables(md: str) -> int:
    """Each block of table lines: the same number of cells in every row, a proper separator row, and
    markdown-it (GitHub-flavoured tables) parses it as one table with that many header cells."""
    blocks, block = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
        elif block:
            blocks.append(block)
            block = []
    parser = MarkdownIt("commonmark").enable("table")
    for lines in blocks:
        counts = [len(re.split(r"(?<!\\)\|", line.strip())) - 2 for line in lines]
        assert len(set(counts)) == 1, f"cells per row differ: {counts}\n" + "\n".join(lines)
        assert all(re.fullmatch(r":?-{3,}:?", c.strip()) for c in lines[1].strip().strip("|").split("|")), lines[1]
        tokens = parser.parse("\n".join(lines))
        assert tokens[0].type == "table_open", "\n".join(lines)
        assert sum(t.type == "th_open" for t in tokens) == counts[0]
    return len(blocks)


def test_empty_store(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    md = tables.markdown(tables.collect(store), store)
    assert assert_valid_tables(md) == 0 and "run `bench run` first" in md


def test_only_failures(tmp_path):
    """Every pair of every run failed: a table of coverage alone, with as many cells in each row."""
    store = Store(tmp_path / "s.sqlite")
    all_pairs = list(_pairs())
    _add_run(store, "classic", failed=all_pairs)
    _add_run(store, "target", failed=all_pairs)
    md = tables.markdown(tables.collect(store), store)
    assert assert_valid_tables(md) == 1
    assert "| method | coverage |" in md and f"| classic | 0/{PAIRS} evaluated, {PAIRS} failed |" in md
    assert "Backends: ." not in md and "Backends: none (no metric has a value)." in md


def test_one_method_one_family(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    _add_run(store, "classic", {"pose_error": _pairs()})
    md = tables.markdown(tables.collect(store), store)
    assert assert_valid_tables(md) == 2 and "| classic | 10.500 [" in md  # common pairs, then all pairs


def test_several_methods_and_families_with_failures_and_breakdown(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    _add_run(store, "classic", {"pose_error": _pairs(), "gaze_error": _pairs(1)},
             {"fid": (80.0, PAIRS), "kid": (0.01, PAIRS)})
    few = {p: v for p, v in list(_pairs(2).items())[:8]}
    _add_run(store, "target", {"pose_error": few}, {"fid": (60.0, 8), "kid": (-0.002, 8)}, failed=list(_pairs())[8:])
    df = tables.collect(store)
    md = tables.markdown(df, store)
    assert assert_valid_tables(md) == 2  # common pairs, then all pairs
    assert assert_valid_tables(breakdown.markdown(df, store, "target_identity")) == PAIRS * 2


def test_fid_infinity_below_min_samples_and_negative_fids_are_not_printed(tmp_path):
    """What the samples leaderboard printed: FID∞ −5.548 at n=72."""
    store = Store(tmp_path / "s.sqlite")
    _add_run(store, "classic", {"pose_error": _pairs()}, {"fid": (-0.25, PAIRS), "fid_inf": (-5.548, PAIRS),
                                                          "kid": (-0.00031, PAIRS)})
    _add_run(store, "target", {"pose_error": _pairs(1)}, {"fid": (42.0, PAIRS), "fid_inf": (30.5, PAIRS)})
    md = tables.markdown(tables.collect(store), store)
    assert "-5.548" not in md and "−5.548" not in md and "-0.250" not in md and "30.500" not in md
    assert f"– (n={PAIRS}) †" in md and f"– (n={PAIRS}) ‡" in md  # FID∞ at n=12: †; the negative FID: ‡
    assert "42.000" in md and "-0.00031" in md  # a positive FID and a negative KID are values
    assert "FID∞ is not shown below 2048 images" in md and "‡ The FID or FID∞ estimate came out negative" in md
    assert "KID is an unbiased estimator: it can be slightly negative" in md
    assert assert_valid_tables(md) == 2


@pytest.mark.parametrize("n, shown", [(4096, True), (100, False)])
def test_fid_infinity_is_shown_from_min_samples(tmp_path, n, shown):
    store = Store(tmp_path / "s.sqlite")
    _add_run(store, "classic", {"pose_error": _pairs()}, {"fid_inf": (12.345, n)})
    md = tables.markdown(tables.collect(store), store)
    assert ("12.345" in md) is shown and ("FID∞ is not shown" in md) is not shown
