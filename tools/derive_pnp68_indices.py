"""Derive the MediaPipe mesh vertex nearest to each of dlib's 68 landmarks.

pnp68_pose takes the 3D positions of dlib's 68 points from MediaPipe's canonical face model.
This script picks, for every dlib point, the mesh vertex whose image position is nearest on
average over the bundled sample faces (distances in units of the inter-ocular distance) and
prints the table that swapbench/metrics/backends/pose.py holds as DLIB68_TO_MESH.

    python tools/derive_pnp68_indices.py
"""

import os
import sys

import dlib
import face_recognition_models
import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]
from faces import sample_crops  # noqa: E402

from swapbench.faces.mediapipe import FaceMesh  # noqa: E402


def main():
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    total, n = np.zeros((68, 468)), 0
    with FaceMesh() as mesh:
        for name, crop in sample_crops().items():
            rects = detector(crop, 1)
            res = mesh.run([crop])[0]
            if not rects or res is None:
                print(f"skipping {name}: no face", file=sys.stderr)
                continue
            shape = predictor(crop, rects[0])
            pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
            iod = np.linalg.norm(pts[36:42].mean(0) - pts[42:48].mean(0))
            d = np.linalg.norm(pts[:, None, :] - res.pixels[None, :468, :], axis=2) / iod
            total += d
            n += 1
    best = (total / n).argmin(axis=1)
    err = (total / n)[np.arange(68), best]
    print(f"# {n} faces; mean residual {err.mean():.3f}, max {err.max():.3f} inter-ocular distances")
    print("DLIB68_TO_MESH = (")
    for i in range(0, 68, 12):
        print("    " + ", ".join(str(int(v)) for v in best[i : i + 12]) + ",")
    print(")")


if __name__ == "__main__":
    main()
