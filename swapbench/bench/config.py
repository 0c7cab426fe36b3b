"""Run configuration: the embedded defaults, then YAML files, then command-line overrides.

Besides the keys of default.yaml, a config may hold one section per method, named after it, with the
method's typed options (e.g. `precomputed: {dir: swaps}` or `--set precomputed.dir=swaps`); the sections of the
methods a run uses are completed with their defaults and checked against the method's Options.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import yaml

from swapbench.methods.base import option_fields, parse_options
from swapbench.registry import UnknownName


def default_text() -> str:
    """The embedded default config (a package data file, read through importlib.resources)."""
    return resources.files("swapbench.bench").joinpath("default.yaml").read_text(encoding="utf-8")


def load(files=(), overrides: dict | None = None) -> dict:
    from swapbench.methods import METHODS

    cfg = yaml.safe_load(default_text())
    sections = set(METHODS.names())
    for f in files:
        path = Path(f)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} not found")
        try:
            update = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(update, dict):
            raise ValueError(f"config file {path} must hold a mapping of config keys, not a {type(update).__name__}")
        merge(cfg, update, str(path), sections=sections)
    if overrides:
        merge(cfg, overrides, "command line", sections=sections)
    if isinstance(cfg.get("methods"), str):
        cfg["methods"] = [cfg["methods"]]
    for name in cfg.get("methods") or ():
        cls = METHODS.get(name)
        defaults = {field: default for field, _, default in option_fields(cls)}
        if defaults or name in cfg:
            cfg[name] = {**defaults, **(cfg.get(name) or {})}
            parse_options(cls, cfg[name])  # unknown options and wrong types stop here, naming the key
    return cfg


def merge(base: dict, update: dict, origin: str, prefix: str = "", sections=()) -> None:
    for key, value in update.items():
        if not prefix and key in sections:  # a method's option section: checked by its Options
            if not isinstance(value, dict):
                raise TypeError(f"{origin}: {key} (the options of method {key}) must be a mapping")
            base[key] = {**(base.get(key) or {}), **copy.deepcopy(value)}
            continue
        if key not in base:
            raise UnknownName(f"{origin}: unknown config key '{prefix}{key}'; known: {', '.join(base)}")
        if isinstance(base[key], dict) and key != "metrics":
            if not isinstance(value, dict):
                raise TypeError(f"{origin}: {prefix}{key} must be a mapping")
            merge(base[key], value, origin, f"{prefix}{key}.")
        else:
            base[key] = copy.deepcopy(value)


def parse_set(items) -> dict:
    """`a.b=value` strings (value parsed as YAML) to a nested dict."""
    out: dict = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects key=value, got {item!r}")
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(raw)
    return out


def dump(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
