"""`precomputed`: scores swaps that were made elsewhere (e.g. the released results of a paper).

The swaps are image files in one folder, one per pair, named by a pattern over the pair (config
`precomputed.dir` and `precomputed.pattern`; MegaFS released its CelebA-HQ swaps as
`{target}_{source}.jpg`). Pattern fields: {target}, {source} (image keys of the protocol, e.g.
28000 and 29000 on celebahq), {target_identity}, {source_identity} and {pair_id}.

The engine treats each swap file like a protocol image: it detects the face and crops it at the
evaluation convention, exactly as it crops every other image, and passes that crop to this method
in place of the source face; the method returns it unchanged. A missing or faceless swap file is a
failure of that pair, recorded with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from swapbench.datasets.protocol import DataError, Protocol
from swapbench.faces.templates import parse_convention
from swapbench.methods.base import FaceBatch, SwapMethod, parse_options

FIELDS = ("target", "source", "target_identity", "source_identity", "pair_id")


class Precomputed(SwapMethod):
    name = "precomputed"
    description = "scores swap images made elsewhere: precomputed.dir, files named by precomputed.pattern"

    @dataclass(frozen=True)
    class Options:
        dir: str | None = None  # folder of swap images, one per pair
        pattern: str = "{target}_{source}.jpg"  # file name of a pair's swap

        def __post_init__(self):
            try:
                self.pattern.format(**{f: "x" for f in FIELDS})
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"precomputed.pattern {self.pattern!r} is not a valid pattern ({exc}); "
                                 f"fields: {', '.join('{' + f + '}' for f in FIELDS)}") from None

    def __init__(self, options=None, convention: str = "ffhq_256"):
        super().__init__(options)
        if not self.options.dir:
            raise ValueError("method precomputed scores swap files made elsewhere: set precomputed.dir "
                             "(e.g. --set precomputed.dir=DIR) and precomputed.pattern")
        self.directory = Path(self.options.dir).expanduser()
        self.pattern = self.options.pattern
        self.crop, self.size = parse_convention(convention)

    @classmethod
    def from_config(cls, cfg: dict) -> "Precomputed":
        # The swaps are scored as they are: cropped at the evaluation convention like every real image.
        method = cls(options=parse_options(cls, cfg.get(cls.name)), convention=cfg["face"]["eval_convention"])
        if not method.directory.is_dir():
            raise DataError(f"precomputed.dir {method.directory} is not a folder")
        method.seed = cfg["engine"]["seed"]
        return method

    def input_images(self, protocol: Protocol) -> dict[str, str]:
        """{pair id: its swap file}. The engine prepares these images and passes their crops as `source`."""
        out = {}
        for p in protocol.pairs:
            name = self.pattern.format(target=p.target, source=p.source, pair_id=p.pair_id,
                                       target_identity=protocol.images[p.target].identity,
                                       source_identity=protocol.images[p.source].identity)
            out[p.pair_id] = str(self.directory / name)
        return out

    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        return source.image.clone()  # `source` holds the crop of the precomputed swap
