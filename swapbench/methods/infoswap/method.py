"""InfoSwap (GGGHSL/InfoSwap-master, CC BY-NC-SA 4.0) as a swapbench method.

Faithful to the official inference (inference_demo.py @ 0484ef5, lines 150-200), which on 512 x 512
crops aligned to the ArcFace template shrunk x0.85 ("arcface85" convention) does:

  input     BGR (the demo reads with cv2 and never converts), ToTensor, (x - 0.5) / 0.5;
  encoder   rows and columns 37:475 of [source; target] (the 0.85 zoom undone), bilinear to 128 with
            align_corners=True, IR-SE50 maps 0..10 (input layer, then units 1..10);
  read-out  each map normalised with the shipped statistics: (map - m) / max(sqrt(s / (n - 1)), 0.01);
  IIB       for layers i = 0..9: lambda_i from the read-outs; eps = N(0,1)*std_i + m_i;
            Z_i = (R_i*lambda + (1 - lambda)*eps) * active_i; the identity is the mean over i of the
            encoder restarted from Z_i (source rows); the target's attribute map is
            R_t*(1 - lambda_t) + lambda_t*eps_s with eps_s = N(0,1)*m_s + m_s, m_s the source's map;
  decoder   the target image and attribute maps 1..9 with their lambdas -> attribute and mask pyramids;
  generator AII512 -> BGR in [-1, 1], 512 x 512.

Where swapbench differs, and why:
  - noise: the official code draws both noises per layer (eps for [source; target], then eps_s) from
    the global torch generator, unseeded, so its outputs are not reproducible. Here each pair draws
    them, in the same order and shapes, on the CPU from `pair_generator` (seed, pair id), then moves
    them to the device: a swap depends only on the run seed, the pair and the weights;
  - source statistics: officially m_s (and std_s, which the code also sets to the mean) are averaged
    over the batch's sources; the demo runs one pair at a time, where that is the source's own map.
    Here they are always per pair, so batch size and composition never change a swap;
  - only what the swap uses is computed (the unrestricted embedding and the target's restricted
    identity, which the demo only logs, are skipped);
  - crops stay float in and out (the official crops and output are uint8; the output cast truncates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F

from swapbench.methods.base import FaceBatch, SwapMethod
from swapbench.methods.infoswap.nets import (
    AII512, BOTTLENECKS, IIB, MAP_CHANNELS, MAP_SIDES, READOUTS, AttributeDecoder, Encoder128,
)
from swapbench.weights import WeightFile, WeightsError, check_fits, register, state_dict_problems

CODE = "https://github.com/GGGHSL/InfoSwap-master"
COMMIT = "0484ef5fcb35bf811f2c3ec52ecf77ccade822db"
LICENCE = "CC BY-NC-SA 4.0 (InfoSwap-master); weights on request for non-commercial research only"
USAGE = f"{CODE}/blob/master/USAGE.md"
GATED = ("released only on request: e-mail the authors from an institutional address with the signed agreement "
         f"described in {USAGE} (research use only; commercial requests are refused)")
ENCODER_CROP = slice(37, 475)  # the 438 x 438 centre of the 512 crop: undoes the 0.85 zoom of arcface85
ENCODER_SIZE = 128
MIN_STD = 0.01
ACTIVE_RATE = 0.01  # a read-out neuron is active when non-zero in more than 1% of the statistics samples

# Checkpoint folders and file prefixes of the two bottleneck variants (the official ROOT table).
MODES = {"smooth": ("w_kernel_smooth", "ckpt_ks_"), "no_smooth": ("wo_kernel_smooth", "ckpt_")}
_PARTS = {"G": "AII512 generator", "E": "UnetDecoder512 attribute decoder", "I": "IIB information bottleneck"}


def model_files(mode: str) -> dict[str, WeightFile]:
    """{"G", "E", "I"}: the three gated checkpoints of one bottleneck mode."""
    folder, prefix = MODES[mode]
    return {
        part: WeightFile(
            name=f"infoswap/{prefix}{part}",
            filename=f"InfoSwap/checkpoints_512/{folder}/{prefix}{part}.pth",
            url=USAGE,
            licence=LICENCE,
            note=f"InfoSwap {what} ({mode} bottleneck), {GATED}",
            manual=True,
        )
        for part, what in _PARTS.items()
    }


ENCODER_FILE = WeightFile(
    name="infoswap/model_128_ir_se50",
    filename="InfoSwap/modules/model_128_ir_se50.pth",
    url="https://pan.baidu.com/s/1iPm81wUzIdoxuZCKOjHisA",
    licence=LICENCE,
    note=("InfoSwap's 128-input IR-SE50 face encoder (not TreB1eN's 112 model_ir_se50.pth); Baidu Netdisk, "
          "extraction code sypi (the authors' link in InfoSwap-master issue #5); the checkpoints themselves are "
          + GATED),
    manual=True,
)

# sha256 of the read-out statistics files read from the repository at COMMIT; layers 0-3 (4-8 MiB each)
# were not readable there, so their git blob ids are given instead.
_READOUT_SHA256 = {
    4: "2dd2d187cedc95d51bb12c48acecb45aa004cddc3894dfc2b604408a5c994581",
    5: "6f75ba23f6a2b5655ebd31bc41bb05f3db49655f787e6bb46849d7d0e8f2265f",
    6: "69878c10741fb41a53f7528cdb9b102be6986b409dca61631c614d071b8d7c21",
    7: "84368a506d8c3f32d2dffb11a691df485d962cc0703240e7a1fb33d6f2c1d40a",
    8: "ddb580d225f878b0250c3ea70dd98545887c548c3e4a20635c469f6281af8f2d",
    9: "d671e5c8b781e50a77beee7218634133cfcc8ac57e508686610964af349a251f",
    10: "68702548c72f19b79112e10d18b6710d8d861dfe781f7a7269f338e3d5ea380c",
}
_READOUT_BLOB = {0: "05da8196d807d39c248e29f22eb236eb13aa57ea", 1: "de2926bf176763ea94012e73ae9d30042353b237",
                 2: "4646d7c6e86e316328ee28113b9531bb18d30f2c", 3: "ba294251498bcf17bd93da5202c5a6f92a91216b"}


def readout_files() -> tuple[WeightFile, ...]:
    """The 11 read-out statistics files, public in the official repository (pinned to COMMIT)."""
    return tuple(
        WeightFile(
            name=f"infoswap/readout_layer{i}",
            filename=f"InfoSwap/modules/weights128/readout_layer{i}.pth",
            url=f"https://raw.githubusercontent.com/GGGHSL/InfoSwap-master/{COMMIT}/modules/weights128/readout_layer{i}.pth",
            licence="CC BY-NC-SA 4.0 (InfoSwap-master repository)",
            sha256=_READOUT_SHA256.get(i),
            note=f"statistics of encoder map {i} (m, s, n_samples, neuron_nonzero)"
                 + (f"; git blob {_READOUT_BLOB[i]} at {COMMIT[:7]}" if i in _READOUT_BLOB else ""),
        )
        for i in range(READOUTS)
    )


READOUT_FILES = readout_files()


def weight_files(mode: str) -> tuple[WeightFile, ...]:
    return (*model_files(mode).values(), ENCODER_FILE, *READOUT_FILES)


# The class declares the default (smooth) files; the no_smooth ones are listed by `bench weights` too.
register(*model_files("no_smooth").values())


@dataclass(frozen=True)
class InfoSwapOptions:
    # Which released bottleneck: "smooth" (ckpt_ks_*.pth, the one that loads strictly officially) or
    # "no_smooth" (ckpt_*.pth, without the kernel-1 Gaussian of each IB layer).
    ib_mode: Literal["smooth", "no_smooth"] = "smooth"
    # Divides every channel width: 1 for the released networks; 2 or 4 only for tests and CPU smoke runs
    # with random weights of that layout (same spatial sizes, unit counts and code paths).
    channel_divisor: Literal[1, 2, 4] = 1


@dataclass
class ReadoutStats:
    """Per-map statistics of the encoder: mean, std (sqrt(s / (n - 1))) and active-neuron mask, maps 0..10."""

    mean: list[torch.Tensor]
    std: list[torch.Tensor]
    active: list[torch.Tensor]

    @classmethod
    def from_files(cls, states: Sequence[Mapping]) -> "ReadoutStats":
        mean, std, active = [], [], []
        for state in states:
            n = state["n_samples"].float()
            mean.append(state["m"].float())
            std.append(torch.sqrt(state["s"].float() / (n - 1)))
            active.append(state["neuron_nonzero"].float() / n > ACTIVE_RATE)
        return cls(mean, std, active)

    def to(self, device) -> "ReadoutStats":
        return ReadoutStats(*[[t.to(device) for t in ts] for ts in (self.mean, self.std, self.active)])


def map_shape(i: int, div: int = 1) -> tuple[int, int, int]:
    """[C, H, W] of encoder map i for a 128 input."""
    return MAP_CHANNELS[i] // div, MAP_SIDES[i], MAP_SIDES[i]


def readout_problems(state: object, i: int, div: int = 1) -> list[str]:
    """Why `state` is not the statistics file of encoder map i ([] when it is)."""
    if not isinstance(state, Mapping):
        return [f"it holds a {type(state).__name__}, not a dict of tensors"]
    shape = map_shape(i, div)
    expected = {"m": shape, "s": shape, "neuron_nonzero": shape, "n_samples": (1,)}
    problems = [f"no {k!r}" for k in expected if k not in state]
    problems += [f"{k!r} has shape {tuple(state[k].shape)} instead of {v}" for k, v in expected.items()
                 if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != v]
    problems += [f"{k!r} is not a tensor" for k in expected if k in state and not isinstance(state[k], torch.Tensor)]
    return problems


def draw_noise(generator: torch.Generator, div: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One pair's noise, in the official draw order: per layer, eps for [source; target] ([2, C, H, W])
    then eps_s for the target ([1, C, H, W]); standard normal, on the CPU."""
    out = []
    for i in range(BOTTLENECKS):
        shape = map_shape(i, div)
        out.append((torch.randn((2, *shape), generator=generator), torch.randn((1, *shape), generator=generator)))
    return out


def to_network(images: torch.Tensor) -> torch.Tensor:
    """RGB crops in [0, 1] -> BGR in [-1, 1], what the official networks see."""
    return (images.float().flip(1) - 0.5) / 0.5


def from_network(y: torch.Tensor) -> torch.Tensor:
    return y.float().flip(1) * 0.5 + 0.5


class InfoSwap(SwapMethod):
    """InfoSwap 512: IR-SE50 encoder + information bottleneck identity, U-Net attributes, AII generator."""

    name = "infoswap"
    description = "InfoSwap (CVPR 2021): information-bottleneck identity from a 128 IR-SE50, AII512 generator"
    paper = "Gao et al., Information Bottleneck Disentanglement for Identity Swapping, CVPR 2021"
    code = CODE
    crop = "arcface85"
    size = 512
    weights = weight_files("smooth")
    Options = InfoSwapOptions
    provenance_note = (
        "official outputs are not seed-reproducible: the official code draws the bottleneck noise (two "
        "tensors per layer) from the unseeded global torch generator. Here each pair draws them in the same "
        "order and shapes from pair_generator (run seed, pair id), and the source statistics are per pair "
        "(officially averaged over the batch, which the one-pair demo never shows)")

    def __init__(self, options: InfoSwapOptions | None = None, **kwargs):
        """options: InfoSwap.Options; keyword arguments are a shortcut (InfoSwap(ib_mode="no_smooth"))."""
        if options is None:
            options = InfoSwapOptions(**kwargs)
        elif kwargs:
            raise TypeError("pass either options or keyword options, not both")
        super().__init__(options)
        self.save_hyperparameters(asdict(options))
        self.weights = weight_files(options.ib_mode)
        div = self.div = options.channel_divisor
        if div != 1:  # a reduced test architecture: its rows never reach a published leaderboard
            self.publishable = False
            # its statistics files cannot be the released ones: no checksum to match
            self.weights = tuple(replace(w, sha256=None) for w in self.weights)
        with torch.device("meta"):  # every value comes from load_weights
            encoder, iib = Encoder128(div), IIB(options.ib_mode == "smooth", div)
            decoder, generator = AttributeDecoder(div), AII512(div)
        self.encoder = encoder.to_empty(device="cpu")
        self.iib = iib.to_empty(device="cpu")
        self.decoder = decoder.to_empty(device="cpu")
        self.generator = generator.to_empty(device="cpu")
        self.stats: ReadoutStats | None = None
        self.eval()  # BatchNorm running statistics, no Dropout

    # -- weights --

    def _check_iib(self, state: object, wf: WeightFile) -> None:
        mode = self.options.ib_mode
        if isinstance(state, Mapping) and state_dict_problems(self.iib.state_dict(), state):
            has_smooth = any(str(k).endswith(".smooth.conv.weight") for k in state)
            other = "no_smooth" if mode == "smooth" else "smooth"
            if has_smooth != (mode == "smooth"):
                other_file = model_files(other)["I"].filename
                raise WeightsError(
                    f"{wf.filename} ({wf.name}) is the {other} bottleneck ({'with' if has_smooth else 'without'} "
                    f"the smoothing kernels, like {other_file}), but the run uses infoswap.ib_mode={mode}: "
                    f"set --set infoswap.ib_mode={other}, or use the {mode} file with its G and E")
        check_fits(self.iib, state, wf, f"InfoSwap {_PARTS['I']} ({mode})", finite=True)

    def load_weights(self, state: dict[str, object]) -> None:
        for wf in self.weights:
            if wf.name not in state:
                raise WeightsError(f"{self.name}: no contents were given for {wf.filename} ({wf.name})")
        files = model_files(self.options.ib_mode)
        parts = ((self.generator, files["G"], _PARTS["G"]), (self.decoder, files["E"], _PARTS["E"]),
                 (self.encoder, ENCODER_FILE, "128-input IR-SE50 encoder"))
        # check everything before changing anything
        self._check_iib(state[files["I"].name], files["I"])
        for module, wf, what in parts:
            check_fits(module, state[wf.name], wf, f"InfoSwap {what}", finite=True)
        for i, wf in enumerate(READOUT_FILES):
            if problems := readout_problems(state[wf.name], i, self.div):
                raise WeightsError(f"{wf.filename} ({wf.name}) is not the read-out statistics of encoder map {i}: "
                                   f"{'; '.join(problems)}. Get the official file from {wf.url}")
        for module, wf, _ in (*parts, (self.iib, files["I"], "")):
            module.load_state_dict(state[wf.name], strict=True)
        self.stats = ReadoutStats.from_files([state[wf.name] for wf in READOUT_FILES])

    def _require_weights(self) -> ReadoutStats:
        if self.stats is None:
            raise RuntimeError(f"{self.name}: load_weights() was not called; the networks are uninitialised")
        return self.stats

    # -- the pipeline (each step is checked by the parity test) --

    def readouts(self, maps: Sequence[torch.Tensor], stats: ReadoutStats) -> list[torch.Tensor]:
        return [(f - m) / torch.clamp(s, min=MIN_STD) for f, m, s in zip(maps, stats.mean, stats.std)]

    @torch.no_grad()
    def run(self, source: torch.Tensor, target: torch.Tensor, noise: Sequence[Sequence[tuple]],
            trace: dict | None = None) -> torch.Tensor:
        """BGR [-1, 1] sources and targets [B, 3, 512, 512] and each pair's `draw_noise` -> BGR swaps in [-1, 1].
        trace: a dict that receives the intermediate tensors (maps, lambdas, Z, identity, attributes)."""
        stats = self._require_weights()
        if stats.mean[0].device != source.device:  # moved once, with the module's first batch on a device
            stats = self.stats = stats.to(source.device)
        b = source.shape[0]
        x = torch.cat((source, target))[:, :, ENCODER_CROP, ENCODER_CROP].float()
        x = F.interpolate(x, size=(ENCODER_SIZE, ENCODER_SIZE), mode="bilinear", align_corners=True)
        maps = self.encoder.maps(x)
        readouts = self.readouts(maps, stats)
        identity = torch.zeros(b, 512 // self.div, device=source.device)
        attributes, lambdas = [], []
        for i in range(BOTTLENECKS):
            # per pair: eps rows [sources; targets], eps_s rows of the targets
            eps = torch.cat([n[i][0][:1] for n in noise] + [n[i][0][1:] for n in noise]).to(source.device)
            eps_s = torch.cat([n[i][1] for n in noise]).to(source.device)
            r = maps[i]
            lam = self.iib.layer(i).mask(readouts, r.shape[-2:])
            eps = eps * stats.std[i] + stats.mean[i]
            r_s, r_t, lam_s, lam_t = r[:b], r[b:], lam[:b], lam[b:]
            z_s = (r_s * lam_s + (1 - lam_s) * eps[:b]) * stats.active[i]
            identity += self.encoder.restricted(z_s, i)
            attributes.append(r_t * (1 - lam_t) + lam_t * (eps_s * r_s + r_s))  # mean and std of one source: r_s
            lambdas.append(lam_t)
            if trace is not None:
                trace.setdefault("lambda", []).append(lam)
                trace.setdefault("z_source", []).append(z_s)
        identity /= float(BOTTLENECKS)
        z_attr, z_lambda = self.decoder(target.float(), attributes, lambdas)
        y = self.generator(identity, z_attr, z_lambda)
        if trace is not None:
            trace.update(maps=maps, identity=identity, attributes=attributes, z_attr=z_attr, z_lambda=z_lambda, y=y)
        return y

    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        if len(target.pair_id) != len(target):
            raise ValueError(f"{self.name} draws each pair's noise from its pair id: the batch has "
                             f"{len(target)} rows but {len(target.pair_id)} pair ids")
        noise = [draw_noise(self.pair_generator(p), self.div) for p in target.pair_id]
        y = self.run(to_network(source.image), to_network(target.image), noise)
        return from_network(y).clamp(0, 1)
