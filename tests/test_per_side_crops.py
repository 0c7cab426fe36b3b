"""A crop convention per side: a method may take its source in another convention than its target.

The engine prepares both, hands the source FaceBatch in the source convention (its matrix maps the image
to the source crop) and keeps the target's convention for the output, the carry into the scoring crop
and everything after it.
"""

from __future__ import annotations

import os
import sqlite3
import textwrap

from conftest import bench, complete_run
from PIL import Image

from swapbench.methods.base import SwapMethod


class OneConvention(SwapMethod):
    name = "one_convention"
    crop, size = "ghost", 224


class TwoConventions(OneConvention):
    name = "two_conventions"
    source_crop, source_size = "arcface", 112


class SourceSizeOnly(OneConvention):
    name = "source_size_only"
    source_size = 448


def test_source_convention_defaults_to_the_target_side():
    assert OneConvention().source_convention == OneConvention().convention == "ghost_224"
    assert TwoConventions().source_convention == "arcface_112" and TwoConventions().convention == "ghost_224"
    assert SourceSizeOnly().source_convention == "ghost_448"


PLUGIN = '''
import numpy as np
from swapbench.datasets.images import load_image
from swapbench.faces import templates, warp
from swapbench.methods.base import SwapMethod


class TwoSides(SwapMethod):
    name = "two_sides"
    crop, size = "ghost", 224
    source_crop, source_size = "arcface", 112

    def swap(self, source, target):
        for face, convention in ((source, "arcface_112"), (target, "ghost_224")):
            size = templates.parse_convention(convention)[1]
            assert face.image.shape[-2:] == (size, size), (convention, face.image.shape)
            for i, where in enumerate(face.location):
                m = face.matrix[i].numpy()
                # the crop is its image warped by its own matrix...
                crop = warp.align_image(load_image(where), m, size)
                assert np.array_equal(crop, warp.to_uint8(face.image[i:i + 1])[0]), (convention, where)
                # ...and that matrix is the convention's template fitted to the face's landmarks
                back = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
                image_points = templates.apply_transform(back, face.landmarks[i].numpy())
                refit = templates.estimate_transform(convention, image_points)
                assert np.allclose(refit, m, atol=1e-3), (convention, refit, m)
        return target.image.flip(-1)  # a visible change, made on the target's crop
'''


def test_each_side_gets_its_own_convention_end_to_end(tmp_path):
    (tmp_path / "twosides").mkdir()
    (tmp_path / "twosides" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    dist = tmp_path / "twosides-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: twosides\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[swapbench.methods]\ntwo_sides = twosides:TwoSides\n")
    store = tmp_path / "s.sqlite"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = bench("run", "--method", "two_sides", "--subset", "3", "--no-progress", "--batch-size", "2",
                "--set", "metrics={identity: dlib_resnet_v1}", store=store, env=env)
    # a failed check inside swap() would be recorded as a failed pair
    assert "two_sides: 3/3 pairs swapped, 0 failed" in out.stderr, out.stderr

    db = sqlite3.connect(store)
    conventions = {row[0] for row in db.execute("SELECT DISTINCT convention FROM faces")}
    assert {"arcface_112", "ghost_224", "ffhq_256"} <= conventions
    swaps, files, _ = complete_run(store, "two_sides")
    assert len(swaps) == 3 and all(swaps.values())
    # The method's own output is the target side's 224 crop; the scored swap is carried into ffhq_256.
    for pair_id in swaps:
        assert Image.open(files / "raw" / f"{pair_id}.png").size == (224, 224)
        assert Image.open(files / f"{pair_id}.png").size == (256, 256)
    (config,) = db.execute("SELECT provenance FROM runs WHERE method='two_sides'").fetchone()
    assert '"source_convention": "arcface_112"' in config


def test_source_convention_is_part_of_the_run_id():
    from swapbench.bench import config
    from swapbench.bench.runinfo import run_id_for
    from swapbench.datasets import get_protocol

    cfg, protocol = config.load(), get_protocol("samples")
    one = run_id_for(cfg, protocol, OneConvention(), {})
    assert one == run_id_for(cfg, protocol, OneConvention(), {})
    # a method that declares a source convention gets another run than one that only shares its target's
    two = TwoConventions()
    two.name = "one_convention"
    assert run_id_for(cfg, protocol, two, {}) != one
