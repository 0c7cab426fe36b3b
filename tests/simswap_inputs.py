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
