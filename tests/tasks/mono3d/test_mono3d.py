"""Monocular 3D detection: targets, orientation bins, unprojection, loss, decode, KITTI rows.

Shapes: B batch, N objects, h, w output size, K decoded objects.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from centernet.tasks import ImageMeta

import centernet
from centernet.data.kitti import read_label_file, write_label_file
from centernet.models.crops import CropNet, crop_objects
from centernet.ops.camera import box_corners_batched
from centernet.tasks.mono3d.decode import (
    alpha_from_crop_values, decode_alpha, depth_from_logits, detections_to_kitti, fit_rotation_y, pooled_depth,
    project_to_image, unproject_to_camera, wrap_angle,
)
from centernet.errors import CenterNetError
from centernet.tasks.detection.targets import DetectionTargetEncoder
from centernet.tasks.mono3d.targets import NUM_BINS, Mono3DTargetEncoder, encode_alpha, encode_alpha_multibin, projected_centres, projected_corners
from centernet.tasks.mono3d import Mono3DTask

# A KITTI P2 (image 1242 x 375): fx = fy, principal point, and camera 2's offset from the rectified camera 0.
P2 = np.array([[721.5, 0.0, 609.6, 44.86], [0.0, 721.5, 172.9, 0.2164], [0.0, 0.0, 1.0, 0.002746]])
IMAGE_WH = (1242, 375)
STRIDE = 4.0
OUT_HW = (96, 312)  # the image at 1/4 scale fits in it
TO_ORIGINAL = torch.tensor([[[STRIDE, 0.0, 0.0], [0.0, STRIDE, 0.0]]])  # output map -> original pixels

# h, w, l, x, y, z, rotation_y: cars, a pedestrian, a cyclist; the last car is truncated at the left border
# (its projected centre lies outside the image).
SCENE = np.array([
    [1.50, 1.60, 3.90, -6.0, 1.70, 18.0, 0.30],
    [1.45, 1.70, 4.20, 3.5, 1.60, 25.0, -1.90],
    [1.75, 0.60, 0.80, 1.0, 1.65, 12.0, 2.80],
    [1.60, 1.80, 4.50, 9.0, 1.80, 35.0, -3.00],
    [1.70, 0.60, 1.80, -2.5, 1.70, 30.0, 1.20],
    [1.55, 1.65, 4.00, -6.2, 1.70, 5.0, 1.40],
])
LABELS = np.array([0, 0, 1, 0, 2, 0])
TRUNCATED = 5


def objects3d_of(scene: np.ndarray) -> np.ndarray:
    """(N, 8) h w l x y z rotation_y alpha, alpha = rotation_y - atan2(x, z) (KITTI's definition)."""
    alpha = np.arctan2(np.sin(scene[:, 6] - np.arctan2(scene[:, 3], scene[:, 5])),
                       np.cos(scene[:, 6] - np.arctan2(scene[:, 3], scene[:, 5])))
    return np.concatenate([scene, alpha[:, None]], axis=1)


def box3d_corners(obj: np.ndarray) -> np.ndarray:
    """(8, 3) corners of a KITTI box (location at the bottom centre, y down), as the original's compute_box_3d."""
    h, w, l, x, y, z, ry = obj[:7]
    c, s = math.cos(ry), math.sin(ry)
    rotation = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    corners = np.array([[l / 2, l / 2, -l / 2, -l / 2, l / 2, l / 2, -l / 2, -l / 2],
                        [0, 0, 0, 0, -h, -h, -h, -h],
                        [w / 2, -w / 2, -w / 2, w / 2, w / 2, -w / 2, -w / 2, w / 2]])
    return (rotation @ corners).T + np.array([x, y, z])


def project_np(points: np.ndarray, calib: np.ndarray = P2) -> np.ndarray:
    image = np.c_[points, np.ones(len(points))] @ calib.T
    return image[:, :2] / image[:, 2:3]


def image_boxes(objects3d: np.ndarray) -> np.ndarray:
    """(N, 4) 2D boxes in original pixels: the projected corners' extent, clipped to the image (as KITTI's)."""
    boxes = []
    for obj in objects3d:
        uv = project_np(box3d_corners(obj))
        boxes.append([uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()])
    boxes = np.array(boxes)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, IMAGE_WH[0])
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, IMAGE_WH[1])
    return boxes


def encode_scene(centre: str, scene: np.ndarray = SCENE, labels: np.ndarray = LABELS) -> dict[str, np.ndarray]:
    """Targets of the scene on the output map, as the dataset would make them (boxes and centres / STRIDE)."""
    objects3d = objects3d_of(scene)
    encoder = Mono3DTask(num_classes=3, centre=centre).encoder()
    centres = projected_centres(objects3d, P2) / STRIDE
    return encoder(image_boxes(objects3d) / STRIDE, labels, objects3d, OUT_HW, centres=centres)


def orientation_values(bins: np.ndarray, residuals: np.ndarray, confidence: float = 20.0) -> np.ndarray:
    """(..., 8) a perfect orientation head: logit1 - logit0 = +-2 confidence, sin and cos of the residuals."""
    sign = np.where(bins > 0, 1.0, -1.0) * confidence  # (..., 2)
    per_bin = np.stack([-sign, sign, np.sin(residuals), np.cos(residuals)], axis=-1)  # (..., 2, 4)
    return per_bin.reshape(*bins.shape[:-1], 8)


def perfect_outputs(targets: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """A perfect network (batch of 1): heatmap logits of the target, regressions written at the centres."""
    h, w = targets["heatmap"].shape[1:]
    two_bins = targets["orientation_bin"].shape[-1] == 2  # else the 12-bin form
    maps = {name: torch.zeros(1, ch, h * w) for name, ch in
            (("depth", 1), ("dimensions", 3), ("orientation", 8 if two_bins else 24), ("size", 2), ("offset", 2))}
    orientation = (orientation_values if two_bins else multibin_values)(
        targets["orientation_bin"], targets["orientation_residual"])
    for m in np.flatnonzero(targets["mask"]):
        at = int(targets["index"][m])
        maps["depth"][0, 0, at] = -math.log(float(targets["depth"][m, 0]))  # the inverse of 1 / sigmoid(x) - 1
        maps["dimensions"][0, :, at] = torch.from_numpy(targets["dimensions"][m])
        maps["orientation"][0, :, at] = torch.from_numpy(orientation[m]).float()
        maps["size"][0, :, at] = torch.from_numpy(targets["size"][m])
        maps["offset"][0, :, at] = torch.from_numpy(targets["offset"][m])
    outputs = {name: value.view(1, -1, h, w) for name, value in maps.items()}
    outputs["heatmap"] = torch.logit(torch.from_numpy(targets["heatmap"]).clamp(1e-6, 1 - 1e-6))[None]
    return outputs


def collate(samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(np.stack([s[name] for s in samples])) for name in samples[0]}


def angle_error(a, b) -> np.ndarray:
    return np.abs(wrap_angle(torch.as_tensor(np.asarray(a) - np.asarray(b), dtype=torch.float64)).numpy())


def matched(dets: dict[str, torch.Tensor], points: np.ndarray) -> dict[str, np.ndarray]:
    """The confident detections (score > 0.99), reordered to follow ``points`` (N, 2) by nearest centre."""
    top = dets["scores"][0] > 0.99
    assert top.sum() == len(points)
    found = {name: value[0][top].numpy() for name, value in dets.items()}
    order = [int(np.linalg.norm(found["centres"] - p, axis=1).argmin()) for p in points]
    assert sorted(order) == list(range(len(points)))
    return {name: value[order] for name, value in found.items()}


# ---------------------------------------------------------------- targets


def test_heads():
    assert Mono3DTask(num_classes=3).heads() == {"heatmap": 3, "depth": 1, "dimensions": 3, "orientation": 8,
                                                 "size": 2, "offset": 2}
    with pytest.raises(ValueError):
        Mono3DTask(num_classes=3, centre="middle")
    with pytest.raises(CenterNetError):
        Mono3DTask(num_classes=3).flip_merge({})


def test_box_centre_targets_are_the_detection_targets_plus_3d():
    objects3d = objects3d_of(SCENE)
    boxes = image_boxes(objects3d) / STRIDE
    t = encode_scene("box")
    d = DetectionTargetEncoder(3, 50)(boxes.astype(np.float32), LABELS, OUT_HW)
    for name in d:
        assert np.array_equal(t[name], d[name]), name
    n = len(SCENE)
    np.testing.assert_allclose(t["depth"][:n, 0], SCENE[:, 5], rtol=1e-6)
    np.testing.assert_allclose(t["dimensions"][:n], SCENE[:, :3], rtol=1e-6)
    bins, residuals = encode_alpha(objects3d[:, 7])
    assert np.array_equal(t["orientation_bin"][:n], bins)
    np.testing.assert_allclose(t["orientation_residual"][:n], residuals, atol=1e-6)
    assert t["depth"][n:].max() == 0 and t["orientation_bin"][n:].max() == 0


def test_projected_centre_targets():
    objects3d = objects3d_of(SCENE)
    centres = projected_centres(objects3d, P2) / STRIDE
    np.testing.assert_allclose(centres * STRIDE, project_np(SCENE[:, 3:6] - np.c_[0 * SCENE[:, 0], SCENE[:, 0] / 2,
                                                                                  0 * SCENE[:, 0]]), rtol=1e-5)
    t, box = encode_scene("projected"), encode_scene("box")
    for name in ("size", "mask", "ignore", "depth", "dimensions", "orientation_bin", "orientation_residual"):
        assert np.array_equal(t[name], box[name]), name  # only the peak moves
    n = len(SCENE)
    peaks = np.stack([t["index"][:n] % OUT_HW[1], t["index"][:n] // OUT_HW[1]], axis=1)
    np.testing.assert_allclose(peaks + t["offset"][:n], centres, atol=1e-4)  # peak + offset: the projected centre
    assert centres[TRUNCATED, 0] < 0 and peaks[TRUNCATED, 0] == 0          # outside the map: clamped to it
    assert t["offset"][TRUNCATED, 0] < -1                                  # the offset carries the rest
    inside = np.arange(n) != TRUNCATED
    assert np.array_equal(peaks[inside], centres[inside].astype(np.int64))
    for (x, y), label in zip(peaks, LABELS):
        assert t["heatmap"][label, y, x] == 1
    # With centres at the box centres, projected mode is box mode.
    boxes = image_boxes(objects3d) / STRIDE
    encoder = Mono3DTargetEncoder(3, 50, centre="projected")
    same = encoder(boxes, LABELS, objects3d, OUT_HW, centres=(boxes[:, :2] + boxes[:, 2:]) / 2)
    for name in box:
        np.testing.assert_allclose(same[name], box[name], atol=5e-5, err_msg=name)  # float32 centres
    with pytest.raises(ValueError, match="centres"):
        encoder(boxes, LABELS, objects3d, OUT_HW)


def test_objects_without_area_and_beyond_max_objects_keep_slots_aligned():
    objects3d = objects3d_of(SCENE[:3])
    boxes = image_boxes(objects3d) / STRIDE
    boxes[0, 2] = boxes[0, 0]  # zero width: dropped by the detection encoder
    t = Mono3DTargetEncoder(3, max_objects=1)(boxes, LABELS[:3], objects3d, OUT_HW)
    assert t["mask"].tolist() == [1] and t["depth"][0, 0] == pytest.approx(SCENE[1, 5])
    empty = Mono3DTargetEncoder(3, centre="projected")(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 8)), OUT_HW,
                                                       centres=np.zeros((0, 2)))
    assert empty["mask"].sum() == 0 and empty["heatmap"].max() == 0 and empty["orientation_bin"].shape == (128, 2)
    with pytest.raises(ValueError, match="objects3d"):
        Mono3DTargetEncoder(3)(boxes, LABELS[:3], np.zeros((3, 7)), OUT_HW)


# ---------------------------------------------------------------- orientation bins


def test_orientation_bins_encode_and_decode_every_alpha():
    edges = [-math.pi, -5 * math.pi / 6, -math.pi / 6, math.pi / 6, 5 * math.pi / 6, math.pi]
    alphas = np.concatenate([np.linspace(-math.pi, math.pi, 720, endpoint=False), edges,
                             np.nextafter(edges, 0), np.nextafter(edges, 4)])
    bins, residuals = encode_alpha(alphas)
    assert bins.sum(1).min() == 1  # every angle is in a bin; near 0 and pi in both
    both = bins.sum(1) == 2
    assert np.array_equal(both, (np.abs(alphas) < math.pi / 6) | (np.abs(alphas) > 5 * math.pi / 6))
    assert angle_error(residuals, 0)[bins > 0].max() <= 2 * math.pi / 3 + 1e-6  # up to 120 degrees from the bin
    assert angle_error(residuals, 0)[bins > 0].max() > math.pi / 2 + 0.1  # beyond 90: atan(sin / cos) would fail
    decoded = decode_alpha(torch.from_numpy(orientation_values(bins, residuals)))
    assert angle_error(decoded.numpy(), alphas).max() < 1e-5
    assert decoded.min() >= -math.pi and decoded.max() < math.pi
    # Where both bins hold the angle, either one decodes it; bin 0 wins when its "in bin" logit is larger.
    for prefer in (0, 1):
        values = orientation_values(bins, residuals)[both]
        values[:, 4 * (1 - prefer) + 1] = -30.0
        assert angle_error(decode_alpha(torch.from_numpy(values)).numpy(), alphas[both]).max() < 1e-5
    values = np.array([[0, 1.0, 0, 1, 0, 0.5, 1, 0]])  # bin 0 says -pi/2, bin 1 says pi/2 + pi/2
    assert decode_alpha(torch.from_numpy(values)).item() == pytest.approx(-math.pi / 2)
    values[0, 5] = 2.0
    assert abs(decode_alpha(torch.from_numpy(values)).item()) == pytest.approx(math.pi)


# ---------------------------------------------------------------- projection


@pytest.mark.parametrize("skew", [0.0, 3.5])
def test_unprojection_inverts_projection(skew):
    rng = np.random.default_rng(0)
    points = np.stack([rng.uniform(-20, 20, 50), rng.uniform(-2, 3, 50), rng.uniform(2, 80, 50)], axis=1)
    calib = P2.copy()
    calib[0, 1] = skew
    uv = project_to_image(torch.from_numpy(points)[None], torch.from_numpy(calib)[None])  # (1, 50, 2)
    np.testing.assert_allclose(uv[0].numpy(), project_np(points, calib), rtol=1e-12)
    back = unproject_to_camera(uv, torch.from_numpy(points[:, 2])[None], torch.from_numpy(calib)[None])
    np.testing.assert_allclose(back[0].numpy(), points, atol=1e-9)


def test_depth_activation():
    x = torch.tensor([-5.0, -1.0, 0.0, 2.0, -100.0])
    expected = 1 / torch.sigmoid(x[:4].double()) - 1
    assert torch.allclose(depth_from_logits(x)[:4].double(), expected, rtol=1e-6)
    assert torch.isfinite(depth_from_logits(x)).all() and depth_from_logits(x)[4] == pytest.approx(1e6)


# ---------------------------------------------------------------- encode -> decode


def test_round_trip_with_projected_centres_recovers_every_box_exactly():
    objects3d = objects3d_of(SCENE)
    outputs = perfect_outputs(encode_scene("projected"))
    dets = Mono3DTask(num_classes=3, centre="projected").decode(
        outputs, ImageMeta(TO_ORIGINAL, torch.from_numpy(P2).float()[None]), k=20)
    assert dets["location"].shape == (1, 20, 3) and dets["rotation_y"].shape == (1, 20)
    found = matched(dets, projected_centres(objects3d, P2))
    assert found["labels"].tolist() == LABELS.tolist()
    np.testing.assert_allclose(found["location"], SCENE[:, 3:6], atol=2e-3)  # truncated one included
    np.testing.assert_allclose(found["dimensions"], SCENE[:, :3], atol=1e-5)
    np.testing.assert_allclose(found["depth"], SCENE[:, 5], rtol=1e-5)
    assert angle_error(found["alpha"], objects3d[:, 7]).max() < 1e-5
    assert angle_error(found["rotation_y"], SCENE[:, 6]).max() < 1e-4
    # The 2D box keeps its size but is centred on the projected centre (no head says where the 2D centre is).
    boxes = image_boxes(objects3d)
    found_wh = found["boxes"][:, 2:] - found["boxes"][:, :2]
    np.testing.assert_allclose(found_wh, boxes[:, 2:] - boxes[:, :2], atol=1e-2)
    np.testing.assert_allclose((found["boxes"][:, :2] + found["boxes"][:, 2:]) / 2, found["centres"], atol=1e-3)


def test_round_trip_with_box_centres_is_the_originals_approximation():
    objects3d = objects3d_of(SCENE)
    boxes = image_boxes(objects3d)
    box_centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    outputs = perfect_outputs(encode_scene("box"))
    dets = Mono3DTask(num_classes=3).decode(outputs, ImageMeta(TO_ORIGINAL, torch.from_numpy(P2).float()[None]), k=20)
    found = matched(dets, box_centres)
    # Everything regressed comes back exactly, the 2D box included.
    np.testing.assert_allclose(found["boxes"], boxes, atol=1e-2)
    np.testing.assert_allclose(found["dimensions"], SCENE[:, :3], atol=1e-5)
    np.testing.assert_allclose(found["depth"], SCENE[:, 5], rtol=1e-5)
    assert angle_error(found["alpha"], objects3d[:, 7]).max() < 1e-5
    # The location is the 2D box centre unprojected at the true depth (then moved down h/2): the original's
    # approximation, as the projected 3D centre is not the centre of the projected box.
    centre3d = unproject_to_camera(torch.from_numpy(box_centres)[None], torch.from_numpy(SCENE[:, 5])[None],
                                   torch.from_numpy(P2)[None])[0].numpy()
    np.testing.assert_allclose(found["location"], centre3d + np.c_[0 * SCENE[:, 0], SCENE[:, 0] / 2, 0 * SCENE[:, 0]],
                               atol=2e-3)
    # That costs up to a few decimetres for whole objects, and metres for the truncated one (its box is clipped).
    error = np.linalg.norm(found["location"] - SCENE[:, 3:6], axis=1)
    whole = np.arange(len(SCENE)) != TRUNCATED
    assert error[whole].max() < 0.3 and error[TRUNCATED] > 1.0
    assert np.abs(found["location"][:, 2] - SCENE[:, 5]).max() < 1e-4  # depth is exact either way
    # rotation_y = alpha + the ray angle to the decoded location, so its error is that of the ray only.
    ray = np.arctan2(found["location"][:, 0], found["location"][:, 2])
    assert angle_error(found["rotation_y"], objects3d[:, 7] + ray).max() < 1e-5


def test_decode_without_camera_stays_2d_and_is_batched():
    first, second = perfect_outputs(encode_scene("box")), perfect_outputs(encode_scene("projected"))
    task = Mono3DTask(num_classes=3)
    alone = task.decode(first, k=10)
    assert "location" not in alone and alone["boxes"].shape == (1, 10, 4) and alone["centres"].shape == (1, 10, 2)
    batched = {name: torch.cat([first[name], second[name]]) for name in first}
    calib = torch.from_numpy(np.stack([P2, P2 * [[0.9], [0.9], [1]]])).float()  # a different camera per image
    together = task.decode(batched, ImageMeta(TO_ORIGINAL.repeat(2, 1, 1), calib), k=10)
    single = task.decode(second, ImageMeta(TO_ORIGINAL, calib[1:]), k=10)
    for name in single:
        assert torch.allclose(together[name][1], single[name][0]), name


# ---------------------------------------------------------------- loss


def test_loss_of_a_perfect_network_is_small_and_wrong_bins_cost():
    task = Mono3DTask(num_classes=3)
    t = encode_scene("box")
    outputs = perfect_outputs(t)
    losses = task.loss(outputs, collate([t]))
    assert set(losses) == {"loss", "heatmap_loss", "depth_loss", "dimensions_loss", "orientation_loss", "size_loss",
                           "offset_loss"}
    for name in ("depth_loss", "dimensions_loss", "orientation_loss", "size_loss", "offset_loss"):
        assert losses[name].item() < 1e-5, name
    assert task.loss([outputs, outputs], collate([t]))["loss"].item() == pytest.approx(losses["loss"].item())
    wrong = dict(outputs)
    wrong["orientation"] = outputs["orientation"].clone()
    wrong["orientation"][:, [0, 1, 4, 5]] *= -1  # every bin decision reversed, residuals still right
    assert task.loss(wrong, collate([t]))["orientation_loss"].item() > 10
    residual = dict(outputs)
    residual["orientation"] = outputs["orientation"].clone()
    residual["orientation"][:, [2, 6]] *= -1  # sin of the residuals negated: only the residual part
    assert task.loss(residual, collate([t]))["orientation_loss"].item() > 0.01
    deeper = dict(outputs)
    deeper["depth"] = outputs["depth"] - math.log(1.1)  # every depth 10% too far: L1 on the decoded depth
    mean_depth = SCENE[:, 5].mean()
    assert task.loss(deeper, collate([t]))["depth_loss"].item() == pytest.approx(0.1 * mean_depth, rel=1e-3)


def test_loss_with_no_object_is_finite_and_reaches_every_head():
    torch.manual_seed(0)
    task = Mono3DTask(num_classes=3)
    model = centernet.create_model("resnet18", heads=task.heads())
    out_hw = (16, 16)
    objects3d = objects3d_of(SCENE[:2])
    full = task.encoder()(np.array([[2.0, 3.0, 9.0, 8.0], [9.5, 6.0, 14.0, 15.0]]), LABELS[:2], objects3d, out_hw)
    empty = task.encoder()(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 8)), out_hw)
    outputs = model(torch.randn(2, 3, 64, 64))
    none = task.loss({name: v[1:] for name, v in outputs.items()}, collate([empty]))
    assert all(torch.isfinite(v) for v in none.values())
    for name in ("depth_loss", "dimensions_loss", "orientation_loss", "size_loss", "offset_loss"):
        assert none[name].item() == 0.0, name
    losses = task.loss(outputs, collate([full, empty]))
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    losses["loss"].backward()
    for name, head in model.heads.items():
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters()), name


# ---------------------------------------------------------------- KITTI rows


def test_detections_to_kitti_rows_read_back(tmp_path):
    dets = Mono3DTask(num_classes=3, centre="projected").decode(
        perfect_outputs(encode_scene("projected")), ImageMeta(TO_ORIGINAL, torch.from_numpy(P2).float()[None]), k=20)
    one = {name: value[0] for name, value in dets.items()}
    names = ["Car", "Pedestrian", "Cyclist"]
    rows = detections_to_kitti(one, names, score_threshold=0.5)
    assert len(rows) == len(SCENE) and len(detections_to_kitti(one, names)) >= len(SCENE)
    read = read_label_file(write_label_file(tmp_path / "000001.txt", rows))
    assert [r.type for r in read] == [names[int(n)] for n in one["labels"][: len(SCENE)]]
    for row, back in zip(rows, read):
        for field in ("alpha", "rotation_y", "truncated", "score"):
            assert getattr(back, field) == pytest.approx(getattr(row, field), abs=0.005 if field != "score" else 5e-5)
        for field in ("box", "dimensions", "location"):
            np.testing.assert_allclose(getattr(back, field), getattr(row, field), atol=0.005)
        assert back.occluded == 0
    by_depth = sorted(read, key=lambda r: r.location[2])
    np.testing.assert_allclose([r.location for r in by_depth], SCENE[np.argsort(SCENE[:, 5]), 3:6], atol=0.01)
    with pytest.raises(ValueError, match="calib"):
        detections_to_kitti({name: v[0] for name, v in Mono3DTask(3).decode(
            perfect_outputs(encode_scene("box")), k=5).items()}, names)


# ---------------------------------------------------------------- Laplacian log depth


def with_depth_scale(outputs: dict[str, torch.Tensor], log_scale: float) -> dict[str, torch.Tensor]:
    """``outputs`` with a second depth channel: the log of the Laplacian scale of log depth, everywhere."""
    return {**outputs, "depth": torch.cat([outputs["depth"], torch.full_like(outputs["depth"], log_scale)], 1)}


def test_laplace_depth_loss_is_its_formula_and_its_head_has_two_channels():
    task = Mono3DTask(num_classes=3, depth="laplace")
    assert task.heads()["depth"] == 2 and task.initial_biases()["depth"] == [-math.log(20.0), 0.0]
    assert Mono3DTask.from_config(3, task.config()) == task and task.config() == {"depth": "laplace"}
    t = encode_scene("box")
    outputs = perfect_outputs(t)
    perfect = task.loss(with_depth_scale(outputs, -2.0), collate([t]))["depth_loss"].item()
    assert perfect == pytest.approx(-2.0, abs=1e-4)  # no error: the loss is log b
    deeper = with_depth_scale({**outputs, "depth": outputs["depth"] - math.log(1.1)}, math.log(0.5))
    # |log 1.1| / 0.5 + log 0.5 for every object, whatever its depth: a relative error
    want = math.log(1.1) / 0.5 + math.log(0.5)
    assert task.loss(deeper, collate([t]))["depth_loss"].item() == pytest.approx(want, rel=1e-4)
    with pytest.raises(ValueError, match="depth='metres'"):
        Mono3DTask(num_classes=3, depth="metres")


def test_laplace_depth_decodes_the_same_objects_with_scores_scaled_by_confidence():
    objects3d = objects3d_of(SCENE)
    outputs = perfect_outputs(encode_scene("projected"))
    meta = ImageMeta(TO_ORIGINAL, torch.from_numpy(P2).float()[None])
    plain = Mono3DTask(num_classes=3, centre="projected").decode(outputs, meta, k=20)
    sure = Mono3DTask(num_classes=3, centre="projected", depth="laplace").decode(
        with_depth_scale(outputs, math.log(0.01)), meta, k=20)
    np.testing.assert_allclose(sure["scores"].numpy(), plain["scores"].numpy() * math.exp(-0.01), rtol=1e-5)
    found = {name: value for name, value in sure.items()}
    found["scores"] = found["scores"] / math.exp(-0.01)
    found = matched(found, projected_centres(objects3d, P2))
    np.testing.assert_allclose(found["location"], SCENE[:, 3:6], atol=2e-3)
    # a less certain depth ranks its object lower: the scores stay sorted after the scaling
    task = Mono3DTask(num_classes=3, centre="projected", depth="laplace")
    unsure = with_depth_scale(outputs, math.log(0.01))
    top = task.decode_maps(unsure, k=20)  # output-map coordinates
    x, y = (int(v) for v in top["centres"][0, 0])  # the best object's peak pixel
    unsure["depth"][0, 1, y, x] = math.log(3.0)  # its depth now very unsure: exp(-3) of its score
    dets = task.decode_maps(unsure, k=20)
    assert torch.all(dets["scores"][0, :-1] >= dets["scores"][0, 1:])
    moved = top["scores"][0, 0].item() / math.exp(-0.01) * math.exp(-3.0)
    assert (dets["scores"][0] > 0.98).sum() == (top["scores"][0] > 0.98).sum() - 1  # one sure object fewer
    assert torch.isclose(dets["scores"][0], torch.tensor(moved), rtol=1e-4).sum() == 1  # but still there


# ---------------------------------------------------------------- 12 orientation bins


def multibin_values(bins: np.ndarray, residuals: np.ndarray, confidence: float = 20.0) -> np.ndarray:
    """(..., 24) a perfect multibin head: the true bin's logit ``confidence``, the others 0, residuals in place."""
    logits = np.eye(NUM_BINS)[bins.reshape(bins.shape[:-1])] * confidence  # (..., 12)
    values = np.zeros(logits.shape[:-1] + (NUM_BINS,))
    np.put_along_axis(values, bins.reshape(*bins.shape[:-1], 1), residuals.reshape(*bins.shape[:-1], 1), axis=-1)
    return np.concatenate([logits, values], axis=-1)


def test_multibin_orientation_round_trips_every_angle_and_the_bin_edges():
    width = 2 * math.pi / NUM_BINS
    alpha = np.concatenate([np.linspace(-math.pi, math.pi, 721)[:-1],
                            (np.arange(NUM_BINS) + 0.5) * width - 1e-7, (np.arange(NUM_BINS) + 0.5) * width + 1e-7])
    alpha = np.mod(alpha + math.pi, 2 * math.pi) - math.pi
    bins, residuals = encode_alpha_multibin(alpha)
    assert bins.min() >= 0 and bins.max() < NUM_BINS and np.abs(residuals).max() <= width / 2 + 1e-6
    decoded = decode_alpha(torch.from_numpy(multibin_values(bins[:, None], residuals[:, None])))
    assert angle_error(decoded.numpy(), alpha).max() < 1e-5
    assert (decode_alpha(torch.zeros(3, 24)) == 0).all()  # no knowledge: bin 0, no residual


def test_multibin_task_round_trip_and_loss():
    task = Mono3DTask(num_classes=3, centre="projected", orientation="multibin")
    assert task.heads()["orientation"] == 24 and Mono3DTask.from_config(3, task.config()) == task
    objects3d = objects3d_of(SCENE)
    t = task.encoder()(image_boxes(objects3d) / STRIDE, LABELS, objects3d, OUT_HW,
                       centres=projected_centres(objects3d, P2) / STRIDE)
    assert t["orientation_bin"].shape == (task.max_objects, 1)
    outputs = perfect_outputs(t)
    assert outputs["orientation"].shape[1] == 24
    dets = task.decode(outputs, ImageMeta(TO_ORIGINAL, torch.from_numpy(P2).float()[None]), k=20)
    found = matched(dets, projected_centres(objects3d, P2))
    assert angle_error(found["alpha"], objects3d[:, 7]).max() < 1e-5
    assert angle_error(found["rotation_y"], SCENE[:, 6]).max() < 1e-4
    losses = task.loss(outputs, collate([t]))
    assert losses["orientation_loss"].item() < 1e-5
    shifted = dict(outputs)
    shifted["orientation"] = outputs["orientation"].roll(1, dims=1)  # every logit one bin on (residuals mixed in)
    assert task.loss(shifted, collate([t]))["orientation_loss"].item() > 10


# ---------------------------------------------------------------- regressions over each object's Gaussian


def test_regression_over_the_gaussian_weighs_each_object_once():
    """With every pixel of the map carrying an object's values, learning over its Gaussian costs nothing; an error
    that is the same at every pixel costs the same as at the centre alone (each object's weights sum to 1)."""
    one = SCENE[:1]
    objects3d = objects3d_of(one)
    for orientation in ("two_bins", "multibin"):
        task = Mono3DTask(num_classes=3, regress_at="gaussian", depth="laplace", orientation=orientation)
        at_centre = Mono3DTask(num_classes=3, depth="laplace", orientation=orientation)
        t = task.encoder()(image_boxes(objects3d) / STRIDE, LABELS[:1], objects3d, OUT_HW)
        assert t["peak_radius"][0] > 2 and "peak_radius" not in at_centre.encoder()(
            image_boxes(objects3d) / STRIDE, LABELS[:1], objects3d, OUT_HW)
        outputs = with_depth_scale(perfect_outputs(t), -1.0)
        centre = int(t["index"][0])
        everywhere = {name: value.view(1, value.shape[1], -1)[:, :, centre:centre + 1].expand_as(
            value.view(1, value.shape[1], -1)).reshape(value.shape) for name, value in outputs.items()}
        everywhere["heatmap"] = outputs["heatmap"]
        batch = collate([t])
        spread = task.loss(everywhere, batch)
        for name in ("dimensions_loss", "orientation_loss"):
            assert spread[name].item() < 1e-4, (orientation, name)
        assert spread["depth_loss"].item() == pytest.approx(-1.0, abs=1e-3)  # log b, no error (1e-4 in the mean)
        assert task.loss(outputs, batch)["dimensions_loss"].item() > 0.1  # only the centre was right
        deeper = {**everywhere, "depth": everywhere["depth"] - torch.tensor([math.log(1.1), 0.0]).view(1, 2, 1, 1)}
        assert task.loss(deeper, batch)["depth_loss"].item() == pytest.approx(
            at_centre.loss(deeper, batch)["depth_loss"].item(), rel=1e-4)


def test_pooled_depth_is_the_weighted_mean_around_each_peak():
    """Hand-computed: the neighbours count by their heatmap score times 1 / b^2; a neighbour of heatmap score 0 (a
    one-pixel peak's surroundings) does not count; the scale channel is left as it is; a map whose pixels around each
    peak agree decodes the same depth pooled or not."""
    heat = torch.full((1, 2, 3, 3), -30.0)  # scores of about 0 ...
    heat[0, 1, 1, 1], heat[0, 0, 0, 1], heat[0, 1, 1, 2] = 30.0, 0.0, 0.0  # ... but the centre (1), two neighbours (1/2)
    depth = torch.zeros(1, 2, 3, 3)
    depth[0, 0] = torch.tensor([[9.0, 1.0, 9.0], [9.0, 2.0, 4.0], [9.0, 9.0, 9.0]])  # -log depth
    depth[0, 1, 1, 2] = math.log(2.0)  # that neighbour is half as sure: weight 1/2 * 1/4
    pooled = pooled_depth(depth, heat)
    expected = (1.0 * 2.0 + 0.5 * 1.0 + 0.125 * 4.0) / (1.0 + 0.5 + 0.125)
    assert pooled[0, 0, 1, 1].item() == pytest.approx(expected, rel=1e-5)
    assert torch.equal(pooled[0, 1], depth[0, 1])
    alone = pooled_depth(depth[:, :1], heat)  # no scale channel: the heatmap alone weighs
    assert alone[0, 0, 1, 1].item() == pytest.approx((2.0 + 0.5 * 1.0 + 0.5 * 4.0) / 2.0, rel=1e-5)
    objects3d = objects3d_of(SCENE)
    t = Mono3DTask(num_classes=3, regress_at="gaussian", depth="laplace").encoder()(
        image_boxes(objects3d) / STRIDE, LABELS, objects3d, OUT_HW)
    outputs = with_depth_scale(perfect_outputs(t), -1.0)
    for m in np.flatnonzero(t["mask"]):  # each object's depth on the 3 x 3 pixels around its peak
        y, x = divmod(int(t["index"][m]), OUT_HW[1])
        outputs["depth"][0, 0, max(y - 1, 0):y + 2, max(x - 1, 0):x + 2] = -math.log(float(t["depth"][m, 0]))
    at_peak = Mono3DTask(num_classes=3, regress_at="gaussian", depth="laplace")
    around = Mono3DTask(num_classes=3, regress_at="gaussian", depth="laplace", depth_readout="pooled")
    plain, pooled = at_peak.decode_maps(outputs, 20), around.decode_maps(outputs, 20)
    top = plain["scores"] > 0.5
    assert top.sum() == int(t["mask"].sum())
    torch.testing.assert_close(pooled["depth"][top], plain["depth"][top], rtol=1e-5, atol=0)
    torch.manual_seed(0)
    outputs["depth"][0, 0] += torch.randn(OUT_HW) * 0.05  # noise around each peak: the mean moves the depth
    moved = around.decode_maps(outputs, 20)["depth"] != at_peak.decode_maps(outputs, 20)["depth"]
    assert moved[top].all()


# ---------------------------------------------------------------- corner keypoints


def encode_scene_with_corners(scene: np.ndarray, centre: str = "projected") -> dict[str, np.ndarray]:
    objects3d = objects3d_of(scene)
    encoder = Mono3DTask(num_classes=3, centre=centre, keypoints="corners").encoder()
    return encoder(image_boxes(objects3d) / STRIDE, LABELS[: len(scene)], objects3d, OUT_HW,
                   centres=projected_centres(objects3d, P2) / STRIDE,
                   corners=projected_corners(objects3d, P2) / STRIDE)


def with_corner_maps(outputs: dict[str, torch.Tensor], targets: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """``outputs`` plus a perfect corners head (the target offsets written at the centres)."""
    h, w = outputs["heatmap"].shape[2:]
    corners = torch.zeros(1, 16, h * w)
    for m in np.flatnonzero(targets["mask"]):
        corners[0, :, int(targets["index"][m])] = torch.from_numpy(targets["corner_offsets"][m])
    return {**outputs, "corners": corners.view(1, 16, h, w)}


@pytest.mark.parametrize("centre", ["projected", "box"])
def test_corner_offsets_point_from_the_decoded_centre_to_the_projected_corners(centre):
    objects3d = objects3d_of(SCENE)
    targets = encode_scene_with_corners(SCENE, centre)
    assert targets["corner_offsets"].shape == (50, 16)  # the task's max_objects
    index, offset, mask = targets["index"], targets["offset"], targets["mask"]
    width = OUT_HW[1]
    points = np.stack([index % width, index // width], axis=1) + offset  # (M, 2) what decode reads as the centre
    corners = points[:, None, :] + targets["corner_offsets"].reshape(-1, 8, 2)  # (M, 8, 2)
    expected = np.stack([project_np(box3d_corners(o)) for o in objects3d]) / STRIDE
    np.testing.assert_allclose(corners[: len(SCENE)], expected, atol=1e-3)
    assert not targets["corner_offsets"][mask == 0].any()


def test_heading_fitted_to_perfect_corners_is_exact_even_with_a_wrong_orientation_head():
    # Every heading, the bin edges (0, +-pi/6, +-5pi/6, pi) included, for a car at a few places.
    headings = np.concatenate([np.linspace(-math.pi, math.pi, 25)[:-1], [math.pi / 6, -math.pi / 6, 5 * math.pi / 6]])
    for rotation_y in headings:
        scene = SCENE[:5].copy()
        scene[:, 6] = wrap_angle(torch.tensor(rotation_y + np.arange(5) * 0.1)).numpy()
        objects3d = objects3d_of(scene)
        targets = encode_scene_with_corners(scene)
        targets["orientation_bin"][:] = 0  # a head that says nothing right about the heading
        outputs = with_corner_maps(perfect_outputs(targets), targets)
        task = Mono3DTask(num_classes=3, centre="projected", keypoints="corners")
        dets = task.decode(outputs, ImageMeta(TO_ORIGINAL, torch.from_numpy(P2).float()[None]), k=20)
        found = matched(dets, projected_centres(objects3d, P2))
        assert angle_error(found["rotation_y"], scene[:, 6]).max() < math.radians(0.1)
        assert angle_error(found["alpha"], objects3d[:, 7]).max() < math.radians(0.1)
        np.testing.assert_allclose(found["location"], scene[:, 3:6], atol=2e-3)


def test_fit_rotation_y_with_noisy_corners_stays_near_the_truth():
    torch.manual_seed(0)
    dims = torch.tensor([[[1.5, 1.6, 3.9]]], dtype=torch.float64).expand(1, 50, 3)
    location = torch.stack([torch.linspace(-8, 8, 50), torch.full((50,), 1.65), torch.linspace(8, 40, 50)], -1)[None]
    heading = torch.linspace(-math.pi, math.pi, 51, dtype=torch.float64)[:50][None]
    calib = torch.from_numpy(P2)[None]
    corners = project_to_image(box_corners_batched(dims, location.double(), heading).reshape(1, -1, 3), calib)
    noisy = corners.reshape(1, 50, 8, 2) + 0.5 * torch.randn(1, 50, 8, 2, dtype=torch.float64)  # half a pixel
    fitted = fit_rotation_y(noisy, location.double(), dims, calib)
    error = angle_error(fitted[0].numpy(), heading[0].numpy())
    assert np.median(error) < math.radians(2) and error.max() < math.radians(15)


def test_corners_loss_and_export_columns():
    targets = encode_scene_with_corners(SCENE)
    task = Mono3DTask(num_classes=3, centre="projected", keypoints="corners")
    assert task.heads()["corners"] == 16
    outputs = with_corner_maps(perfect_outputs(targets), targets)
    batch = collate([targets])
    perfect = task.loss(outputs, batch)["corners_loss"]
    shifted = task.loss({**outputs, "corners": outputs["corners"] + 1.0}, batch)["corners_loss"]
    assert float(perfect) < 1e-5
    assert float(shifted) == pytest.approx(task.weights.corners * 1.0, rel=1e-3)  # 1 pixel on every coordinate
    dets = task.decode_maps(outputs, k=20)
    columns = torch.cat(task.export_columns(dets, stride=4), dim=-1)
    names = task.export_column_names()
    assert columns.shape[-1] == len(names) == 7 + 16 and names[7] == "corner0_x"
    read = task.read_export_columns(columns, stride=4)
    torch.testing.assert_close(read["corners"], dets["corners"])


# ---------------------------------------------------------------- heading from object crops


def test_crops_are_the_square_around_each_box_by_hand():
    images = torch.zeros(1, 3, 40, 60)
    images[0, :, 10:20, 30:50] = 1.0  # a 20 x 10 box
    crops = crop_objects(images, torch.tensor([[[30.0, 10.0, 50.0, 20.0], [0.0, 0.0, 4.0, 4.0]]]), size=8, margin=1.0)
    assert crops.shape == (2, 3, 8, 8)
    expected = torch.zeros(8, 8)
    expected[2:6] = 1.0  # side 20 -> 8 pixels: the box's 10 rows are the middle 4
    torch.testing.assert_close(crops[0, 0], expected)
    assert crops[1].abs().max() == 0  # a box on empty image
    # Outside the image is zero: a box at the corner keeps the image's quarter only.
    corner = crop_objects(torch.ones(1, 3, 16, 16), torch.tensor([[[-4.0, -4.0, 4.0, 4.0]]]), size=4, margin=1.0)
    torch.testing.assert_close(corner[0, 0], torch.tensor([[0.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]))


def test_alpha_from_crop_values_round_trips_every_angle():
    alpha = torch.cat([torch.linspace(-math.pi, math.pi, 361)[:-1], torch.tensor([math.pi / 2, -math.pi / 2, 0.0])])
    values = torch.stack([alpha.cos(), alpha.sin(), (2 * alpha).cos(), (2 * alpha).sin()], dim=-1)
    assert angle_error(alpha_from_crop_values(values).numpy(), alpha.numpy()).max() < 1e-5
    # A direction a little off still takes the axis' side: the axis decides the angle, the direction only its sign.
    off = values.clone()
    off[:, :2] = torch.stack([(alpha + 1.0).cos(), (alpha + 1.0).sin()], dim=-1)
    assert angle_error(alpha_from_crop_values(off).numpy(), alpha.numpy()).max() < 1e-5


def test_crop_orientation_task_targets_loss_and_decode():
    task = Mono3DTask(num_classes=3, orientation="crop")
    assert "orientation" not in task.heads() and isinstance(task.object_head(), CropNet)
    head = task.object_head()
    images, boxes = torch.rand(2, 3, 64, 96), torch.tensor([[[4.0, 4.0, 30.0, 20.0]] * 3] * 2)
    exact = head.eval()(images, boxes)
    assert exact.shape == (2, 3, 4) and torch.allclose(exact[:, 0], exact[:, 1])  # the same box, the same crop
    jittered = head.train()(images, boxes)  # training jitters each box on its own
    assert jittered.shape == (2, 3, 4) and not torch.allclose(jittered[:, 0], jittered[:, 1])
    objects3d = objects3d_of(SCENE)
    targets = task.encoder()(image_boxes(objects3d) / STRIDE, LABELS, objects3d, OUT_HW)
    n = len(SCENE)
    np.testing.assert_allclose(targets["alpha"][:n, 0], objects3d[:, 7], atol=1e-6)
    np.testing.assert_allclose(targets["object_boxes"][:n], image_boxes(objects3d) / STRIDE, atol=1e-4)
    assert "orientation_bin" not in targets and not targets["object_boxes"][n:].any()
    batch = collate([targets])
    boxes = task.object_boxes(batch)
    assert boxes.shape == (1, n, 4)  # the empty slots left out
    alpha = torch.from_numpy(objects3d[:, 7]).float()[None]
    perfect = torch.stack([alpha.cos(), alpha.sin(), (2 * alpha).cos(), (2 * alpha).sin()], dim=-1)  # (1, N, 4)
    outputs = perfect_outputs({**targets, "orientation_bin": np.zeros((50, 2), np.int64),
                               "orientation_residual": np.zeros((50, 2), np.float32)})
    del outputs["orientation"]
    assert float(task.loss({**outputs, "objects": perfect}, batch)["orientation_loss"]) < 1e-6
    wrong = float(task.loss({**outputs, "objects": -perfect}, batch)["orientation_loss"])
    assert wrong == pytest.approx(task.weights.orientation * 8, rel=1e-4)  # (2 x value)^2 summed: 4 (1 + 1)
    dets = task.decode_objects(task.decode_maps(outputs, k=20), torch.zeros(1, 20, 4))
    assert dets["alpha"].shape == (1, 20)


def test_training_pictures_write_each_objects_target_depth():
    """train_batch*.jpg of a 3D run: each object's target depth written at its centre."""
    from centernet.visualize import training_batch_grid

    task = Mono3DTask(num_classes=3)
    targets = {k: torch.as_tensor(v)[None] for k, v in encode_scene("box").items()}
    images = torch.zeros(1, 3, OUT_HW[0] * int(STRIDE), OUT_HW[1] * int(STRIDE))
    names = ["Car", "Pedestrian", "Cyclist"]
    grid = training_batch_grid(images, targets, (0.5,) * 3, (0.25,) * 3, names, task=task, max_width=10_000)
    plain = training_batch_grid(images, targets, (0.5,) * 3, (0.25,) * 3, names, max_width=10_000)
    changed = np.abs(grid.astype(int) - plain.astype(int)).sum(-1) > 0  # (H, W)
    mask = targets["mask"][0] > 0
    for at in targets["index"][0][mask].tolist():
        x, y = (at % OUT_HW[1]) * int(STRIDE), (at // OUT_HW[1]) * int(STRIDE)
        assert changed[max(y - 12, 0) : y, x : x + 30].sum() > 10, (x, y)  # its depth, written just above the centre
