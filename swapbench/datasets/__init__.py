"""Data sets and protocols (pair lists)."""

from __future__ import annotations

import copy
from contextlib import contextmanager

from swapbench.datasets.clips import folder_video_protocol
from swapbench.datasets.files import packaged, protocol_names
from swapbench.datasets.layouts import LAYOUTS, check_files, make_locator
from swapbench.datasets.protocol import DATA_SCHEME, DataError, ImageRef, Pair, Protocol
from swapbench.datasets.samples import samples
from swapbench.datasets.user import csv_protocol, folder_protocol
from swapbench.registry import UnknownName

PROTOCOLS = {"samples": lambda frames=None: samples(), **{name: packaged(name) for name in protocol_names()}}


def get_protocol(name: str, frames: int | None = None) -> Protocol:
    """A registered protocol by name, not yet located (its data:// images have no files yet);
    frames: T, the frames per clip of a video protocol (None: the protocol's default)."""
    if name not in PROTOCOLS:
        raise UnknownName(f"unknown protocol {name!r}; known: {', '.join(sorted(PROTOCOLS))}, "
                          "folder:DIR, folder_video:DIR, csv:FILE")
    return PROTOCOLS[name](frames) if frames else PROTOCOLS[name]()


@contextmanager
def registered(name: str, protocol: Protocol):
    """`protocol` under `name` for get_protocol (so `bench run`'s engine finds it by name) inside the block
    only; whatever `name` was before comes back afterwards.

    A benchmark's own pair list (a subset, a synthetic protocol) runs through the engine this way. Set
    for good in a process, it would replace a built-in protocol for every later caller: the throughput
    script's `samples` subset, run in the test process, once gave every later test file of that worker
    a 3-image `samples` protocol. Each call returns a fresh copy, as the other entries do, so a caller
    that edits its protocol does not edit the next caller's."""
    previous = PROTOCOLS.get(name)
    PROTOCOLS[name] = lambda frames=None: copy.deepcopy(protocol)  # used as given: frames is not applied
    try:
        yield
    finally:
        if previous is None:
            del PROTOCOLS[name]
        else:
            PROTOCOLS[name] = previous


def load_protocol(cfg: dict) -> Protocol:
    """The protocol a run config names, subset and located on this machine, its files checked.

    cfg keys: protocol (a registered name, folder:DIR, folder_video:DIR or csv:FILE), subset (pairs, or
    clips of a video protocol), video.frames (frames per clip), data_root and data (allow_missing,
    ffhq_images, ffpp_compression). Raises DataError when the data set is missing, or incomplete and
    data.allow_missing is false.
    """
    spec, data_root, options = cfg["protocol"], cfg.get("data_root"), cfg.get("data") or {}
    frames = (cfg.get("video") or {}).get("frames")
    if spec.startswith("folder_video:"):
        protocol = folder_video_protocol(spec[len("folder_video:"):], frames)
    elif spec.startswith("folder:"):
        protocol = folder_protocol(spec[len("folder:"):])
    elif spec.startswith("csv:"):
        protocol = csv_protocol(spec[len("csv:"):], data_root)
    else:
        protocol = get_protocol(spec, frames)
    protocol = protocol.subset(cfg.get("subset"))
    hint = ""
    if protocol.locate is None and any(r.uri.startswith(DATA_SCHEME) for r in protocol.images.values()):
        protocol.locate = make_locator(protocol, data_root, options)
        names = {r.uri[len(DATA_SCHEME):].partition("/")[0] for r in protocol.images.values()}
        hint = "".join(f"; {LAYOUTS[n].title}: {LAYOUTS[n].obtain}" for n in sorted(names) if n in LAYOUTS)
    if frames and protocol.clips is None:
        raise ValueError(f"video.frames={frames}: protocol {protocol.name} has no video clips")
    check_files(protocol, bool(options.get("allow_missing")), hint)
    return protocol


__all__ = ["ImageRef", "Pair", "Protocol", "DataError", "get_protocol", "load_protocol", "PROTOCOLS",
           "registered"]
