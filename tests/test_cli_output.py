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
