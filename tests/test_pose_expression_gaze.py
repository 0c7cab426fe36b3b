"""Pose, expression and gaze: offline backends on real faces, and the metrics built on them."""

import cv2
import numpy as np
import pytest
import torch
from faces import sample_crops, to_tensor

from swapbench.metrics.backends.expression import MediapipeBlendshapes
from swapbench.metrics.backends.gaze import MediapipeIrisGaze
from swapbench.metrics.backends.pose import MediapipePose, Pnp68Pose
from swapbench.metrics.expression import ExpressionError
from swapbench.metrics.gaze import GazeError
from swapbench.metrics.pose import PoseError

# near-frontal (astronaut, grace_hopper), turned ~20 degrees (tom_hanks) and ~45 degrees (t1_4)
FLIP_FACES = ("astronaut", "grace_hopper", "tom_hanks", "t1_4")


@pytest.fixture(scope="module")
def crops():
    return sample_crops()


def extract(backend, *images):
    feats = backend.extract(to_tensor(*images))
    assert feats.ok.all(), feats.reasons
    return feats.values.double().numpy()


@pytest.mark.parametrize("backend_cls", [MediapipePose, Pnp68Pose])
def test_flip_mirrors_yaw(backend_cls, crops):
    backend = backend_cls()
    for name in FLIP_FACES:
        (yaw, pitch, _), (yaw_f, pitch_f, _) = extract(backend, crops[name], crops[name][:, ::-1])
        # a mirror image turns the other way by the same amount (up to the estimator's noise)
        if abs(yaw) > 1:
            assert np.sign(yaw_f) == -np.sign(yaw), (name, yaw, yaw_f)
        assert abs(yaw + yaw_f) <= max(3.0, 0.2 * abs(yaw)), (name, yaw, yaw_f)
        assert abs(pitch - pitch_f) <= 5.0, (name, pitch, pitch_f)


@pytest.mark.parametrize("backend_cls", [MediapipePose, Pnp68Pose])
def test_clockwise_rotation_increases_roll(backend_cls, crops):
    backend = backend_cls()
    for name in ("grace_hopper", "tom_hanks", "t1_5"):
        rot = cv2.getRotationMatrix2D((128, 128), -15, 1.0)  # OpenCV: negative angle = clockwise
        turned = cv2.warpAffine(crops[name], rot, (256, 256), borderMode=cv2.BORDER_REFLECT)
        (_, _, roll), (_, _, roll_t) = extract(backend, crops[name], turned)
        assert roll_t - roll == pytest.approx(15.0, abs=4.0), (name, roll, roll_t)


def test_pose_backends_agree(crops):
    names = list(crops)
    a = extract(MediapipePose(), *[crops[n] for n in names])
    b = extract(Pnp68Pose(), *[crops[n] for n in names])
    # two independent estimators (mesh fit vs 68-point PnP) in one Euler convention
    np.testing.assert_allclose(a[:, 0], b[:, 0], atol=10.0)  # yaw: largest gap 8.4 (t1_4, yaw 50)
    np.testing.assert_allclose(a[:, 1], b[:, 1], atol=10.0)  # pitch: largest gap 7.4 (astronaut)
    np.testing.assert_allclose(a[:, 2], b[:, 2], atol=6.0)  # roll: largest gap 2.2


def test_flip_mirrors_gaze_yaw(crops):
    backend = MediapipeIrisGaze()
    for name in ("astronaut", "tom_hanks", "t1_2", "t1_4"):
        (_, yaw), (_, yaw_f) = extract(backend, crops[name], crops[name][:, ::-1])
        if abs(yaw) > 3:
            assert np.sign(yaw_f) == -np.sign(yaw), (name, yaw, yaw_f)
        assert abs(yaw + yaw_f) <= max(4.0, 0.2 * abs(yaw)), (name, yaw, yaw_f)


@pytest.mark.parametrize(
    "backend_cls,metric_cls",
    [(MediapipePose, PoseError), (Pnp68Pose, PoseError), (MediapipeBlendshapes, ExpressionError),
     (MediapipeIrisGaze, GazeError)],
)
def test_image_against_itself_is_zero(backend_cls, metric_cls, crops):
    images = [crops[n] for n in ("astronaut", "tom_hanks", "t1_3")]
    swap = backend_cls().extract(to_tensor(*images))
    target = backend_cls().extract(to_tensor(*images))  # a separate call, as for a swap and its target
    metric = metric_cls()
    metric.update(torch.arange(3), swap.values, target.values)
    out = metric.compute()
    assert float(out["value"]) == pytest.approx(0.0, abs=1e-9)
    # and a different face is not zero, so the test above can fail
    other = metric_cls()
    other.update(torch.arange(3), swap.values, swap.values.roll(1, dims=0))
    assert float(other.compute()["value"]) > 0.1


def numpy_gaze_angle(a, b):
    def vec(pitch_yaw):
        p, y = np.radians(pitch_yaw[:, 0]), np.radians(pitch_yaw[:, 1])
        return np.stack([-np.cos(p) * np.sin(y), -np.sin(p), -np.cos(p) * np.cos(y)], 1)

    va, vb = vec(a), vec(b)
    cos = (va * vb).sum(1) / np.linalg.norm(va, axis=1) / np.linalg.norm(vb, axis=1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


@pytest.mark.parametrize(
    "backend_cls,metric_cls,reference",
    [
        (MediapipePose, PoseError, lambda a, b: np.linalg.norm(a - b, axis=1)),
        (MediapipeBlendshapes, ExpressionError, lambda a, b: np.linalg.norm(a - b, axis=1)),
        (MediapipeIrisGaze, GazeError, numpy_gaze_angle),
    ],
)
def test_metric_equals_numpy_on_real_features(backend_cls, metric_cls, reference, crops):
    names = list(crops)
    feats = backend_cls().extract(to_tensor(*[crops[n] for n in names]))
    assert feats.ok.all()
    values = feats.values.double().numpy()
    # pair i: swap = face i, target = face i+1; fed in two batches
    swap, target = values, np.roll(values, -1, axis=0)
    metric = metric_cls()
    for part in (slice(0, 4), slice(4, None)):
        idx = torch.arange(len(names))[part]
        metric.update(idx, torch.from_numpy(swap[part]).float(), torch.from_numpy(target[part]).float())
    out = metric.compute()
    expected = reference(swap.astype(np.float32).astype(np.float64), target.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(out["pair_values"].numpy(), expected, rtol=1e-9, atol=1e-6)
    assert out["value"].dtype == torch.float64
    assert float(out["value"]) == pytest.approx(expected.mean(), rel=1e-9, abs=1e-6)
    assert out["pair_index"].tolist() == list(range(len(names)))


def test_repeated_pairs_are_counted_once():
    metric = ExpressionError()
    swap = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]])
    target = torch.zeros(3, 2)
    metric.update(torch.tensor([0, 1, 2]), swap, target)  # values 5, 1, 0
    metric.update(torch.tensor([1, 1]), swap[[1, 1]], target[[1, 1]])  # sampler padding repeats pair 1
    out = metric.compute()
    assert out["pair_index"].tolist() == [0, 1, 2]
    assert out["pair_values"].tolist() == [5.0, 1.0, 0.0]
    assert float(out["value"]) == pytest.approx(2.0)  # not (5 + 1 + 0 + 1 + 1) / 5


def test_gaze_angle_is_exact_at_zero_and_mirrors():
    m = GazeError()
    a = torch.tensor([[10.0, 20.0], [-5.0, 35.0], [0.0, 0.0]])
    b = torch.tensor([[10.0, 20.0], [-5.0, -35.0], [0.0, 90.0]])
    m.update(torch.arange(3), a, b)
    np.testing.assert_allclose(m.compute()["pair_values"].numpy(), [0.0, numpy_gaze_angle(a[1:2].double().numpy(), b[1:2].double().numpy())[0], 90.0], atol=1e-9)


@pytest.mark.parametrize("backend_cls", [MediapipePose, Pnp68Pose, MediapipeBlendshapes, MediapipeIrisGaze])
def test_no_face_is_reported(backend_cls, crops):
    blank = np.full((256, 256, 3), 128, np.uint8)
    feats = backend_cls().extract(to_tensor(crops["tom_hanks"], blank))
    assert feats.ok.tolist() == [True, False]
    assert feats.reasons == [None, f"no face found by {backend_cls.name}"]
    assert feats.values.shape == (2, backend_cls.dim)
