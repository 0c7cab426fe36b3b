"""Swaps per second of the FSLSD-HiRes port on CPU, and its full-size (1024) parity with the official code.

    python benchmarks/fslsd_speed.py [--batch-sizes 1 2] [--repeats 2]
    python benchmarks/fslsd_speed.py --official /path/to/FSLSD_HiRes

Deterministic random weights (swapbench.methods.fslsd.random_weights) at full size. "core" = the
official network pipeline of test.py train() lines 80-112 (landmark maps -> encoder_lmk -> latent
mixing -> bald mapping -> 1024 generator features, GPEN features of the 1024 target, decoder), i.e.
what the official code runs per pair once the pSp codes, H3R landmarks and mask are precomputed;
"full swap()" adds the port's auxiliaries (pSp encoder on source and target, H3R with flip test,
BiSeNet mask) and the uint8 output on 1024 crops.

--official DIR: a checkout of cnnlstm/FSLSD_HiRes. Its models/stylegan2/op JIT-compiles CUDA at import
and cannot load on CPU: this script puts swapbench's pure-PyTorch upfirdn2d / fused_leaky_relu in its
place (tested against the reference math in tests/test_stylegan2_ops.py), stubs mmcv (only the unused
PixelShufflePack needs it) and, without torchvision, provides torchvision 0.11's tensor Resize
(bilinear, no antialias). Then the script also compares the official and ported outputs at 1024 on the
same inputs and prints the max abs errors per stage.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from timing import (
    print_medians,  # benchmarks/timing.py (this folder is on sys.path when a script runs)
)

from swapbench.faces.parsing import WEIGHTS as PARSER_WEIGHTS
from swapbench.methods.base import FaceBatch
from swapbench.methods.fslsd import FSLSD, FSLSD_FILE, H3R_FILE, PSP_FILE
from swapbench.methods.fslsd import random_weights as rw
from swapbench.methods.fslsd.method import landmark_maps
from swapbench.methods.fslsd.nets import strip_module
from swapbench.methods.megafs.random_weights import parser_state


def official(path: Path):
    from swapbench.methods.stylegan2 import FusedLeakyReLU, fused_leaky_relu, upfirdn2d

    op = types.ModuleType("models.stylegan2.op")
    op.FusedLeakyReLU, op.fused_leaky_relu, op.upfirdn2d = FusedLeakyReLU, fused_leaky_relu, upfirdn2d
    mmcv, cnn, utils, pw = (types.ModuleType(n) for n in ("mmcv", "mmcv.cnn", "mmcv.utils", "mmcv.utils.parrots_wrapper"))
    cnn.constant_init = cnn.kaiming_init = lambda *a, **k: None
    pw._BatchNorm = torch.nn.modules.batchnorm._BatchNorm
    mmcv.cnn, mmcv.utils, utils.parrots_wrapper = cnn, utils, pw
    sys.modules.update({"mmcv": mmcv, "mmcv.cnn": cnn, "mmcv.utils": utils, "mmcv.utils.parrots_wrapper": pw})
    try:
        import torchvision.transforms  # noqa: F401
    except ImportError:
        tv, tvt = types.ModuleType("torchvision"), types.ModuleType("torchvision.transforms")

        class Resize:  # torchvision 0.11 tensor Resize(int) on square inputs
            def __init__(self, size):
                self.size = size

            def __call__(self, img):
                s = self.size
                return img if img.shape[-1] == s else F.interpolate(img, size=(s, s), mode="bilinear",
                                                                    align_corners=False)

        tvt.Resize, tv.transforms, tv.utils = Resize, tvt, types.ModuleType("torchvision.utils")
        sys.modules.update({"torchvision": tv, "torchvision.transforms": tvt, "torchvision.utils": tv.utils})
    sys.path.insert(0, str(path))
    import models.stylegan2  # noqa: F401 - from the user's checkout
    sys.modules["models.stylegan2.op"] = op
    from models import nets as N
    from models.encoders import psp_encoders as PE
    from models.stylegan2 import model as M

    ck = {k: strip_module(v) for k, v in rw.checkpoint(1024, 0).items()}
    mods = {"encoder_lmk": PE.GradualLandmarkEncoder(212), "encoder_target": M.GPENEncoder(512),
            "generator": M.Generator(1024, 512, 8), "decoder": M.Decoder(8, 1024),
            "bald_model": N.F_mapping(mapping_lrmul=1, mapping_layers=18, mapping_fmaps=512,
                                      mapping_nonlinearity="linear")}
    for k, m in mods.items():
        m.load_state_dict(ck[k])
        m.eval()
    return types.SimpleNamespace(**mods)


def official_core(o, s_code, t_code, maps, t_img, mask):
    """test.py train() lines 91-110 (batch B)."""
    lmk_code = torch.cat([o.encoder_lmk(maps), torch.zeros(maps.shape[0], 11, 512)], dim=1)
    fusion = s_code + lmk_code
    fusion = torch.cat([fusion[:, :11], t_code[:, 11:]], dim=1)
    fusion = o.bald_model(fusion.view(fusion.size(0), -1), 2).view(t_code.size())
    src = o.generator([fusion], input_is_latent=True, randomize_noise=False)
    tgt = o.encoder_target(t_img)
    return o.decoder(src, tgt, mask), fusion


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--official", type=Path, help="a checkout of cnnlstm/FSLSD_HiRes (see the module docstring)")
    ap.add_argument("--no-full", action="store_true", help="skip timing the full swap() with the auxiliaries")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    port = FSLSD()
    port.load_weights({FSLSD_FILE.name: rw.checkpoint(1024, 0), PSP_FILE.name: rw.psp_checkpoint(0),
                       H3R_FILE.name: rw.h3r_state(0), PARSER_WEIGHTS.name: parser_state(0)})
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    o = official(args.official) if args.official else None

    def inputs(b):
        lm = rw.parity_landmarks(0, 2 * b)
        codes = rw.parity_latents(0, 2 * b)
        t_img = (rw.parity_images(0, 1024, b) - 0.5) / 0.5
        yy, xx = torch.meshgrid(torch.arange(1024), torch.arange(1024), indexing="ij")
        mask = (((xx - 512) / 300.0) ** 2 + ((yy - 540) / 400.0) ** 2 < 1).float()[None, None].expand(b, 1, -1, -1)
        return lm[:b], lm[b:], codes[:b], codes[b:], t_img, mask.contiguous()

    if o is not None:
        s_lm, t_lm, s_code, t_code, t_img, mask = inputs(1)
        maps = torch.cat([landmark_maps(s_lm), landmark_maps(t_lm)], dim=1)
        ref, ref_w = official_core(o, s_code, t_code, maps, t_img, mask)
        w = port.mix(s_code, t_code, maps)
        out = port.generate(s_code, t_code, s_lm, t_lm, t_img, mask)
        err = lambda a, b: float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())
        print("full-size (1024) parity, max abs error:", {"latents after bald mapping": err(w, ref_w),
                                                          "decoder output": err(out, ref)})

    print("| implementation | what | batch | s/batch median | swaps/s |")
    print("|---|---|---:|---:|---:|")
    for b in args.batch_sizes:
        s_lm, t_lm, s_code, t_code, t_img, mask = inputs(b)
        maps = torch.cat([landmark_maps(s_lm), landmark_maps(t_lm)], dim=1)
        fns = {("swapbench", "core"): lambda a=(s_code, t_code, s_lm, t_lm, t_img, mask): port.generate(*a)}
        if o is not None:
            fns[("official", "core")] = lambda a=(s_code, t_code, maps, t_img, mask): official_core(o, *a)
        if b == 1 and not args.no_full:
            big = rw.parity_images(1, 1024, 2)
            pair = (FaceBatch(big[:1], torch.zeros(1, 68, 2)), FaceBatch(big[1:2], torch.zeros(1, 68, 2)))
            fns[("swapbench", "full swap()")] = lambda p=pair: port.swap(*p)
        print_medians(fns, args.repeats, b)


if __name__ == "__main__":
    main()
