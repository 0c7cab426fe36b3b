"""InfoSwap port vs the official code: checkpoint layout (manifest) and numerical parity.

tests/golden/infoswap_manifest.json: {key: shape} of every file the method loads, dumped from the
official modules (GGGHSL/InfoSwap-master @ 0484ef5, modules/{encoder128,iib,decoder512,aii_generator}.py)
built at full size on the meta device: "encoder" (Backbone128(50, 0.6, 'ir_se')), "G" (AII512), "E"
(UnetDecoder512), "I/smooth" and "I/no_smooth" (IIB(1536, [64,64,64,64,128,128,128,128,256,256],
kernel_size=1) with and without the smoothing kernels), and "readout": the keys and shapes of the
read-out statistics files the repository ships (layers 4-10; layers 0-3 were not readable there).

tests/golden/infoswap_parity.npz was made by a harness outside the repository that imports the official
modules unmodified (with a stand-in for utils.py, whose only import here, ConvexUpsample, is unused) and
runs the body of inference_demo.py's inference() (lines 150-200, B = 1) on CPU, torch 2.13.0. The
networks are the official classes with every channel width divided by 4 (same unit counts, spatial
sizes and forward code; the decoder's and generator's convolutions replaced by the same official layer
types at 1/4 width), holding `random_weights.model_states("smooth", 0, 4)` and `readout_state(i, 0, 4)`.
Inputs: `parity_images(0)` (source, target), flipped to BGR and normalised to [-1, 1]. Noise: the
global generator seeded with `seed` right before the bottleneck loop; the port draws the same numbers
from a torch.Generator with that seed (`draw_noise`). Stored (intermediate maps subsampled, 4 channels
and 8 x 8 positions per map): encoder maps 0..10, the full embedding and a restricted pass from map
22, lambda / Z (source) / target attribute map of each bottleneck layer, the identity vector, the
decoder's attribute and mask pyramids, and the generator output (every 8th pixel).

The port runs the official pair as the middle row of a batch of three (two other pairs around it), so the
same comparison shows that a swap does not depend on its batch (batch 1 = batch 3).

Tolerance: max abs error <= 1e-4 relative to the largest magnitude of each tensor (fp32 on both sides,
same operations up to summation order). Observed: printed with -s; see docs/benchmark.md.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from swapbench.methods.infoswap import random_weights as rw
from swapbench.methods.infoswap.method import InfoSwap, draw_noise, from_network, to_network
from swapbench.methods.infoswap.nets import AII512, IIB, AttributeDecoder, Encoder128

GOLDEN = Path(__file__).parent / "golden"
TOL = 1e-4
DIV = 4


def _shapes(module):
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def test_checkpoint_layout_matches_the_official_manifest():
    manifest = json.loads((GOLDEN / "infoswap_manifest.json").read_text())
    with torch.device("meta"):
        assert _shapes(Encoder128()) == manifest["encoder"]
        assert _shapes(AII512()) == manifest["G"]
        assert _shapes(AttributeDecoder()) == manifest["E"]
        assert _shapes(IIB(smooth=True)) == manifest["I/smooth"]
        assert _shapes(IIB(smooth=False)) == manifest["I/no_smooth"]
    assert "deconv.weight" in manifest["G"] and "iba_9.smooth.conv.weight" in manifest["I/smooth"]
    assert len(manifest["encoder"]) == 397 and len(manifest["I/no_smooth"]) == 60


def test_readout_layout_matches_the_shipped_statistics():
    from swapbench.methods.infoswap.method import readout_problems

    manifest = json.loads((GOLDEN / "infoswap_manifest.json").read_text())["readout"]
    assert sorted(manifest, key=int) == [str(i) for i in range(4, 11)]
    for i, layout in manifest.items():
        state = {k: torch.zeros(v, dtype=torch.int64 if k in ("n_samples", "neuron_nonzero") else torch.float32)
                 for k, v in layout.items()}
        assert readout_problems(state, int(i)) == []
        assert readout_problems(state, (int(i) + 4) % 11) != []  # another layer's shapes are refused


def _rel_err(ours, ref) -> float:
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-12))


def _sub(t: torch.Tensor) -> np.ndarray:
    if t.dim() == 4:
        c, h = t.shape[1], t.shape[2]
        t = t[:, :: max(1, c // 4), :: max(1, h // 8), :: max(1, h // 8)]
    return t.numpy()


@torch.no_grad()
def test_every_stage_matches_the_official_code_and_batch_1_equals_batch_3():
    """The official pair (run alone officially) is the middle row of a batch of three here: every stage of
    that row matches the official batch-1 run, so the other pairs do not change it (batch 1 = batch 3)."""
    gold = dict(np.load(GOLDEN / "infoswap_parity.npz"))
    method = InfoSwap(channel_divisor=DIV)
    method.load_weights(rw.method_state("smooth", 0, DIV))
    x = to_network(rw.parity_images(0))
    others = to_network(rw.parity_images(7, n=4))
    src, tgt = torch.cat([others[:1], x[:1], others[1:2]]), torch.cat([others[2:3], x[1:], others[3:]])
    noise = [draw_noise(torch.Generator().manual_seed(s), DIV) for s in (1, int(gold["seed"]), 2)]
    trace = {}
    y = method.run(src, tgt, noise, trace)
    pair, rows = slice(1, 2), [1, 4]  # the official pair's row, and its [source, target] rows of the encoder maps

    errors = {f"map{i}": _rel_err(_sub(m[rows]), gold[f"map{i}"]) for i, m in enumerate(trace["maps"])}
    maps22 = method.encoder.maps(torch.nn.functional.interpolate(
        x[:, :, 37:475, 37:475], size=(128, 128), mode="bilinear", align_corners=True), count=23)
    errors["restricted22"] = _rel_err(method.encoder.restricted(maps22[22], 22), gold["restricted22"])
    errors["embedding"] = _rel_err(method.encoder.restricted(maps22[0], 0), gold["embedding"])
    for i in range(10):
        errors[f"lambda{i}"] = _rel_err(_sub(trace["lambda"][i][rows]), gold[f"lambda{i}"])
        errors[f"z_source{i}"] = _rel_err(_sub(trace["z_source"][i][pair]), gold[f"z_source{i}"])
        errors[f"attribute{i}"] = _rel_err(_sub(trace["attributes"][i][pair]), gold[f"attribute{i}"])
    errors["identity"] = _rel_err(trace["identity"][pair], gold["identity"])
    for k in range(8):
        errors[f"z_attr{k}"] = _rel_err(_sub(trace["z_attr"][k][pair]), gold[f"z_attr{k}"])
        errors[f"z_lambda{k}"] = _rel_err(_sub(trace["z_lambda"][k][pair]), gold[f"z_lambda{k}"])
    errors["y"] = _rel_err(y[pair, :, ::8, ::8], gold["y"])
    # the final crop: RGB in [0, 1], the official (Y * 0.5 + 0.5) with the channels flipped back
    errors["crop"] = _rel_err(from_network(y[pair])[:, :, ::8, ::8], gold["y"][:, ::-1] * 0.5 + 0.5)
    print("\nInfoSwap parity, max abs error relative to max |ref|:",
          {k: f"{v:.1e}" for k, v in errors.items() if k in ("map0", "embedding", "identity", "lambda0", "z_source0",
                                                           "attribute0", "z_attr7", "z_lambda0", "y", "crop")},
          f"worst {max(errors, key=errors.get)} {max(errors.values()):.1e}")
    assert max(errors.values()) <= TOL, {k: v for k, v in errors.items() if v > TOL}
    assert float(gold["y"].std()) > 0.05  # the random network's output is informative, not saturated or flat
    assert float((y[0] - y[2]).abs().mean()) > 1e-3  # the other pairs got their own swaps
