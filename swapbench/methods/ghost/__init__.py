"""GHOST (ai-forever/sber-swap): AEI-Net generator + ArcFace IResNet-100, ported for swapbench.

Importing this package registers the methods "ghost" (2 AAD blocks, the main model), "ghost_1block"
and "ghost_3blocks", and their weight files.
"""

from swapbench.methods.ghost.method import (
    ARCFACE_FILE,
    GENERATOR_FILES,
    Ghost,
    Ghost1Block,
    Ghost3Blocks,
    random_weights,
)

__all__ = ["ARCFACE_FILE", "GENERATOR_FILES", "Ghost", "Ghost1Block", "Ghost3Blocks", "random_weights"]
