"""Everything registered, and the weight files each declares, with their users derived from the
declarations (a file's "used by" is the list of classes whose `weights` name it)."""

from __future__ import annotations

from dataclasses import dataclass

from swapbench import methods, metrics, weights
from swapbench.faces import detect, parsing
from swapbench.methods.base import parse_options
from swapbench.registry import UnknownName
from swapbench.weights import WeightFile


@dataclass(frozen=True)
class Component:
    kind: str  # "method" | "backend" | "detector" | "parser"
    name: str
    weights: tuple[WeightFile, ...]


def components() -> list[Component]:
    """Every method, metric backend and face detector, imported (their classes declare their files)."""
    out = [Component("method", n, tuple(cls.weights)) for n, cls in methods.all_methods().items()]
    out += [Component("backend", n, tuple(cls.weights)) for n, cls in metrics.all_backends().items()]
    out += [Component("detector", n, tuple(cls.weights)) for n, cls in detect.DETECTORS.all().items()]
    out.append(Component("parser", "face_parsing", (parsing.WEIGHTS,)))  # load_face_parser, for any user
    return out


def weight_files() -> dict[str, tuple[WeightFile, list[str]]]:
    """{registry name: (file, names of the components that use it)}; files also enter weights.FILES."""
    out: dict[str, tuple[WeightFile, list[str]]] = {}
    for comp in components():
        for f in comp.weights:
            weights.register(f)
            out.setdefault(f.name, (f, []))[1].append(comp.name)
    for name in weights.FILES.names():  # files registered by other means (plugins, tests)
        out.setdefault(name, (weights.FILES.get(name), []))
    return dict(sorted(out.items()))


def select(names=(), used_by=(), options: dict | None = None) -> list[WeightFile]:
    """Files by registry name or file name, plus every file a method, backend or detector uses; for a
    method, the files its options need (options: config sections by method name, e.g. {"megafs": {"masks": ...}})."""
    files = weight_files()
    by_key = {**{f.filename: f for f, _ in files.values()}, **{n: f for n, (f, _) in files.items()}}
    chosen: dict[str, WeightFile] = {}
    for n in names:
        if n not in by_key:
            raise UnknownName(f"unknown weight file {n!r} (known: {', '.join(files) or 'none'})")
        chosen[by_key[n].name] = by_key[n]
    for user in used_by:
        found = [f for f, users in files.values() if user in users]
        if found and user in methods.all_methods():
            cls = methods.get(user)
            found = list(cls.weights_for(parse_options(cls, (options or {}).get(user))))
        if not found:
            known = sorted({u for _, users in files.values() for u in users})
            raise UnknownName(f"no weight files are used by {user!r} (users: {', '.join(known)})")
        chosen.update({f.name: f for f in found})
    return list(chosen.values())
