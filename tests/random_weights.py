"""Deterministic random weights for parity and loading tests, regenerated from each key's name.

Every tensor comes from a torch.Generator seeded by the CRC32 of its state_dict key, so the official
model and swapbench's port get identical weights without storing them. Scales keep activations of a
50-layer network finite: He-scaled convolutions, batch-norm statistics near identity.
"""

from __future__ import annotations

import zlib

import torch


def norm_keys(module: torch.nn.Module) -> set:
    """state_dict keys of the batch-norm scales and shifts of a module, for networks whose key names
    do not say "bn" (e.g. TreB1eN's IR-SE50, whose batch norms are Sequential indices)."""
    return {f"{name}.{p}" for name, m in module.named_modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.affine for p in ("weight", "bias")}


def random_state_dict(template: dict, norm: set = frozenset(), residual: set = frozenset()) -> dict:
    """Random tensors shaped like `template`.

    norm: batch-norm parameters the key names do not reveal; residual: the scales of the last batch
    norm of residual branches (small, like "bn3.weight"), for networks whose names do not say so.
    """
    out = {}
    for key, ref in template.items():
        g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        if not ref.is_floating_point():  # num_batches_tracked
            out[key] = torch.zeros_like(ref)
        elif key.endswith("running_var"):
            out[key] = 0.5 + torch.rand(ref.shape, generator=g)
        elif key.endswith("running_mean"):
            out[key] = 0.1 * torch.randn(ref.shape, generator=g)
        elif key.endswith("bn3.weight") or key in residual:  # small residual branches, as with zero-init-residual training
            out[key] = 0.1 + 0.2 * torch.rand(ref.shape, generator=g)
        elif ref.ndim == 1 and "bn" in key or "downsample.1" in key or key in norm:
            out[key] = (0.8 + 0.4 * torch.rand(ref.shape, generator=g)) if key.endswith("weight") else 0.1 * torch.randn(ref.shape, generator=g)
        elif ref.ndim == 1:  # linear / conv biases
            out[key] = 0.1 * torch.randn(ref.shape, generator=g)
        elif ref.ndim == 2:  # linear heads: logits of a few units, so the softmax over bins is not one-hot
            out[key] = torch.randn(ref.shape, generator=g) * (1.0 / ref.shape[1]) ** 0.5
        else:
            fan_in = ref[0].numel()
            out[key] = torch.randn(ref.shape, generator=g) * (2.0 / fan_in) ** 0.5
    return out
