"""Wall-clock helpers shared by the per-method speed scripts (run as `python benchmarks/<script>.py`)."""

from __future__ import annotations

import statistics
import time


def timed_interleaved(fns: dict, repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each function, calls interleaved so that load from other processes on a
    shared machine hits every implementation alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return times


def best(fn, repeats: int, warmup: int = 0) -> float:
    """The least disturbed of `repeats` timed calls, in seconds."""
    return min(timed_interleaved({"fn": fn}, repeats, warmup)["fn"])


def print_medians(fns: dict, repeats: int, batch: int) -> None:
    """Times (implementation, what) -> fn interleaved and prints one markdown row each: median seconds
    per call and swaps per second at this batch size."""
    for (impl, what), t in timed_interleaved(fns, repeats).items():
        med = statistics.median(t)
        print(f"| {impl} | {what} | {batch} | {med:.2f} | {batch / med:.3f} |")
