"""Shared inputs of the SimSwap tests: the seed of the parity golden and its random weights, made once."""

from __future__ import annotations

import functools

import torch

from swapbench.faces import parsing
from swapbench.methods.ghost.random_weights import random_state_dict
from swapbench.methods.simswap.method import ARCFACE_FILE, ARCFACE_RANDOM_GAINS, GENERATOR_FILES, PARSER_FILE
from swapbench.methods.simswap.networks import ArcFace, Generator

SEED = 20261207  # seed of random_state_dict in tests/golden/simswap_parity.npz


@functools.cache
def seeded_state(what: str) -> dict:
    """Random state dict of "arcface", "224", "512" or "parser" (several seconds each); do not mutate."""
    with torch.device("meta"):
        module = {"arcface": ArcFace, "224": lambda: Generator(224), "512": lambda: Generator(512),
                  "parser": parsing.BiSeNet}[what]()
    return random_state_dict(module.state_dict(), SEED, ARCFACE_RANDOM_GAINS if what == "arcface" else None)


def seeded_weights(crop: int = 224) -> dict:
    """{file name: state} for SimSwap (crop 224) or SimSwap512 (crop 512), as load_weights takes them."""
    return {GENERATOR_FILES[crop].name: seeded_state(str(crop)), ARCFACE_FILE.name: seeded_state("arcface"),
            PARSER_FILE.name: seeded_state("parser")}


# Where the pickled classes live: foamliu's top-level models.py (the 2020 file) and SimSwap's
# models/arcface_models.py (the 2023 file, re-saved from SimSwap, whose models/__init__.py re-exports them).
ARCFACE_MODULES = {"2020": "models", "2023": "models.arcface_models"}


def write_arcface_file(path, state: dict, layout: str = "2023") -> None:
    """arcface_checkpoint.tar as SimSwap publishes it, from stand-in classes named as the official ones.

    2023: torch.save of the bare ResNet module. 2020: foamliu's training checkpoint, a dict with `model`
    (nn.DataParallel around the ResNet), `metric_fc` (the ArcMargin head, here with 8 classes instead of
    93431) and `optimizer` (an SGD over both), next to epoch counters.
    """
    import sys
    import types
    import warnings

    from swapbench.methods.simswap.networks import IRBlock, SEBlock

    where = ARCFACE_MODULES[layout]
    fake = types.ModuleType(where)
    names = {ArcFace: "ResNet", IRBlock: "IRBlock", SEBlock: "SEBlock"}
    for name in [*names.values(), "ArcMarginModel"]:
        setattr(fake, name, type(name, (torch.nn.Module,), {"__module__": where}))
    net = ArcFace()
    net.load_state_dict(state, strict=True)
    for module in list(net.modules()):
        if isinstance(module, SEBlock):
            module.avg_pool = torch.nn.AdaptiveAvgPool2d(1)  # stateless modules the official classes hold
        if type(module) in names:
            module.__class__ = getattr(fake, names[type(module)])
    net.maxpool, net.dropout = torch.nn.MaxPool2d(2, 2), torch.nn.Dropout()
    saved = {k: sys.modules.get(k) for k in ("models", where)}
    sys.modules.update({"models": types.ModuleType("models"), where: fake})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "couldn't retrieve source code" of the stand-in classes
            if layout == "2023":
                torch.save(net, path)
            else:
                head = fake.ArcMarginModel()
                head.weight = torch.nn.Parameter(torch.zeros(8, 512))
                opt = torch.optim.SGD([*net.parameters(), head.weight], lr=0.1, momentum=0.9)
                # written by torch < 1.6: the legacy (non-zip) serialization
                torch.save({"epoch": 16, "epochs_since_improvement": 0, "acc": 0.99,
                            "model": torch.nn.DataParallel(net), "metric_fc": head, "optimizer": opt},
                           path, _use_new_zipfile_serialization=False)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
