"""Face-Adapter's token decoders: features -> 77 cross-attention tokens for the UNet and the ControlNet.

Both decoders (official `ID2Token`, `Image2Token` in face_adapter/model_to_token.py) project their input
tokens to the text width with one Linear layer and let a learned query [1, 77, width] attend to them
through a stock `torch.nn.TransformerDecoder` (post-norm layers, width // 64 heads, feed-forward 2048,
ReLU, dropout 0.1, batch first). The decoder is torch's own module, so the layer keys of the released
`net_id2token.pth` / `net_image2token.pth` load unchanged; the two classes differ only in attribute
names (`id_proj`/`id2t` and `visual_proj`/`i2t`), which are the checkpoint's key prefixes.

- identity: ArcFace iresnet100 layer-4 map of the source (128 x 128 input -> 8 x 8 = 64 tokens of 512).
- attributes: CLIP ViT-H/14 `last_hidden_state` (257 tokens of 1280, before post_layernorm).

Dropout: the official scripts build these modules and never call `.eval()`, so dropout (p = 0.1) is active
at inference and draws from the global RNG. `decode(..., generators=...)` reproduces that behaviour with
the dropout masks of each pair drawn from that pair's generator; without generators the modules run in
eval mode (deterministic), swapbench's default.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _decoder(width: int, num_layers: int) -> nn.TransformerDecoder:
    layer = nn.TransformerDecoderLayer(d_model=width, nhead=width // 64, batch_first=True)
    return nn.TransformerDecoder(layer, num_layers=num_layers)


class _TokenDecoder(nn.Module):
    proj_name = ""
    decoder_name = ""

    def __init__(self, in_dim: int, width: int = 768, max_length: int = 77, num_layers: int = 3):
        super().__init__()
        self.width = width
        setattr(self, self.proj_name, nn.Linear(in_dim, width))
        self.query = nn.Parameter(torch.zeros(1, max_length, width))
        setattr(self, self.decoder_name, _decoder(width, num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, N, in_dim] -> [B, max_length, width], in the module's current train/eval mode."""
        b = x.shape[0]
        x = x.contiguous()  # one kernel path whatever the caller's layout: a row alone equals that row in a batch
        memory = getattr(self, self.proj_name)(x).view(b, -1, self.width)
        return getattr(self, self.decoder_name)(self.query.expand(b, -1, -1), memory)

    @torch.no_grad()
    def decode(self, x: torch.Tensor, generators: Sequence[torch.Generator] | None = None) -> torch.Tensor:
        """Eval mode without generators; with one generator per row, the official training-mode dropout,
        row i's masks drawn from the CPU RNG seeded by a 63-bit draw of generators[i] (so a row's tokens do
        not depend on the batch)."""
        was_training = self.training
        try:
            if generators is None:
                self.eval()
                return self(x)
            if len(generators) != x.shape[0]:
                raise ValueError(f"{x.shape[0]} rows but {len(generators)} generators")
            self.train()
            rows = []
            for i, g in enumerate(generators):
                seed = int(torch.randint(0, 2**63 - 1, (1,), generator=g, device=g.device).item())
                devices = [x.device] if x.device.type == "cuda" else []
                with torch.random.fork_rng(devices=devices):
                    torch.manual_seed(seed)
                    rows.append(self(x[i:i + 1]))
            return torch.cat(rows)
        finally:
            self.train(was_training)


class ID2Token(_TokenDecoder):
    """Identity tokens: ArcFace layer-4 tokens [B, 64, 512] -> [B, 77, 768] (`net_id2token.pth`)."""

    proj_name, decoder_name = "id_proj", "id2t"

    def __init__(self, id_dim: int = 512, width: int = 768, max_length: int = 77, num_layers: int = 3):
        super().__init__(id_dim, width, max_length, num_layers)


class Image2Token(_TokenDecoder):
    """Attribute tokens: CLIP vision tokens [B, 257, 1280] -> [B, 77, 768] (`net_image2token.pth`)."""

    proj_name, decoder_name = "visual_proj", "i2t"

    def __init__(self, visual_dim: int = 1280, width: int = 768, max_length: int = 77, num_layers: int = 3):
        super().__init__(visual_dim, width, max_length, num_layers)
