"""The `bench` command line: run, list, leaderboard, report, compare, check, weights.

Output: tables go to stdout as a rich table on a terminal and as complete plain text otherwise
(`--format table|tsv|json|markdown` chooses); progress and messages go to stderr.
Exit status: 0 done; 1 a regression (`bench check`) or nothing to show; 2 a user error (bad config,
unknown name, missing or refused file, missing data); 3 a run in which no pair could be evaluated;
4 an unexpected internal error (the traceback is written to a log file, `--debug` prints it);
130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import traceback
import warnings
from pathlib import Path

from rich.console import Console

from swapbench.bench import config as config_mod
from swapbench.cli.output import Columns, emit

console = Console()
err = Console(stderr=True, soft_wrap=True)

EXIT_OK, EXIT_FINDINGS, EXIT_USER, EXIT_NOTHING_EVALUATED, EXIT_INTERNAL = 0, 1, 2, 3, 4


class UserError(Exception):
    """An error the user can fix; its message says what was expected and what to do."""


def _user_error_types() -> tuple[type[BaseException], ...]:
    import yaml

    from swapbench.datasets.protocol import DataError
    from swapbench.registry import UnknownName
    from swapbench.weights import WeightsError
    from swapbench.weights.download import DownloadError

    return (UserError, UnknownName, ValueError, TypeError, FileNotFoundError, PermissionError, NotImplementedError,
            WeightsError, DataError, DownloadError, yaml.YAMLError)


# Lines native libraries write straight to file descriptor 2: absl/glog ("W0000 00:00:... file.cc:12] ..."),
# "WARNING: Logging before InitGoogle() ...", TensorFlow Lite's "INFO: Created TensorFlow Lite XNNPACK ...".
NATIVE_NOISE = re.compile(rb"^(?:[IWE]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] |WARNING: Logging before InitGoogle|"
                          rb"INFO: Created TensorFlow Lite|WARNING: All log messages before absl::InitializeLog)")


def quiet_native_libraries() -> None:
    """Drop native libraries' log lines (absl/glog from mediapipe, TensorFlow Lite, onnxruntime).

    They write to file descriptor 2 from C++ threads, where no Python setting reaches them; so fd 2
    becomes a pipe whose lines are copied to the real stderr unless they are such log lines, and
    Python's own sys.stderr writes to the real stderr directly (a terminal stays a terminal for rich).
    """
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    real = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    sys.stderr = os.fdopen(os.dup(real), "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")

    def copy():
        with os.fdopen(read, "rb") as lines:
            for line in lines:
                if not NATIVE_NOISE.match(line):
                    os.write(real, line)

    threading.Thread(target=copy, name="native-stderr-filter", daemon=True).start()


def entry() -> None:
    """The `bench` console script: `main` with native log lines filtered unless --verbose."""
    if "--verbose" not in sys.argv[1:]:
        quiet_native_libraries()
    sys.exit(main())


def version_text() -> str:
    from swapbench import __version__
    from swapbench.bench.runinfo import git_revision

    rev = git_revision()
    return f"swapbench {__version__}" + (f" (git {rev})" if rev else "")


class _Version(argparse.Action):
    """Like action="version", but the git revision is looked up only when asked for."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="print full tracebacks of errors")
    common.add_argument("--verbose", action="store_true", help="show native libraries' logs (absl, TFLite, onnxruntime)")
    fmt = argparse.ArgumentParser(add_help=False)
    fmt.add_argument("--format", choices=["table", "tsv", "json", "markdown"],
                     help="output format (default: a table on a terminal, tsv otherwise)")

    parser = argparse.ArgumentParser(prog="bench", description="swapbench: a fair benchmark for face-swap methods",
                                     parents=[common])
    parser.add_argument("--version", action=_Version, help="print the version (and git revision in a checkout)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", parents=[common], help="swap and score a protocol (resumes an interrupted run with the same settings)")
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
    p.add_argument("--no-progress", action="store_true", help="no live display; one line per finished stage")
    p.add_argument("--format", choices=["table", "markdown"],
                   help="the results at the end: a compact table (default on a terminal) or the full leaderboard "
                        "markdown with intervals and notes (default when piped)")

    p = sub.add_parser("list", parents=[common, fmt], help="list methods, protocols or metric backends")
    p.add_argument("what", choices=["methods", "protocols", "backends"])
    p.add_argument("--weights-dir")

    p = sub.add_parser("leaderboard", parents=[common], help="render markdown/CSV leaderboards and comparison grids from the store")
    p.add_argument("--protocol")
    p.add_argument("--store")
    p.add_argument("--out", default="leaderboard", help="output directory (default: ./leaderboard)")
    p.add_argument("--include-unpublishable", action="store_true", help="include rows made with test weights")
    p.add_argument("--by", choices=["source_identity", "target_identity", "pose_bin"],
                   help="also write the table per group of pairs (<protocol>_by_<BY>.md): per source or target "
                        "identity, or per target yaw (frontal, 15-45°, >45°)")

    p = sub.add_parser("report", parents=[common],
                       help="write a static HTML site from the store: sortable leaderboards, provenance, best/worst pairs")
    p.add_argument("--out", default="report", help="output directory (default: ./report); open DIR/index.html")
    p.add_argument("--protocol")
    p.add_argument("--store")
    p.add_argument("--include-unpublishable", action="store_true", help="include rows made with test weights")
    p.add_argument("--gallery-pairs", type=int, default=3, metavar="K",
                   help="best and worst K pairs per metric on each method's page (default: 3)")

    p = sub.add_parser("compare", parents=[common, fmt],
                       help="paired differences of two methods on the pairs both evaluated, with intervals and tests")
    p.add_argument("a", metavar="A", help="a method with a complete run")
    p.add_argument("b", metavar="B", help="another method with a complete run on the same protocol")
    p.add_argument("--protocol")
    p.add_argument("--store")
    p.add_argument("--include-unpublishable", action="store_true", default=True, help=argparse.SUPPRESS)

    p = sub.add_parser("check", parents=[common, fmt], help="compare a run with golden results (exit 1 on any regression)")
    p.add_argument("golden", nargs="+", type=Path, help="golden JSON file(s), e.g. tests/golden/samples.json")
    p.add_argument("--store")
    p.add_argument("--update", action="store_true", help="rewrite the golden file(s) from the current run")
    p.add_argument("--data-root", help="folder holding the data sets the golden runs read (ffhq/, celebahq/, ffpp/)")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("weights", parents=[common, fmt], help="list the registered weight files and their status; `download` fetches them")
    p.add_argument("action", nargs="?", choices=["download"], help="download NAME… (or --for METHOD) into the weights cache")
    p.add_argument("names", nargs="*", metavar="NAME", help="registry name or file name, after `download`")
    p.add_argument("--for", dest="used_by", action="append", default=[], metavar="METHOD_OR_BACKEND",
                   help="only the files a method or metric backend uses (repeatable; lists or downloads them)")
    p.add_argument("--weights-dir")
    p.add_argument("--set", action="append", default=[], metavar="METHOD.OPTION=VALUE",
                   help="a method option that changes the files --for needs, e.g. megafs.masks=annotation")
    p.add_argument("--retries", type=int, default=2, help="resume a dropped download this many times")
    p.add_argument("--no-progress", action="store_true")
    return parser


def main(argv=None) -> int:
    # A stray SIGPROF was seen killing `bench run` (default action: terminate) while mediapipe's graph
    # threads ran; a process that installed no profiler has no use for it, so it is ignored here.
    if signal.getsignal(signal.SIGPROF) == signal.SIG_DFL:
        signal.signal(signal.SIGPROF, signal.SIG_IGN)
    args = build_parser().parse_args(argv)
    if not args.verbose:
        import onnxruntime

        onnxruntime.set_default_logger_severity(3)  # errors only
    commands = {"run": cmd_run, "list": cmd_list, "leaderboard": cmd_leaderboard, "report": cmd_report, "compare": cmd_compare, "check": cmd_check,
                "weights": cmd_weights}
    try:
        return commands[args.command](args)
    except KeyboardInterrupt:
        err.print("interrupted: run the same command again to resume")
        return 130
    except BrokenPipeError:  # the reader went away (`bench weights | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except _user_error_types() as exc:
        if args.debug:
            traceback.print_exc()
        message = str(exc)
        err.print(f"[bold red]error:[/bold red] {message}", highlight=False, markup=True)
        return EXIT_USER
    except Exception as exc:  # noqa: BLE001 - anything else is a bug: short message, traceback in a file
        if args.debug:
            traceback.print_exc()
            return EXIT_INTERNAL
        log = _write_traceback(args)
        err.print(f"[bold red]internal error:[/bold red] {type(exc).__name__}: {exc}", highlight=False)
        err.print(f"the full traceback is in {log}; run with --debug to print it", highlight=False)
        return EXIT_INTERNAL


def _write_traceback(args) -> Path:
    """Write the current exception's traceback next to the store (or in the temp dir); return the file."""
    import tempfile
    import time

    from swapbench.bench import layout
    from swapbench.bench.store import default_path

    store = Path(getattr(args, "store", None) or default_path()).expanduser()
    for folder in (layout.logs_dir(layout.files_dir(store)), Path(tempfile.gettempdir()) / "swapbench-logs"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
            path.write_text(f"bench {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}")
            return path
        except OSError:
            continue
    return Path("(could not write a log file)")


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
        return EXIT_OK
    from swapbench.bench import engine
    from swapbench.bench.progress import Reporter
    from swapbench.bench.store import Store
    from swapbench.bench.trainer import is_global_zero
    from swapbench.leaderboard import tables

    reporter = Reporter(live=not args.no_progress, enabled=is_global_zero())
    with warnings.catch_warnings(record=True) as caught, reporter:
        warnings.simplefilter("always")
        results = engine.run(cfg, reporter)
    if not is_global_zero():
        return EXIT_OK  # the other DDP processes stay quiet
    store = Store(cfg["store"])
    df = tables.collect(store, include_unpublishable=True)
    df = df[df["run_id"].isin([r.run_id for r in results])] if not df.empty else df
    if (args.format or ("table" if console.is_terminal else "markdown")) == "markdown":
        print(tables.markdown(df, store), end="")
    else:
        print_compact(tables.compact(df))
    print_run_summary(results, store, caught)
    return EXIT_NOTHING_EVALUATED if results and all(r.swapped == 0 for r in results) else EXIT_OK


def print_compact(headlines) -> None:
    """The headline values of each protocol as one terminal table, best or tied in bold colour, and where
    the full tables are."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    for h in headlines:
        table = Table(title=h.protocol, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
        table.add_column("")
        for method in h.methods:
            table.add_column(method, justify="right", overflow="fold")
        for cells, best in zip(h.rows, h.best):
            table.add_row(cells[0], *(Text(c, style="bold green" if b else "") for c, b in zip(cells[1:], best)))
        console.print(table)
        console.print("bold green: best, or not significantly different from the best, on the pairs every method "
                      "evaluated." + (" †: from fewer images than fid.min_samples, strongly biased (FID∞ not shown)."
                                      if h.footnote else ""), highlight=False, style="dim")
    console.print("Full tables with 95% intervals, sample sizes and notes: `bench leaderboard`; "
                  "the HTML report: `bench report`.", highlight=False)


def print_run_summary(results, store, caught_warnings=()) -> None:
    """Per method: pairs swapped, failed and time; failures grouped by stage and reason; warnings once."""
    from collections import defaultdict

    for r in results:
        what = "reused" if r.reused else f"{r.seconds:.1f} s"
        err.print(f"{r.method}: {r.swapped}/{r.pairs} pairs swapped, {r.failed} failed, {what} (run {r.run_id})",
                  highlight=False)
        groups = defaultdict(list)
        for f in r.failures:
            groups[(f.stage, _reason_kind(f.reason))].append(f.pair_id)
        for (stage, reason), pairs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            examples = ", ".join(pairs[:2]) + (", …" if len(pairs) > 2 else "")
            err.print(f"  {stage}: {reason} ×{len(pairs)} (e.g. {examples})", highlight=False)
    _print_warnings(caught_warnings)
    err.print(f"results: {store.path}; `bench leaderboard` writes markdown, CSV and the comparison grids",
              highlight=False)
    if results and all(r.swapped == 0 for r in results):
        err.print(f"[bold red]nothing could be evaluated[/bold red]: every pair failed (exit status {EXIT_NOTHING_EVALUATED})")


def _reason_kind(reason: str) -> str:
    """A failure reason without the image it names, so equal causes group together."""
    import re

    text = re.sub(r"^(source|target) \S+: ", r"\1: ", reason)
    return re.sub(r"\b(at|kept the largest at) \([^)]*\)", "", text).strip()


def cmd_list(args) -> int:
    from swapbench import methods, metrics, weights
    from swapbench.datasets import PROTOCOLS
    from swapbench.methods.base import option_fields

    if args.what == "methods":
        rows = []
        for name, cls in methods.all_methods().items():
            status = [weights.status(f, args.weights_dir, verify=False).status for f in cls.weights]
            source = f"{cls.source_crop or cls.crop}_{cls.source_size or cls.size}"
            crop = f"{cls.crop}_{cls.size}" + ("" if source == f"{cls.crop}_{cls.size}" else f" (source {source})")
            rows.append({"method": name, "crop": crop,
                         "weights": ", ".join(f"{f.filename}: {s}" for f, s in zip(cls.weights, status)) or "none needed",
                         "licence": "; ".join(dict.fromkeys(f.licence for f in cls.weights)) or "",
                         "options": ", ".join(f"{n}={d!r}" for n, _, d in option_fields(cls)),
                         "paper": cls.paper, "description": cls.description})
        columns = Columns.of(("method", "method"), ("crop", "crop"), ("weights", "weights"), ("licence", "licence"),
                             ("options", "options"), ("paper", "paper"), ("description", "description"))
    elif args.what == "protocols":
        rows = []
        for name, make in sorted(PROTOCOLS.items()):
            p = make()
            data = sorted({r.uri[7:].partition("/")[0] for r in p.images.values() if r.uri.startswith("data://")})
            rows.append({"protocol": name, "version": p.version, "pairs": len(p.pairs), "images": len(p.images),
                         "hash": p.hash, "data": ", ".join(data) or "bundled", "description": p.description})
        columns = Columns.of(("protocol", "protocol"), ("version", "version"), ("pairs", "pairs"),
                             ("images", "images"), ("hash", "hash"), ("data", "data"), ("description", "description"))
    else:
        rows = [{"backend": name, "family": cls.family, "dim": cls.dim,
                 "weights": ", ".join(f.filename for f in cls.weights) or "bundled", "input": cls.input}
                for name, cls in metrics.all_backends().items()]
        columns = Columns.of(("backend", "backend"), ("family", "family"), ("dim", "dim"), ("weights", "weights"),
                             ("input", "input"))
    emit(rows, columns, args.format, console=console)
    return EXIT_OK


def cmd_leaderboard(args) -> int:
    from swapbench.bench.store import Store
    from swapbench.leaderboard import tables

    store = Store(args.store)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = tables.write(store, Path(args.out), args.protocol, args.include_unpublishable, args.by)
    if not written:
        return _no_complete_runs(store, args.protocol)
    for path in written:
        if path.suffix == ".md":
            print(path.read_text())
    _print_warnings(caught)
    err.print("wrote " + ", ".join(map(str, written)), highlight=False)
    return EXIT_OK


def _no_complete_runs(store, protocol: str | None) -> int:
    err.print(f"no complete runs in {store.path}" + (f" for protocol {protocol}" if protocol else "")
              + ": run `bench run` first")
    return EXIT_FINDINGS


def _print_warnings(caught) -> None:
    """Each distinct user warning caught during a command, once."""
    for text in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning)):
        err.print(f"[yellow]warning:[/yellow] {text}", highlight=False)


def cmd_report(args) -> int:
    from swapbench.bench.store import Store
    from swapbench.leaderboard import report

    if args.gallery_pairs < 0:
        raise UserError("--gallery-pairs takes a number of pairs, 0 or more")
    store = Store(args.store)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pages = report.write(store, Path(args.out), args.protocol, args.include_unpublishable, args.gallery_pairs)
    if not pages:
        return _no_complete_runs(store, args.protocol)
    _print_warnings(caught)
    size = report.site_size(Path(args.out))
    print(pages[0])
    err.print(f"wrote {len(pages)} pages and {size['images']} images ({size['bytes'] / 1e6:.2f} MB) in {args.out}; "
              f"open {pages[0]}", highlight=False)
    return EXIT_OK


def cmd_compare(args) -> int:
    from swapbench.bench.store import Store
    from swapbench.leaderboard import stats

    store = Store(args.store)
    try:
        rows = stats.compare_methods(store, args.a, args.b, args.protocol)
    except LookupError as exc:
        raise UserError(str(exc)) from None
    fmt = args.format or None
    if fmt != "json":
        rows = [{**r, **{k: _fmt(r[k]) for k in ("a", "b", "diff", "ci_low", "ci_high") if r[k] is not None},
                 "p": "" if r["p"] is None else f"{r['p']:.2g}", "p_holm": "" if r["p_holm"] is None else f"{r['p_holm']:.2g}",
                 "significant": {True: "yes", False: "no", None: ""}[r["significant"]]} for r in rows]
    columns = Columns.of(("protocol", "protocol"), ("metric", "metric"), ("n", "pairs"), ("a", args.a), ("b", args.b),
                         ("diff", f"{args.a} - {args.b}"), ("ci_low", "95% low"), ("ci_high", "95% high"),
                         ("p", "p (Wilcoxon)"), ("p_holm", "p (Holm)"), ("significant", "significant"),
                         ("better", "better"))
    emit(rows, columns, fmt, console=console)
    if fmt != "json":
        err.print(f"{args.a} - {args.b} on the pairs both evaluated: 95% paired bootstrap interval over pairs; "
                  "two-sided Wilcoxon signed-rank p (FID: paired sign-flip permutation test), Holm-corrected over the "
                  "tested metrics of each protocol; "
                  "significant: Holm p < 0.05", highlight=False)
    return EXIT_OK


def cmd_check(args) -> int:
    import json

    from swapbench.bench import engine
    from swapbench.bench.progress import Reporter
    from swapbench.bench.store import Store
    from swapbench.leaderboard import check

    failed = 0
    for path in args.golden:
        if not path.is_file():
            raise FileNotFoundError(f"golden file {path} not found; a new one needs at least its \"run\" section")
        try:
            golden = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"golden file {path} is not valid JSON: {exc}") from None
        cfg = check.config_for(golden, args.store, args.data_root)
        with Reporter(live=not args.no_progress) as reporter:
            results = engine.run(cfg, reporter)
        aggregates, pairs, provenance = check.results_of(Store(cfg["store"]), [r.run_id for r in results])
        if args.update:
            check.write_golden(path, check.make_golden(cfg, aggregates, pairs, provenance, golden))
            err.print(f"updated {path}")
            continue
        findings = check.compare(golden, aggregates, pairs)
        rows = [{"method": f.method, "metric": f.metric, "pair": f.pair or "(aggregate)", "golden": _fmt(f.old),
                 "now": _fmt(f.new), "tolerance": f"±{f.tol:g}", "status": "ok" if f.ok else "REGRESSION"}
                for f in findings if f.pair is None or not f.ok]
        emit(rows, Columns.of(*((k, k) for k in ("method", "metric", "pair", "golden", "now", "tolerance", "status"))),
             args.format, title=str(path), console=console)
        bad = [f for f in findings if not f.ok]
        for f in bad:
            err.print(f"regression: {f.where}: golden {_fmt(f.old)}, now {_fmt(f.new)}, tolerance ±{f.tol:g}",
                      highlight=False)
        print(f"{path}: {len(findings) - len(bad)}/{len(findings)} values within tolerance")
        failed += bool(bad)
    return EXIT_FINDINGS if failed else EXIT_OK


def _fmt(v) -> str:
    return "missing" if v is None else f"{v:.6f}"


def cmd_weights(args) -> int:
    from swapbench import weights
    from swapbench.bench.catalogue import weight_files
    from swapbench.weights import download

    from swapbench.bench.catalogue import select
    from swapbench.weights import recorded

    if args.action == "download":
        return cmd_weights_download(args)
    dirs = weights.search_dirs(args.weights_dir)
    rows = []
    chosen = ({f.name for f in select(args.names, args.used_by, config_mod.parse_set(args.set))}
              if args.names or args.used_by else None)
    for name, (f, users) in weight_files().items():
        if chosen is not None and name not in chosen:
            continue
        st = weights.status(f, args.weights_dir)
        state = st.status
        parts = [download.part_path(d / f.filename) for d in dirs]  # an interrupted `bench weights download`
        if st.path is None and any(p.is_file() for p in parts):
            done = max(p.stat().st_size for p in parts if p.is_file())
            state += f" ({done:,} bytes downloaded; `bench weights download` resumes)"
        rows.append({"name": name, "file": f.filename, "format": f.format, "used_by": users, "licence": f.licence,
                     "size": f.size, "sha256": recorded.listing(f, st.path), "source": download.source_kind(f), "url": f.url,
                     "status": state, "path": str(st.path) if st.path else None,
                     "put_it_in": str(dirs[0] / f.filename)})
    emit(rows, Columns.of(("name", "name"), ("file", "file"), ("format", "format"), ("used_by", "used by"),
                          ("licence", "licence"), ("size", "size"), ("sha256", "sha256"), ("source", "source"), ("url", "URL"),
                          ("status", "status"), ("path", "path"), ("put_it_in", "where to put it")),
         args.format, console=console)
    labels = (["--weights-dir / config weights_dir"] if args.weights_dir else []) \
        + ([f"${weights.WEIGHTS_ENV}"] if os.environ.get(weights.WEIGHTS_ENV) else []) + ["cache"]
    err.print("searched, in order: " + ", ".join(f"{d} ({label})" for d, label in zip(dirs, labels)), highlight=False)
    return EXIT_OK


def cmd_weights_download(args) -> int:
    from swapbench.bench.catalogue import select
    from swapbench.weights import download

    files = select(args.names, args.used_by, config_mod.parse_set(args.set))
    if not files:
        raise UserError("name the files to download (see `bench weights`) or pass --for METHOD_OR_BACKEND")
    unavailable = 0
    for f in files:
        try:
            outcome = download.download(f, args.weights_dir, progress=not args.no_progress, retries=args.retries)
        except download.DownloadError as exc:
            err.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
            unavailable += 1
            continue
        except KeyboardInterrupt:  # the .part file is kept
            err.print(f"interrupted: run the same command again to resume {f.filename}")
            return 130
        console.print(outcome.message, highlight=False, soft_wrap=True)
        unavailable += outcome.action == "manual"
    return EXIT_FINDINGS if unavailable else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
