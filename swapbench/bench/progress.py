"""One progress display for a run.

On a terminal: a rich display with one line for the current stage (faces, swap, features, scoring)
naming the method and backend, items done out of total, elapsed and remaining time, and an overall
line for the run. Otherwise (or with --no-progress): one log line per finished stage with its time
and throughput, on stderr. Lightning's own bars are off; the engine reports through this module.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

from lightning.pytorch.callbacks import Callback
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Stage:
    """A stage in flight: `advance(n)` as items finish."""

    def __init__(self, reporter: "Reporter", task, total: int):
        self.reporter, self.task, self.total, self.done = reporter, task, total, 0

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.reporter.live is not None:
            self.reporter.live.update(self.task, completed=self.done)


class Reporter:
    """`live=True`: the rich display (only when stderr is a terminal); else one line per finished stage."""

    def __init__(self, live: bool = True, console: Console | None = None, enabled: bool = True):
        self.console = console or Console(stderr=True)
        self.enabled = enabled  # False on DDP ranks other than 0
        show = live and enabled and self.console.is_terminal
        self.live = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TextColumn("remaining"), TimeRemainingColumn(),
                             console=self.console, transient=True) if show else None
        self.overall = None
        self.lines: list[str] = []

    def __enter__(self):
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.stop()

    def plan(self, stages: int, what: str) -> None:
        """The overall line: how many stages the run has."""
        if self.live is not None:
            self.overall = self.live.add_task(f"[bold]run[/bold] {what}", total=stages)

    @contextmanager
    def stage(self, name: str, total: int, label: str = ""):
        """A stage of `total` items, e.g. stage("swap", 72, "ghost")."""
        title = f"{name}" + (f" · {label}" if label else "")
        task = self.live.add_task(f"  {title}", total=total) if self.live is not None else None
        stage = Stage(self, task, total)
        t0 = time.perf_counter()
        try:
            yield stage
        finally:
            seconds = time.perf_counter() - t0
            if self.live is not None:
                self.live.remove_task(task)
                if self.overall is not None:
                    self.live.advance(self.overall)
            rate = f", {stage.done / seconds:.2f}/s" if seconds > 0 and stage.done else ""
            line = f"{title}: {stage.done}/{total} in {seconds:.1f} s{rate}"
            self.lines.append(line)
            if self.enabled and self.live is None and total:
                print(line, file=sys.stderr, flush=True)

    def callback(self, stage: Stage) -> Callback:
        """A Lightning callback that advances `stage` by each finished batch."""
        return _BatchProgress(stage)

    def note(self, message: str) -> None:
        if not self.enabled:
            return
        if self.live is not None:
            self.live.console.print(message, highlight=False)
        else:
            print(message, file=sys.stderr, flush=True)


class _BatchProgress(Callback):
    def __init__(self, stage: Stage):
        self.stage = stage

    def _advance(self, batch):
        first = next(iter(batch.values())) if isinstance(batch, dict) else batch
        self.stage.advance(len(first))

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._advance(batch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._advance(batch)
