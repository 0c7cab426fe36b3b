"""The `bench` command line: run, list, leaderboard, weights."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Column, Table

from swapbench.bench import config as config_mod

console = Console()
err = Console(stderr=True, width=200)


def main(argv=None) -> int:
    # A stray SIGPROF was seen killing `bench run` (default action: terminate) while mediapipe's graph
    # threads ran; a process that installed no profiler has no use for it, so it is ignored here.
    if signal.getsignal(signal.SIGPROF) == signal.SIG_DFL:
        signal.signal(signal.SIGPROF, signal.SIG_IGN)
    parser = argparse.ArgumentParser(prog="bench", description="swapbench: a fair benchmark for face-swap methods")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="swap and score a protocol (resumes an interrupted run with the same settings)")
    p.add_argument("--config", action="append", default=[], help="YAML config file (repeatable; later wins)")
    p.add_argument("--protocol", help="a protocol name (bench list protocols), folder:DIR or csv:FILE")
    p.add_argument("--data-root", help="folder holding the data sets (ffhq/, celebahq/, ffpp/); default $SWAPBENCH_DATA")
    p.add_argument("--method", action="append", help="method name (repeatable, or comma-separated)")
    p.add_argument("--subset", type=int, help="a deterministic subset of N pairs")
    p.add_argument("--store", help="results database (default: $SWAPBENCH_STORE or the user data directory)")
    p.add_argument("--weights-dir", help="directory holding weight files")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--devices", type=int)
    p.add_argument("--accelerator")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config key, e.g. engine.num_workers=4")
    p.add_argument("--rerun", action="store_true", help="recompute runs that are already complete")
    p.add_argument("--resume", action="store_true", help="resume an interrupted run (the default behaviour)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("list", help="list methods, protocols or metric backends")
    p.add_argument("what", choices=["methods", "protocols", "backends"])
    p.add_argument("--weights-dir")

    p = sub.add_parser("leaderboard", help="render markdown/CSV leaderboards and comparison grids from the store")
    p.add_argument("--protocol")
    p.add_argument("--store")
    p.add_argument("--out", default="leaderboard", help="output directory (default: ./leaderboard)")
    p.add_argument("--include-unpublishable", action="store_true", help="include rows made with test weights")

    p = sub.add_parser("check", help="compare a run with golden results (exit 1 on any regression)")
    p.add_argument("golden", nargs="+", type=Path, help="golden JSON file(s), e.g. tests/golden/samples.json")
    p.add_argument("--store")
    p.add_argument("--update", action="store_true", help="rewrite the golden file(s) from the current run")
    p.add_argument("--data-root", help="folder holding the data sets the golden runs read (ffhq/, celebahq/, ffpp/)")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("weights", help="list every registered weight file and its status; `download` fetches them")
    p.add_argument("action", nargs="?", choices=["download"], help="download NAME… (or --for METHOD) into the weights cache")
    p.add_argument("names", nargs="*", metavar="NAME", help="registry name or file name")
    p.add_argument("--for", dest="used_by", action="append", default=[], metavar="METHOD_OR_BACKEND",
                   help="every file a method or metric backend uses (repeatable)")
    p.add_argument("--weights-dir")
    p.add_argument("--retries", type=int, default=2, help="resume a dropped download this many times")
    p.add_argument("--no-progress", action="store_true")

    args = parser.parse_args(argv)
    try:
        return {"run": cmd_run, "list": cmd_list, "leaderboard": cmd_leaderboard, "check": cmd_check,
                "weights": cmd_weights}[args.command](args)
    except (KeyError, ValueError, FileNotFoundError, TypeError, RuntimeError, NotImplementedError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        err.print(f"[bold red]error:[/bold red] {message}", highlight=False)
        return 2


def resolve_config(args) -> dict:
    overrides = config_mod.parse_set(args.set)
    if args.protocol:
        overrides["protocol"] = args.protocol
    if args.method:
        overrides["methods"] = [m for item in args.method for m in item.split(",") if m]
    if args.data_root:
        overrides["data_root"] = args.data_root
    if args.subset is not None:
        overrides["subset"] = args.subset
    if args.store:
        overrides["store"] = args.store
    if args.weights_dir:
        overrides["weights_dir"] = args.weights_dir
    if args.rerun:
        overrides["rerun"] = True
    engine = {k: v for k, v in (("batch_size", args.batch_size), ("devices", args.devices),
                                ("accelerator", args.accelerator)) if v is not None}
    if engine:
        overrides.setdefault("engine", {}).update(engine)
    return config_mod.load(args.config, overrides)


def cmd_run(args) -> int:
    cfg = resolve_config(args)
    if args.print_config:
        print(config_mod.dump(cfg), end="")
        return 0
    from swapbench.bench import engine
    from swapbench.bench.store import Store
    from swapbench.leaderboard import tables

    run_ids = engine.run(cfg, show_progress=not args.no_progress)
    if not engine.is_global_zero():
        return 0  # the other DDP processes stay quiet
    store = Store(cfg["store"])
    df = tables.collect(store)
    df = df[df["run_id"].isin(run_ids)] if not df.empty else df
    print(tables.markdown(df, store))
    err.print(f"[dim]results: {store.path}; `bench leaderboard` writes markdown, CSV and the comparison grid[/dim]")
    return 0


def cmd_list(args) -> int:
    from swapbench import metrics, methods
    from swapbench.bench import weights
    from swapbench.datasets import PROTOCOLS

    if args.what == "methods":
        table = Table("method", "crop", "weights", "description")
        for name, cls in sorted(methods.all_methods().items()):
            status = [weights.status(f, args.weights_dir, verify=False).status for f in cls.weights]
            table.add_row(name, f"{cls.crop}_{cls.size}", ", ".join(f"{f.filename}: {s}" for f, s in zip(cls.weights, status)) or "none needed",
                          cls.description)
    elif args.what == "protocols":
        table = Table("protocol", "version", "pairs", "images")
        table.add_column("hash", no_wrap=True, min_width=16)
        table.add_column("data")
        table.add_column("description")
        for name, make in sorted(PROTOCOLS.items()):
            p = make()
            data = sorted({r.uri[7:].partition("/")[0] for r in p.images.values() if r.uri.startswith("data://")})
            table.add_row(name, p.version, str(len(p.pairs)), str(len(p.images)), p.hash,
                          ", ".join(data) or "bundled", p.description)
    else:
        table = Table("backend", "family", "dim", "weights", "input")
        for name, cls in sorted(metrics.all_backends().items()):
            table.add_row(name, cls.family, str(cls.dim), ", ".join(f.filename for f in cls.weights) or "bundled", cls.input)
    console.print(table)
    return 0


def cmd_leaderboard(args) -> int:
    from swapbench.bench.store import Store
    from swapbench.leaderboard import tables

    store = Store(args.store)
    written = tables.write(store, Path(args.out), args.protocol, args.include_unpublishable)
    if not written:
        err.print("no complete runs in the store yet: run `bench run` first")
        return 1
    for path in written:
        if path.suffix == ".md":
            print(path.read_text())
    err.print("[dim]wrote " + ", ".join(map(str, written)) + "[/dim]")
    return 0


def cmd_check(args) -> int:
    import json

    from swapbench.bench import engine
    from swapbench.bench.store import Store
    from swapbench.leaderboard import check

    failed = 0
    for path in args.golden:
        if not path.is_file():
            raise FileNotFoundError(f"golden file {path} not found; a new one needs at least its \"run\" section")
        golden = json.loads(path.read_text())
        cfg = check.config_for(golden, args.store, args.data_root)
        run_ids = engine.run(cfg, show_progress=not args.no_progress)
        aggregates, pairs, provenance = check.results_of(Store(cfg["store"]), run_ids)
        if args.update:
            check.write_golden(path, check.make_golden(cfg, aggregates, pairs, provenance, golden))
            console.print(f"updated {path}")
            continue
        findings = check.compare(golden, aggregates, pairs)
        table = Table("method", "metric", "pair", "golden", "now", "tolerance", "status", title=str(path))
        for f in findings:
            if f.pair is None or not f.ok:
                table.add_row(f.method, f.metric, f.pair or "(aggregate)", _fmt(f.old), _fmt(f.new), f"±{f.tol:g}",
                              "ok" if f.ok else "[bold red]REGRESSION[/bold red]")
        console.print(table)
        bad = [f for f in findings if not f.ok]
        for f in bad:
            err.print(f"regression: {f.where}: golden {_fmt(f.old)}, now {_fmt(f.new)}, tolerance ±{f.tol:g}",
                      highlight=False)
        console.print(f"{path}: {len(findings) - len(bad)}/{len(findings)} values within tolerance")
        failed += bool(bad)
    return 1 if failed else 0


def _fmt(v) -> str:
    return "missing" if v is None else f"{v:.6f}"


def cmd_weights(args) -> int:
    from swapbench import metrics, methods
    from swapbench.bench import download, weights

    from swapbench.faces import detect, parsing  # noqa: F401  (registers the detectors' and parser's files)

    methods.all_methods()
    metrics.all_backends()
    if args.action == "download":
        return cmd_weights_download(args)
    if args.names or args.used_by:
        raise ValueError("names and --for go with `bench weights download`")
    table = Table("file", "used by", "licence", "size", Column("sha256", no_wrap=True), "source", "status",
                  Column("path / expected in", overflow="fold"))
    dirs = weights.search_dirs(args.weights_dir)
    for name, f in sorted(weights.REGISTRY.items()):
        st = weights.status(f, args.weights_dir)
        state = st.status
        parts = [download.part_path(d / f.filename) for d in dirs]  # an interrupted `bench weights download`
        if st.path is None and any(p.is_file() for p in parts):
            done = max(p.stat().st_size for p in parts if p.is_file())
            state += f" ({done:,} bytes downloaded; `bench weights download` resumes)"
        table.add_row(f.filename, ", ".join(f.used_by), f.licence, f"{f.size:,}" if f.size else "?",
                      (f.sha256 or "unpublished")[:12], download.source_kind(f), state, str(st.path or dirs[0]))
    console.print(table)
    labels = (["--weights-dir / config weights_dir"] if args.weights_dir else []) \
        + ([f"${weights.WEIGHTS_ENV}"] if os.environ.get(weights.WEIGHTS_ENV) else []) + ["cache"]
    console.print("searched, in order: " + ", ".join(f"{d} ({label})" for d, label in zip(dirs, labels)))
    return 0


def cmd_weights_download(args) -> int:
    from swapbench.bench import download

    files = download.select(args.names, args.used_by)
    if not files:
        raise ValueError("name the files to download (see `bench weights`) or pass --for METHOD_OR_BACKEND")
    unavailable = 0
    for f in files:
        try:
            outcome = download.download(f, args.weights_dir, progress=not args.no_progress, retries=args.retries)
        except download.DownloadError as exc:
            err.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
            unavailable += 1
            continue
        except KeyboardInterrupt:  # the .part file is kept
            err.print(f"interrupted: run the same command again to resume {f.filename}")
            return 130
        console.print(outcome.message, highlight=False, soft_wrap=True)
        unavailable += outcome.action == "manual"
    return 1 if unavailable else 0


if __name__ == "__main__":
    sys.exit(main())
