"""swapbench.methods.stylegan2: the pure-PyTorch ops against their reference math, layer layout.

The references below are direct transcriptions of the definitions (explicit zero insertion,
padding/cropping and a sum over kernel taps with the kernel flipped), written independently of
the vectorised implementations under test.
"""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import swapbench.methods.stylegan2 as S
from swapbench.methods.stylegan2 import (
    Generator,
    ModulatedConv2d,
    ToRGB,
    fused_leaky_relu,
    make_kernel,
    random_generator_state,
    upfirdn2d,
)


def upfirdn2d_reference(x, k, up, down, pad):
    x, k = x.double().numpy(), k.double().numpy()
    n, c, h, w = x.shape
    p0, p1 = pad
    z = np.zeros((n, c, h * up, w * up))
    z[:, :, ::up, ::up] = x
    hh, ww = h * up + p0 + p1, w * up + p0 + p1
    padded = np.zeros((n, c, hh, ww))
    # place z at offset (p0, p0); negative pads crop
    src_y0, dst_y0 = max(-p0, 0), max(p0, 0)
    ny = min(h * up - src_y0, hh - dst_y0)
    padded[:, :, dst_y0:dst_y0 + ny, dst_y0:dst_y0 + ny] = z[:, :, src_y0:src_y0 + ny, src_y0:src_y0 + ny]
    kh, kw = k.shape
    oh, ow = hh - kh + 1, ww - kw + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(kh):  # true convolution: out[y] = sum_i padded[y + i] * k[kh - 1 - i]
        for j in range(kw):
            out += padded[:, :, i:i + oh, j:j + ow] * k[kh - 1 - i, kw - 1 - j]
    return torch.from_numpy(out[:, :, ::down, ::down].copy())


@pytest.mark.parametrize("up,down,pad", [(2, 1, (2, 1)), (1, 1, (1, 1)), (1, 1, (2, 2)), (1, 2, (1, 1)),
                                         (1, 2, (2, 2)), (2, 1, (1, 0)), (1, 1, (-1, 2)), (1, 1, (0, -1))])
def test_upfirdn2d_equals_reference_math(up, down, pad):
    g = torch.Generator().manual_seed(up * 10 + down + pad[0] * 3 + pad[1])
    x = torch.randn(2, 3, 9, 9, generator=g)
    k = torch.rand(4, 4, generator=g)  # asymmetric on purpose: checks the flip
    ours = upfirdn2d(x, k, up=up, down=down, pad=pad)
    ref = upfirdn2d_reference(x, k, up, down, pad)
    assert ours.shape == ref.shape == (2, 3, (9 * up + pad[0] + pad[1] - 4) // down + 1,) * 1 + ref.shape[3:]
    assert float((ours.double() - ref).abs().max()) < 1e-5


def test_fused_leaky_relu_equals_reference_math():
    g = torch.Generator().manual_seed(0)
    for shape in ((4, 7), (2, 7, 5, 3)):
        x, b = torch.randn(*shape, generator=g), torch.randn(7, generator=g)
        xb = x + b.view(1, 7, *([1] * (len(shape) - 2)))
        ref = torch.where(xb >= 0, xb, 0.2 * xb) * math.sqrt(2)
        assert torch.allclose(fused_leaky_relu(x, b), ref, atol=1e-6)
    assert torch.allclose(fused_leaky_relu(torch.tensor([[-1.0, 2.0]])), torch.tensor([[-0.2, 2.0]]) * math.sqrt(2))


def test_make_kernel_and_buffers_follow_rosinality():
    k = make_kernel([1, 3, 3, 1])
    assert torch.allclose(k * 64, torch.tensor([[1, 3, 3, 1], [3, 9, 9, 3], [3, 9, 9, 3], [1, 3, 3, 1]]).float())
    up = ModulatedConv2d(8, 4, 3, 16, upsample=True)
    assert set(up.state_dict()) == {"weight", "modulation.weight", "modulation.bias", "blur.kernel"}
    assert torch.allclose(up.blur.kernel, k * 4) and up.blur.pad == (1, 1)
    assert torch.equal(up.modulation.bias, torch.ones(8))
    rgb = ToRGB(8, 16)
    assert rgb.upsample.pad == (2, 1) and torch.allclose(rgb.upsample.kernel, k * 4)


def test_generator_layout_and_shapes():
    with torch.device("meta"):
        g = Generator(1024)
    sd = g.state_dict()
    assert len(sd) == 171 and sd["noises.noise_16"].shape == (1, 1, 1024, 1024)
    assert sum(p.numel() for p in g.parameters()) == 30_370_060
    small = Generator(32).eval()
    for name, p in small.named_parameters():
        if name.endswith("noise.weight"):
            p.data.fill_(0.5)  # zero at initialisation: make the noise matter
    w = torch.randn(2, 18, 512)
    with torch.no_grad():
        img = small(w)
        assert img.shape == (2, 3, 32, 32)
        # the stored noise makes it deterministic; random noise from a seeded generator is reproducible
        a = small(w, noise="random", generator=torch.Generator().manual_seed(3))
        b = small(w, noise="random", generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        again = small(w)
    assert torch.equal(again, img) and torch.equal(a, b) and not torch.equal(a, img)


BLOCKS = {
    "convlayer": (lambda: S.ConvLayer(8, 12, 3), "x"),
    "convlayer_down": (lambda: S.ConvLayer(8, 12, 3, downsample=True), "x"),
    "convlayer_nobias": (lambda: S.ConvLayer(8, 12, 1, downsample=True, bias=False), "x"),
    "resblock": (lambda: S.ResBlock(8, 12), "x"),
    "modconv_down": (lambda: S.ModulatedConv2d(8, 12, 3, 16, downsample=True), "xs"),
    "modconv_up": (lambda: S.ModulatedConv2d(8, 12, 3, 16, upsample=True), "xs"),
    "modconv_nodemod": (lambda: S.ModulatedConv2d(8, 12, 1, 16, demodulate=False), "xs"),
    "equallinear_act": (lambda: S.EqualLinear(16, 24, lr_mul=0.01, activation="fused_lrelu"), "v"),
    "downsample": (lambda: S.Downsample([1, 3, 3, 1]), "x"),
    "upsample": (lambda: S.Upsample([1, 3, 3, 1]), "x"),
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_blocks_match_the_official_rosinality_copy(name):
    """tests/golden/stylegan2_blocks.npz: the same blocks of MegaFS's official megafs.py (@ f01b195, a
    copy of rosinality's model.py; `op` replaced by a pure-PyTorch module) with parameters from
    `random_generator_state` (seed 0) and their own FIR kernel buffers, on seeded inputs. Our kernels
    come from our constructors, so a wrong kernel or padding shows here. Tolerance 1e-5 (fp32)."""
    gold = np.load(Path(__file__).parent / "golden" / "stylegan2_blocks.npz")
    build, inputs = BLOCKS[name]
    mod = build()
    sd = mod.state_dict()
    sd.update({k: v for k, v in random_generator_state(sd, 0).items() if not k.endswith("kernel")})
    mod.load_state_dict(sd)
    x, style, v = (torch.from_numpy(gold[k]) for k in ("x", "style", "v"))
    with torch.no_grad():
        out = mod(x) if inputs == "x" else mod(x, style) if inputs == "xs" else mod(v)
    assert float((out - torch.from_numpy(gold[name])).abs().max()) <= 1e-5
