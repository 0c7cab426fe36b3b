"""Tables the CLI prints, complete in every format.

On a terminal a rich table (long values fold, they are never cut); when stdout is not a terminal,
tab-separated text with full values, so `bench weights | grep hopenet` finds what the table shows.
`--format json|tsv|markdown|table` chooses explicitly; every format carries the same rows.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Columns:
    """Row keys in display order, with their headers."""

    keys: tuple[str, ...]
    headers: tuple[str, ...]

    @classmethod
    def of(cls, *pairs: tuple[str, str]) -> "Columns":
        return cls(tuple(k for k, _ in pairs), tuple(h for _, h in pairs))


def default_format(stream=None) -> str:
    stream = stream or sys.stdout
    return "table" if getattr(stream, "isatty", lambda: False)() else "tsv"


def emit(rows: list[dict], columns: Columns, fmt: str | None = None, title: str | None = None,
         console: Console | None = None) -> None:
    fmt = fmt or default_format()
    if fmt == "json":
        print(json.dumps([{k: r.get(k) for k in columns.keys} for r in rows], indent=2, ensure_ascii=False))
    elif fmt == "tsv":
        print("\t".join(columns.keys))
        for r in rows:
            print("\t".join(_plain(r.get(k)) for k in columns.keys))
    elif fmt == "markdown":
        if title:
            print(f"**{title}**\n")
        print("| " + " | ".join(columns.headers) + " |")
        print("|" + "---|" * len(columns.keys))
        for r in rows:
            print("| " + " | ".join(_plain(r.get(k)).replace("|", "\\|") for k in columns.keys) + " |")
    elif fmt == "table":
        table = Table(*columns.headers, title=title)
        for column in table.columns:
            column.overflow = "fold"
        for r in rows:
            table.add_row(*(_plain(r.get(k)) for k in columns.keys))
        (console or Console()).print(table)
    else:
        raise ValueError(f"unknown output format {fmt!r}; choose table, tsv, json or markdown")


def _plain(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value).replace("\t", " ").replace("\n", " ")
