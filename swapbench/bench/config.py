"""Run configuration: the embedded defaults, then YAML files, then command-line overrides."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

DEFAULT = Path(__file__).with_name("default.yaml")


def load(files=(), overrides: dict | None = None) -> dict:
    cfg = yaml.safe_load(DEFAULT.read_text())
    for f in files:
        path = Path(f)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} not found")
        merge(cfg, yaml.safe_load(path.read_text()) or {}, str(path))
    if overrides:
        merge(cfg, overrides, "command line")
    return cfg


def merge(base: dict, update: dict, origin: str, prefix: str = "") -> None:
    for key, value in update.items():
        if key not in base:
            raise KeyError(f"{origin}: unknown config key '{prefix}{key}'; known: {', '.join(base)}")
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
