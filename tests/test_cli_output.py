"""What the CLI prints survives a pipe: complete values, the same rows in every format; the package
data every command reads is declared for wheels and sdists."""

from __future__ import annotations

import fnmatch
import json

import tomllib
from conftest import REPO, bench


def test_piped_listings_keep_long_values_whole():
    from swapbench import metrics
    from swapbench.bench.catalogue import weight_files
    from swapbench.datasets import PROTOCOLS
    from swapbench.methods import METHODS

    weights_out = bench("weights").stdout  # stdout is a pipe here, as in `bench weights | grep hopenet`
    hopenet = [line for line in weights_out.splitlines() if "hopenet" in line]
    assert hopenet and "hopenet_robust_alpha1.pkl" in hopenet[0]
    for f, _ in weight_files().values():
        assert f.filename in weights_out and f.url in weights_out and f.licence in weights_out
    methods_out = bench("list", "methods").stdout
    assert all(METHODS.get(n).description in methods_out for n in METHODS.names())
    protocols_out = bench("list", "protocols").stdout
    assert all(make().description in protocols_out for make in PROTOCOLS.values())
    backends_out = bench("list", "backends").stdout
    assert all(cls.input in backends_out for cls in metrics.all_backends().values())


def test_formats_carry_the_same_rows():
    tsv = bench("list", "backends", "--format", "tsv").stdout.splitlines()
    rows = json.loads(bench("list", "backends", "--format", "json").stdout)
    md = [line for line in bench("list", "backends", "--format", "markdown").stdout.splitlines() if line.startswith("| ")]
    assert len(tsv) - 1 == len(rows) == len(md) - 1 > 10
    assert [line.split("\t")[0] for line in tsv[1:]] == [r["backend"] for r in rows]
    weights = json.loads(bench("weights", "--format", "json").stdout)
    assert {"name", "file", "status", "sha256", "url", "put_it_in", "licence", "used_by"} <= set(weights[0])


def test_version_names_the_git_revision_in_a_checkout():
    out = bench("--version").stdout.strip()
    assert out.startswith("swapbench 0.") and "(git " in out


def test_every_package_data_file_is_declared():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["swapbench"]
    files = [p.relative_to(REPO / "swapbench").as_posix() for p in (REPO / "swapbench").rglob("*")
             if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert files, "the package ships data files (default config, protocol files)"
    undeclared = [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in data)]
    assert not undeclared, f"package data missing from pyproject's package-data: {undeclared}"


def _fake_run(monkeypatch, tmp_path):
    """`bench run` with the engine replaced by a synthetic store of three methods and every metric family."""
    from types import SimpleNamespace

    from synthetic_store import add_run, pairs

    from swapbench.bench import engine
    from swapbench.bench.store import Store

    store_path = tmp_path / "s.sqlite"

    def run(cfg, reporter):
        store = Store(cfg["store"])
        set_level = {"fid": (50.0, 12), "fid_inf": (-5.548, 12), "kid": (-0.01, 12), "kid_std": (0.01, 12),
                     "prd_f8": (0.8, 12), "prd_f1_8": (0.9, 12), "precision": (0.7, 12), "recall": (0.6, 12)}
        per_pair = ("id_cosine", "id_top1", "id_top5", "pose_error", "expression_error", "gaze_error")
        for k, method in enumerate(("source", "target", "classic", "ghost")):
            add_run(store, method, {m: pairs(k * 0.3) for m in per_pair}, set_level)
        return [SimpleNamespace(method=m, run_id=f"run-{m}", swapped=12, pairs=12, failed=0, reused=False,
                                seconds=1.0, failures=[]) for m in ("source", "target", "classic", "ghost")]

    monkeypatch.setattr(engine, "run", run)
    return store_path


def _main(monkeypatch, capsys, argv, terminal: bool):
    import io

    from rich.console import Console

    from swapbench import cli

    buffer = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buffer, force_terminal=terminal, width=80, color_system="standard"))
    monkeypatch.setattr(cli, "err", Console(stderr=True, width=100))
    rc = cli.main(argv)
    out, _ = capsys.readouterr()
    return rc, out + buffer.getvalue()


def test_run_ends_with_a_compact_table_on_a_terminal(tmp_path, monkeypatch, capsys):
    import re

    store = _fake_run(monkeypatch, tmp_path)
    rc, out = _main(monkeypatch, capsys, ["run", "--no-progress", "--store", str(store)], terminal=True)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert rc == 0
    assert all(len(line) <= 80 for line in plain.splitlines()), plain
    assert "[" not in plain and "Protocol `" not in plain and "| method |" not in plain  # no intervals, prose, markdown
    lines = {line.split("  ")[0].strip(): line.split() for line in plain.splitlines() if "  " in line.strip()}
    assert plain.count("source") == 1 and "classic" in plain  # one table: methods are its columns
    assert lines["FID ↓ †"][-4:] == ["50.0"] * 4 and lines["FID∞ (est.) ↓ †"][-4:] == ["–"] * 4
    assert lines["evaluated"][-4:] == ["12/12"] * 4 and "KID sd" not in plain and "-5.548" not in plain
    assert "`bench leaderboard`" in plain and "`bench report`" in plain
    pose = next(line for line in out.splitlines() if line.startswith(" Pose err"))
    assert re.search(r"\x1b\[1;32m *11\.1\x1b", pose) and pose.count("\x1b[1;32m") == 1  # the best (classic), bold green


def test_run_prints_the_full_markdown_when_piped_or_asked(tmp_path, monkeypatch, capsys):
    store = _fake_run(monkeypatch, tmp_path)
    rc, piped = _main(monkeypatch, capsys, ["run", "--no-progress", "--store", str(store)], terminal=False)
    rc2, asked = _main(monkeypatch, capsys, ["run", "--no-progress", "--store", str(store), "--format", "markdown"],
                       terminal=True)
    for out in (piped, asked):
        assert "| method | ID cos ↑" in out and "Protocol `synthetic`" in out and " [" in out  # intervals
        assert "KID sd" in out and "Full tables with 95% intervals" not in out
