"""The embedded `samples` protocol: real face photographs that installed packages ship.

Nine people, one photograph each, so every ordered (source, target) pair of distinct people is a
pair: 72 pairs. The six faces of insightface's group photo t1.jpg are cut out with fixed boxes
(the dlib HOG detection of each face, widened 2.5x), so each sample holds one main face.
"""

from __future__ import annotations

from itertools import permutations

from swapbench.datasets.protocol import ImageRef, Pair, Protocol

_T1 = "pkg://insightface/data/images/t1.jpg"
# Left to right across the group photo.
_T1_BOXES = [
    (0, 193, 247, 453),
    (209, 102, 427, 320),
    (358, 190, 670, 502),
    (656, 275, 914, 532),
    (805, 0, 1065, 257),
    (1036, 194, 1280, 451),
]

_SINGLE = {
    "tom_hanks": "pkg://insightface/data/images/Tom_Hanks_54745.png",
    "astronaut": "pkg://skimage/data/astronaut.png",  # Eileen Collins
    "grace_hopper": "pkg://matplotlib/mpl-data/sample_data/grace_hopper.jpg",
}


def samples() -> Protocol:
    images = {}
    for i, box in enumerate(_T1_BOXES, start=1):
        key = f"t1_person{i}"
        images[key] = ImageRef(key, key, f"{_T1}#box={','.join(map(str, box))}")
    for key, uri in _SINGLE.items():
        images[key] = ImageRef(key, key, uri)
    pairs = [Pair(source=s, target=t) for s, t in permutations(sorted(images), 2)]
    return Protocol("samples", "1", "bundled real faces from installed packages, all ordered pairs", images, pairs)
