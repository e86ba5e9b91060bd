"""Multi-person pose: targets, loss, decode with joint snapping, flip merge, OKS evaluation.

Shapes: B batch, J joints, N persons, h, w output size, K decoded persons.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from centernet.tasks import ImageMeta

import centernet
from centernet.tasks.pose.decode import JointSnapSettings, decode_poses, flip_merge_pose, flip_permutation
from centernet.errors import CenterNetError
from centernet.tasks.pose.metrics import (
    coco_keypoint_results_from_predictions, evaluate_coco_keypoints, per_joint_oks_ap,
)
from centernet.models.heads import is_heatmap_head
from centernet.tasks.pose import COCO_PERSON_FLIP_PAIRS, PoseTask, sampled_joint_offset_loss

# ---------------------------------------------------------------- helpers


def logit(probability: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.logit(torch.as_tensor(probability, dtype=torch.float32).clamp(1e-6, 1 - 1e-6))


def outputs_from_targets(targets: dict, num_joints: int, out_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
    """A perfect network (batch of 1): logits of both target heatmaps, regressions written where they are read."""
    h, w = out_hw
    maps = {name: torch.zeros(1, ch, h * w) for name, ch in
            (("size", 2), ("offset", 2), ("joint_offset", 2 * num_joints), ("joint_subpixel", 2))}
    for m in np.flatnonzero(targets["mask"]):
        at = int(targets["index"][m])
        maps["size"][0, :, at] = torch.from_numpy(targets["size"][m])
        maps["offset"][0, :, at] = torch.from_numpy(targets["offset"][m])
        maps["joint_offset"][0, :, at] = torch.from_numpy(targets["joint_offset"][m])
    for n in np.flatnonzero(targets["joint_mask"]):
        maps["joint_subpixel"][0, :, int(targets["joint_index"][n])] = torch.from_numpy(targets["joint_subpixel"][n])
    outputs = {name: value.view(1, -1, h, w) for name, value in maps.items()}
    outputs["heatmap"] = logit(targets["heatmap"])[None]
    outputs["joint_heatmap"] = logit(targets["joint_heatmap"])[None]
    return outputs


def random_people(num_people: int, num_joints: int, out_hw: tuple[int, int], seed: int):
    """Persons (boxes, keypoints, labels) in separate columns of the map.

    Joints lie inside their boxes at distinct integer pixels; some are unlabelled (v = 0).
    """
    rng = np.random.default_rng(seed)
    h, w = out_hw
    column = w / num_people
    boxes, keypoints, used = [], [], set()
    for n in range(num_people):
        x1, x2 = n * column + 1.3, (n + 1) * column - 1.6
        y1, y2 = 2.4 + n, h - 3.7
        joints = np.zeros((num_joints, 3), np.float32)
        for j in range(num_joints):
            while True:
                x, y = rng.uniform(x1 + 0.1, x2 - 0.1), rng.uniform(y1 + 0.1, y2 - 0.1)
                if (int(x), int(y)) not in used:
                    used.add((int(x), int(y)))
                    break
            joints[j] = x, y, rng.choice([1, 2])
        joints[rng.choice(num_joints, size=max(1, num_joints // 5), replace=False), 2] = 0  # unlabelled joints
        boxes.append([x1, y1, x2, y2])
        keypoints.append(joints)
    return np.array(boxes, np.float32), np.stack(keypoints), np.zeros(num_people, np.int64)


def encode_people(task: PoseTask, people: tuple, out_hw: tuple[int, int]) -> dict[str, np.ndarray]:
    boxes, keypoints, labels = people
    return task.encoder()(boxes, labels, keypoints, out_hw)


def assert_regressed_joints(outputs: dict[str, torch.Tensor], keypoints: np.ndarray) -> None:
    """The joints regressed from the centres of ``outputs`` (no snapping) are the labelled ``keypoints`` (N, J, 3),
    for persons side by side in columns."""
    regressed = decode_poses(outputs, k=len(keypoints), snap=JointSnapSettings(score_threshold=1.0))
    order = regressed["boxes"][0, :, 0].argsort()
    for n, joints in enumerate(keypoints):
        labelled = joints[:, 2] > 0
        found = regressed["keypoints"][0, order[n], :, :2].numpy()
        np.testing.assert_allclose(found[labelled], joints[labelled, :2], atol=1e-4)


def collate(samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(np.stack([s[name] for s in samples])) for name in samples[0]}


# ---------------------------------------------------------------- targets


def test_heads_name_both_heatmaps_for_the_prior():
    task = PoseTask(num_joints=5, num_classes=2)
    assert task.heads() == {"heatmap": 2, "size": 2, "offset": 2, "joint_offset": 10, "joint_heatmap": 5,
                            "joint_subpixel": 2}
    assert is_heatmap_head("joint_heatmap") and not is_heatmap_head("joint_offset")


def test_joint_targets_follow_the_original():
    encoder = PoseTask(num_joints=3, max_objects=4).encoder()
    boxes = np.array([[2.0, 3.0, 12.0, 15.0]], np.float32)  # centre (7, 9)
    keypoints = np.array([[[4.25, 5.5, 2], [9.75, 12.5, 1], [30.0, 5.0, 2]]], np.float32)  # joint 2 off the map
    t = encoder(boxes, np.array([0]), keypoints, (20, 16))
    assert t["index"][0] == 9 * 16 + 7 and t["mask"].tolist() == [1, 0, 0, 0]
    np.testing.assert_allclose(t["joint_offset"][0], [4.25 - 7, 5.5 - 9, 9.75 - 7, 12.5 - 9, 0, 0])
    assert t["joint_offset_mask"][0].tolist() == [1, 1, 1, 1, 0, 0]
    assert t["joint_mask"].tolist() == [1, 1, 0] + [0] * 9
    assert t["joint_index"][:2].tolist() == [5 * 16 + 4, 12 * 16 + 9]
    np.testing.assert_allclose(t["joint_subpixel"][:2], [[0.25, 0.5], [0.75, 0.5]])
    # Each joint's Gaussian sits in its own channel, peaks at its integer pixel and has the person's radius.
    assert t["joint_heatmap"][0, 5, 4] == 1 and t["joint_heatmap"][1, 12, 9] == 1 and t["joint_heatmap"][2].max() == 0
    person = t["heatmap"][0]
    assert np.array_equal(t["joint_heatmap"][0, 2:9, 1:8], person[6:13, 4:11])  # same patch, shifted


def test_persons_without_labelled_joints_become_ignore_regions():
    encoder = PoseTask(num_joints=4).encoder()
    boxes = np.array([[1.0, 1.0, 9.0, 13.0], [16.0, 2.0, 28.0, 14.0], [3.0, 20.0, 11.0, 30.0]], np.float32)
    keypoints = np.zeros((3, 4, 3), np.float32)
    keypoints[0, :, :2] = [[3, 4], [5, 6], [7, 8], [4, 10]]
    keypoints[0, 1, 2] = 1                    # one labelled (occluded) joint: a person
    keypoints[1, :, :2] = [[20, 5], [22, 6], [24, 8], [18, 10]]  # positions but v = 0: unlabelled
    keypoints[2, 0] = [50, 25, 2]             # labelled but off the map: still a person, as the original
    t = encoder(boxes, np.zeros(3, np.int64), keypoints, (32, 32))
    assert t["mask"].sum() == 2 and (t["heatmap"] == 1).sum() == 2
    assert t["heatmap"][0, 8, 22] < 1         # no positive centre for the unlabelled person
    assert t["ignore"][2:14, 16:28].all() and t["ignore"].sum() == 12 * 12
    assert t["joint_mask"].sum() == 1 and t["joint_offset_mask"].sum() == 2
    assert t["joint_heatmap"][:, :, 16:].max() == 0  # nothing drawn for the unlabelled one


def test_crowd_regions_and_unlabelled_persons_are_both_ignored():
    encoder = PoseTask(num_joints=2).encoder()
    boxes = np.array([[1.0, 1.0, 5.0, 5.0]], np.float32)
    t = encoder(boxes, np.zeros(1, np.int64), np.zeros((1, 2, 3), np.float32), (8, 8),
                ignore_boxes=np.array([[6.0, 6.0, 8.0, 8.0]]))
    assert t["mask"].sum() == 0 and t["ignore"].sum() == 16 + 4 and t["heatmap"].max() == 0


def test_empty_image():
    t = PoseTask(num_joints=17).encoder()(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 17, 3)), (8, 8))
    assert t["mask"].sum() == 0 and t["joint_heatmap"].shape == (17, 8, 8) and t["joint_index"].shape == (32 * 17,)


# ---------------------------------------------------------------- encode -> decode


@pytest.mark.parametrize("peak", ["score_distance", "nearest"])
@pytest.mark.parametrize("num_joints", [17, 5])
def test_encode_decode_round_trip(num_joints, peak):
    out_hw = (40, 48)
    boxes, keypoints, labels = random_people(3, num_joints, out_hw, seed=num_joints)
    task = PoseTask(num_joints=num_joints, snap=JointSnapSettings(peak=peak))
    targets = task.encoder()(boxes, labels, keypoints, out_hw)
    outputs = outputs_from_targets(targets, num_joints, out_hw)
    to_original = torch.tensor([[[4.0, 0.0, -3.0], [0.0, 4.0, 5.0]]])
    dets = task.decode(outputs, ImageMeta(to_original), k=10)
    assert dets["keypoints"].shape == (1, 10, num_joints, 3)
    top = dets["scores"][0] > 0.99
    assert top.sum() == 3
    found_boxes = dets["boxes"][0][top].numpy()
    found_joints = dets["keypoints"][0][top].numpy()
    for box, joints in zip(boxes, keypoints):
        expected_box = box * 4 + np.array([-3, 5, -3, 5])
        n = np.abs(found_boxes - expected_box).max(1).argmin()
        np.testing.assert_allclose(found_boxes[n], expected_box, atol=1e-3)
        labelled = joints[:, 2] > 0
        np.testing.assert_allclose(found_joints[n, labelled, :2], joints[labelled, :2] * 4 + [-3, 5], atol=1e-3)
        assert (found_joints[n, labelled, 2] > 0.99).all()  # snapped onto its own peak: the peak's score


def test_decode_is_batched():
    out_hw = (24, 24)
    task = PoseTask(num_joints=5)
    outputs = [outputs_from_targets(encode_people(task, random_people(2, 5, out_hw, seed=s), out_hw), 5, out_hw)
               for s in (1, 2)]
    batched = {name: torch.cat([o[name] for o in outputs]) for name in outputs[0]}
    together = decode_poses(batched, k=6)
    for i, single in enumerate(decode_poses(o, k=6) for o in outputs):
        for name in together:
            assert torch.allclose(together[name][i], single[name][0])


# ---------------------------------------------------------------- the snap rule


def one_person_outputs(peaks: list[tuple[int, int, float]], regressed_dx: float = 2.0) -> dict[str, torch.Tensor]:
    """A 32x32 map, one person at (16, 16) with a 10x10 box [11, 21]^2, one joint regressed at (16 + dx, 16).

    ``peaks``: (x, y, probability) of the joint heatmap's peaks; their sub-pixel offset is (0.25, 0.5).
    """
    h = w = 32
    heatmap = torch.full((1, 1, h, w), -10.0)
    heatmap[0, 0, 16, 16] = 5.0
    joint_heatmap = torch.full((1, 1, h, w), -10.0)
    for x, y, p in peaks:
        joint_heatmap[0, 0, y, x] = logit(p)
    joint_offset = torch.zeros(1, 2, h, w)
    joint_offset[0, 0] = regressed_dx
    subpixel = torch.zeros(1, 2, h, w)
    subpixel[0, 0], subpixel[0, 1] = 0.25, 0.5
    return {"heatmap": heatmap, "size": torch.full((1, 2, h, w), 10.0), "offset": torch.zeros(1, 2, h, w),
            "joint_offset": joint_offset, "joint_heatmap": joint_heatmap, "joint_subpixel": subpixel}


@pytest.mark.parametrize(
    "peaks, dx, snapped_to, score",
    [
        ([(19, 16, 0.9)], 2.0, (19.25, 16.5), 0.9),             # inside the box, 1.3 away: snaps, scores its peak
        ([(19, 16, 0.9), (17, 25, 0.95)], 2.0, (19.25, 16.5), 0.9),  # the nearest counting peak wins
        ([(22, 16, 0.9)], 4.5, None, None),                    # 1.8 away but outside the box (x2 = 21)
        ([(12, 16, 0.9)], 2.0, None, None),                    # inside the box but 5.8 > 0.3 * 10 away
        ([(19, 16, 0.08)], 2.0, None, None),                   # below 0.1
        ([(19, 16, 0.08), (13, 17, 0.5)], 2.0, None, None),    # the only counting peak is too far
        ([(22, 16, 0.9), (18, 19, 0.9)], 4.5, None, None),     # nearest is outside: kept, as the original
    ],
)
def test_nearest_peak_rule(peaks, dx, snapped_to, score):
    dets = decode_poses(one_person_outputs(peaks, dx), k=5, snap=JointSnapSettings(peak="nearest"))  # top-5 peaks
    assert torch.allclose(dets["boxes"][0, 0], torch.tensor([11.0, 11.0, 21.0, 21.0]))
    x, y, s = dets["keypoints"][0, 0, 0].tolist()
    if snapped_to is None:  # the regressed position, scored by the heatmap at its pixel
        assert (x, y) == pytest.approx((16 + dx, 16.0))
        assert s == pytest.approx(torch.sigmoid(torch.tensor(-10.0)).item(), rel=1e-4)
    else:
        assert (x, y) == pytest.approx(snapped_to) and s == pytest.approx(score, rel=1e-4)


@pytest.mark.parametrize(
    "peaks, dx, snapped_to, score",
    [
        ([(19, 16, 0.9)], 2.0, (19.25, 16.5), 0.9),                  # one clean peak: as the nearest rule
        ([(18, 16, 0.15), (19, 18, 0.9)], 2.0, (19.25, 18.5), 0.9),  # a strong peak 2.8 away beats a weak one 0.6 away
        ([(18, 16, 0.5), (19, 18, 0.55)], 2.0, (18.25, 16.5), 0.5),  # of two alike, the nearer
        ([(22, 16, 0.9), (19, 18, 0.9)], 4.5, (19.25, 18.5), 0.9),   # nearest outside the box: the next inside it
        ([(12, 16, 0.9)], 2.0, None, None),                          # no peak in reach: regressed, low score
        ([(19, 17, 0.08)], 2.0, None, None),                         # below 0.1: not a peak
    ],
)
def test_score_distance_peak_rule(peaks, dx, snapped_to, score):
    dets = decode_poses(one_person_outputs(peaks, dx), k=5)  # the default rule
    x, y, s = dets["keypoints"][0, 0, 0].tolist()
    if snapped_to is None:
        assert (x, y) == pytest.approx((16 + dx, 16.0))
        assert s == pytest.approx(torch.sigmoid(torch.tensor(-10.0)).item(), rel=1e-4)
    else:
        assert (x, y) == pytest.approx(snapped_to) and s == pytest.approx(score, rel=1e-4)


def test_the_rules_differ_only_where_a_weak_peak_is_nearer():
    weak_near = one_person_outputs([(18, 16, 0.15), (19, 18, 0.9)])
    nearest = decode_poses(weak_near, k=5, snap=JointSnapSettings(peak="nearest"))["keypoints"][0, 0, 0]
    assert nearest.tolist() == pytest.approx([18.25, 16.5, 0.15], rel=1e-4)
    with pytest.raises(ValueError, match="peak"):
        JointSnapSettings(peak="closest")


class FixedMaps(torch.nn.Module):
    """A 'model' that returns the same output maps for any image batch."""

    def __init__(self, maps: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.names = list(maps)
        for name, value in maps.items():
            self.register_buffer(name, value)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        zero = x.mean() * 0  # keeps the input in the traced graph
        return {name: getattr(self, name).expand(x.shape[0], -1, -1, -1) + zero for name in self.names}


@pytest.mark.parametrize("peak, joint", [("score_distance", (19.25, 18.5)), ("nearest", (18.25, 16.5))])
def test_exported_rows_follow_the_tasks_peak_rule(tmp_path, peak, joint):
    from centernet.export import _quiet_tracing, export_module

    onnxruntime = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    maps = one_person_outputs([(18, 16, 0.15), (19, 18, 0.9)])  # a weak peak near, a strong one in reach
    task = PoseTask(num_joints=1, snap=JointSnapSettings(peak=peak))
    # K = 5 persons, so 5 peaks per joint channel (one would leave the rules nothing to choose from).
    module = export_module(FixedMaps(maps), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), max_detections=5, task=task)
    images = torch.zeros(1, 3, 128, 128)
    rows = module(images)  # (1, 5, 6 + 3): box, score, class, then the joint in input pixels (stride 4)
    assert rows[0, 0, 6:8].tolist() == pytest.approx([4 * joint[0], 4 * joint[1]])
    path = tmp_path / "pose.onnx"
    with _quiet_tracing():
        torch.onnx.export(module, (images,), str(path), input_names=["images"], output_names=["rows"], dynamo=False)
    (onnx_rows,) = onnxruntime.InferenceSession(str(path)).run(None, {"images": images.numpy()})
    np.testing.assert_allclose(onnx_rows[:, 0], rows[:, 0].detach().numpy(), atol=1e-4)  # the rest tie at the prior


def test_regressed_joint_off_the_map_scores_zero():
    dets = decode_poses(one_person_outputs([], regressed_dx=20.0), k=1)
    assert dets["keypoints"][0, 0, 0].tolist() == pytest.approx([36.0, 16.0, 0.0])


def test_snap_settings_are_settings():
    dets = decode_poses(one_person_outputs([(12, 16, 0.9)]), k=1, snap=JointSnapSettings(max_distance=0.6))
    assert dets["keypoints"][0, 0, 0, :2].tolist() == pytest.approx([12.25, 16.5])


# ---------------------------------------------------------------- flip


def test_flip_permutation_accepts_pairs_or_a_permutation():
    assert flip_permutation([[1, 2], [3, 4]], 5) == [0, 2, 1, 4, 3]
    assert flip_permutation([0, 2, 1, 4, 3], 5) == [0, 2, 1, 4, 3]
    assert flip_permutation(None, 3) == [0, 1, 2]
    assert flip_permutation(COCO_PERSON_FLIP_PAIRS, 17)[:5] == [0, 2, 1, 4, 3]
    with pytest.raises(ValueError):
        flip_permutation([0, 0, 1], 3)
    with pytest.raises(ValueError):
        PoseTask(num_joints=3, flip_idx=[[1, 3]])


def mirrored(boxes, keypoints, width, perm):
    """The persons of the horizontally mirrored map (x -> width - x), joints renamed left <-> right."""
    mirror_boxes = boxes.copy()
    mirror_boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    mirror_keypoints = keypoints.copy()
    mirror_keypoints[:, :, 0] = width - keypoints[:, :, 0]
    return mirror_boxes, mirror_keypoints[:, np.argsort(perm)]


def flip_pair_outputs(boxes, keypoints, task, out_hw):
    """Perfect outputs for a map and for its mirror, as a model gives them for flip_images(x): (2, ch, h, w)."""
    perm = flip_permutation(task.flip_idx, task.num_joints)
    labels = np.zeros(len(boxes), np.int64)
    encode = task.encoder()
    first = outputs_from_targets(encode(boxes, labels, keypoints, out_hw), task.num_joints, out_hw)
    mirror_boxes, mirror_keypoints = mirrored(boxes, keypoints, out_hw[1], perm)
    second = outputs_from_targets(encode(mirror_boxes, labels, mirror_keypoints, out_hw), task.num_joints, out_hw)
    return first, {name: torch.cat([first[name], second[name]]) for name in first}


def test_flip_merge_of_a_symmetric_figure_decodes_to_the_same_joints():
    # nose on the axis; eyes and wrists mirror each other about x = 12.3 (not a pixel boundary)
    out_hw = (24, 32)
    task = PoseTask(num_joints=5, flip_idx=[[1, 2], [3, 4]])
    boxes = np.array([[6.3, 3.4, 18.3, 21.6]], np.float32)
    keypoints = np.array([[[12.3, 6.6, 2], [10.1, 5.2, 2], [14.5, 5.2, 2], [7.7, 15.4, 1], [16.9, 15.4, 2]]],
                         np.float32)
    first, both = flip_pair_outputs(boxes, keypoints, task, out_hw)
    merged = task.flip_merge(both)
    assert set(merged) == set(first) and all(merged[n].shape == first[n].shape for n in first)
    plain, flipped = decode_poses(first, k=3), decode_poses(merged, k=3)
    assert flipped["scores"][0, 0] > 0.99
    for name in ("boxes", "keypoints"):
        assert torch.allclose(flipped[name][0, 0], plain[name][0, 0], atol=1e-4)
    np.testing.assert_allclose(flipped["keypoints"][0, 0, :, :2].numpy(), keypoints[0, :, :2], atol=1e-4)
    # Without the left/right swap the merged eye and wrist offsets are the average of left and right.
    centre = int(plain["boxes"][0, 0, 1:4:2].mean()) * out_hw[1] + int(plain["boxes"][0, 0, 0:3:2].mean())
    wrong = flip_merge_pose(both, None)["joint_offset"].flatten(2)[0, :, centre].view(5, 2)
    right = merged["joint_offset"].flatten(2)[0, :, centre].view(5, 2)
    assert torch.allclose(right, first["joint_offset"].flatten(2)[0, :, centre].view(5, 2), atol=1e-5)
    assert (wrong[1:, 0] - right[1:, 0]).abs().min() > 1.0


def test_flip_merge_recovers_any_figure_exactly():
    out_hw = (32, 40)
    task = PoseTask(num_joints=17, flip_idx=COCO_PERSON_FLIP_PAIRS)
    boxes, keypoints, _ = random_people(2, 17, out_hw, seed=7)
    first, both = flip_pair_outputs(boxes, keypoints, task, out_hw)
    merged = task.flip_merge(both)
    for name in ("heatmap", "joint_heatmap"):
        assert torch.allclose(torch.sigmoid(merged[name]), torch.sigmoid(first[name]), atol=1e-5)
    centres = first["heatmap"].flatten(1).max(0).values > logit(0.99)  # (h*w,) where the regressions are read
    assert centres.sum() == 2
    for name in ("size", "offset"):
        assert torch.allclose(merged[name].flatten(2)[..., centres], first[name].flatten(2)[..., centres], atol=1e-5)
    assert torch.equal(merged["joint_subpixel"], first["joint_subpixel"])
    # The regressed joints alone (no snapping) come back exactly: x offsets merge as 1 - x, not -x.
    assert_regressed_joints(merged, keypoints)


# ---------------------------------------------------------------- loss


def test_loss_has_every_part_and_reaches_every_head():
    torch.manual_seed(0)
    task = PoseTask(num_joints=5, flip_idx=[[1, 2], [3, 4]])
    model = centernet.create_model("resnet18", heads=task.heads())
    out_hw = (16, 16)
    targets = collate([encode_people(task, random_people(2, 5, out_hw, seed=s), out_hw) for s in (3, 4)])
    outputs = model(torch.randn(2, 3, 64, 64))
    losses = task.loss(outputs, targets)
    expected = {"loss", "heatmap_loss", "size_loss", "offset_loss", "joint_offset_loss", "joint_heatmap_loss",
                "joint_subpixel_loss"}
    assert set(losses) == expected and all(torch.isfinite(v) and v > 0 for v in losses.values())
    assert losses["loss"].item() == pytest.approx(sum(v.item() for n, v in losses.items() if n != "loss"), rel=1e-5)
    losses["loss"].backward()
    for name, head in model.heads.items():
        grads = [p.grad for p in head.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), name
    stacked = task.loss([outputs, outputs], targets)
    assert stacked["loss"].item() == pytest.approx(losses["loss"].item(), rel=1e-5)


def test_loss_of_a_perfect_network_is_small():
    out_hw = (24, 24)
    task = PoseTask(num_joints=5)
    t = encode_people(task, random_people(2, 5, out_hw, seed=5), out_hw)
    outputs = outputs_from_targets(t, 5, out_hw)
    losses = task.loss(outputs, collate([t]))
    for name in ("size_loss", "offset_loss", "joint_offset_loss", "joint_subpixel_loss"):
        assert losses[name].item() < 1e-5, name


# ---------------------------------------------------------------- OKS evaluation


def keypoint_ground_truth(num_joints: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    images = [{"id": i, "width": 640, "height": 480, "file_name": f"{i}.jpg"} for i in (1, 2)]
    annotations = []
    for image_id, (x, y, w, h) in [(1, (50, 40, 80, 150)), (1, (300, 60, 120, 300)), (2, (100, 100, 60, 90))]:
        joints = np.stack([rng.uniform(x, x + w, num_joints), rng.uniform(y, y + h, num_joints),
                           rng.choice([1, 2], num_joints)], 1)
        joints[0] = 0  # one unlabelled joint
        annotations.append({"image_id": image_id, "category_id": 1, "bbox": [x, y, w, h], "area": w * h * 0.6,
                            "keypoints": joints.reshape(-1).tolist()})
    # a person with no labelled joint and a crowd: both ignored by pycocotools
    annotations.append({"image_id": 2, "category_id": 1, "bbox": [300, 300, 50, 50], "keypoints": [0] * 3 * num_joints})
    annotations.append({"image_id": 2, "category_id": 1, "bbox": [400, 10, 90, 90], "iscrowd": 1,
                        "keypoints": [0] * 3 * num_joints, "num_keypoints": 0})
    for n, ann in enumerate(annotations, start=1):
        ann["id"] = n
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}


def predictions_from_ground_truth(gt: dict, num_joints: int, shift: float = 0.0) -> tuple[list[dict], list[int]]:
    """Per-image decoded-style predictions (numpy) holding the labelled ground-truth persons."""
    predictions, image_ids = [], []
    for image in gt["images"]:
        anns = [a for a in gt["annotations"] if a["image_id"] == image["id"] and not a.get("iscrowd")
                and any(v > 0 for v in a["keypoints"][2::3])]
        keypoints = np.array([a["keypoints"] for a in anns], np.float64).reshape(-1, num_joints, 3)
        keypoints[..., 0] += shift
        keypoints[..., 2] = 0.8
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]).reshape(-1, 4)
        predictions.append({"keypoints": keypoints, "scores": np.linspace(0.9, 0.5, len(anns)), "boxes": boxes})
        image_ids.append(image["id"])
    return predictions, image_ids


@pytest.mark.parametrize("num_joints, sigmas", [(17, None), (5, [0.05, 0.08, 0.08, 0.1, 0.1])])
def test_ground_truth_as_predictions_scores_one(num_joints, sigmas):
    gt = keypoint_ground_truth(num_joints)
    predictions, image_ids = predictions_from_ground_truth(gt, num_joints)
    results = coco_keypoint_results_from_predictions(predictions, image_ids)
    assert len(results) == 3 and len(results[0]["keypoints"]) == 3 * num_joints and results[0]["category_id"] == 1
    metrics = evaluate_coco_keypoints(gt, results, sigmas)
    assert set(metrics) == {"kp_map", "kp_map50", "kp_map75", "kp_map_medium", "kp_map_large"}
    for name in ("kp_map", "kp_map50", "kp_map75", "kp_map_medium", "kp_map_large"):
        assert metrics[name] == pytest.approx(1.0), name
    shifted = coco_keypoint_results_from_predictions(*predictions_from_ground_truth(gt, num_joints, shift=6.0))
    assert evaluate_coco_keypoints(gt, shifted, sigmas)["kp_map"] < 0.9
    assert evaluate_coco_keypoints(gt, [], sigmas)["kp_map"] == 0.0


def test_per_joint_oks_ap_finds_the_one_joint_that_is_off(tmp_path):
    """Ground truth given back: every labelled joint scores 1 (joint 0, never labelled, NaN). Joint 2 moved 40 px
    in every person: its AP alone falls to 0, the others stay 1. The bar chart is written."""
    from centernet.tasks.pose.draw import plot_joint_ap

    sigmas = [0.05, 0.08, 0.08, 0.1, 0.1]
    gt = keypoint_ground_truth(5)
    predictions, image_ids = predictions_from_ground_truth(gt, 5)
    aps = per_joint_oks_ap(gt, coco_keypoint_results_from_predictions(predictions, image_ids), sigmas)
    assert np.isnan(aps[0])
    np.testing.assert_allclose(aps[1:], 1.0)
    for prediction in predictions:
        prediction["keypoints"][:, 2, 0] += 40.0
    aps = per_joint_oks_ap(gt, coco_keypoint_results_from_predictions(predictions, image_ids), sigmas)
    assert aps[2] == pytest.approx(0.0)
    np.testing.assert_allclose(aps[[1, 3, 4]], 1.0)
    image = cv2.imread(str(plot_joint_ap([f"j{j}" for j in range(5)], aps, tmp_path / "joint_ap.png")))
    assert image is not None and image.shape[0] == 400


def test_keypoint_evaluation_needs_sigmas_beyond_coco():
    gt = keypoint_ground_truth(5)
    with pytest.raises(CenterNetError, match="sigma"):
        evaluate_coco_keypoints(gt, [])
    with pytest.raises(CenterNetError, match="5 positive"):
        evaluate_coco_keypoints(gt, [], sigmas=[0.1] * 4)
    bad = [{"image_id": 1, "category_id": 1, "keypoints": [1.0] * 6, "score": 1.0}]
    with pytest.raises(CenterNetError, match="15"):
        evaluate_coco_keypoints(gt, bad, sigmas=[0.1] * 5)


# ---------------------------------------------------------------- joint offsets learnt over the Gaussian


def gaussian_offset_outputs(targets: dict, num_joints: int, out_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
    """A perfect network for ``joint_offsets_at="gaussian"``: at each pixel of a person's Gaussian (the person
    whose Gaussian is highest there) the joint offsets hold each joint minus that pixel."""
    h, w = out_hw
    outputs = outputs_from_targets(targets, num_joints, out_hw)
    joint_offset = outputs["joint_offset"].view(2 * num_joints, h, w)
    best = torch.zeros(h, w)
    for m in np.flatnonzero(targets["mask"]):
        cy, cx = divmod(int(targets["index"][m]), w)
        r = int(targets["person_radius"][m])
        sigma = (2 * r + 1) / 6
        for y in range(max(0, cy - r), min(h, cy + r + 1)):
            for x in range(max(0, cx - r), min(w, cx + r + 1)):
                value = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma * sigma))
                if value > best[y, x]:
                    best[y, x] = value
                    to_centre = torch.tensor([cx - x, cy - y], dtype=torch.float32).repeat(num_joints)
                    joint_offset[:, y, x] = torch.from_numpy(targets["joint_offset"][m]) + to_centre
    return outputs


@pytest.mark.parametrize("num_joints", [17, 5])
def test_gaussian_joint_offsets_round_trip_even_a_pixel_off_the_centre(num_joints):
    out_hw = (40, 48)
    boxes, keypoints, labels = random_people(3, num_joints, out_hw, seed=num_joints)
    task = PoseTask(num_joints=num_joints, joint_offsets_at="gaussian")
    targets = task.encoder()(boxes, labels, keypoints, out_hw)
    assert (targets["person_radius"][targets["mask"] > 0] >= 1).all()
    outputs = gaussian_offset_outputs(targets, num_joints, out_hw)
    assert task.loss(outputs, collate([targets]))["joint_offset_loss"].item() < 1e-5
    # Move each person's peak one pixel right: the regressed joints (no snapping) stay where they are.
    heatmap = outputs["heatmap"].view(-1)
    for m in np.flatnonzero(targets["mask"]):
        heatmap[int(targets["index"][m]) + 1] = 20.0
    regressed = decode_poses(outputs, k=3, snap=JointSnapSettings(score_threshold=1.0))["keypoints"][0]
    for joints in keypoints:
        labelled = joints[:, 2] > 0
        error = np.abs(regressed[:, labelled, :2].numpy() - joints[None, labelled, :2]).max(axis=(1, 2))
        assert error.min() < 1e-4
    # The paper's centre-only loss sees none of this: it reads the centre alone.
    centre_only = PoseTask(num_joints=num_joints).loss(outputs, collate([targets]))["joint_offset_loss"]
    assert centre_only.item() < 1e-5


def test_gaussian_joint_offsets_merge_under_flip():
    out_hw = (32, 40)
    task = PoseTask(num_joints=17, flip_idx=COCO_PERSON_FLIP_PAIRS, joint_offsets_at="gaussian")
    boxes, keypoints, labels = random_people(2, 17, out_hw, seed=11)
    perm = flip_permutation(task.flip_idx, 17)
    first = gaussian_offset_outputs(task.encoder()(boxes, labels, keypoints, out_hw), 17, out_hw)
    mirror_boxes, mirror_keypoints = mirrored(boxes, keypoints, out_hw[1], perm)
    second = gaussian_offset_outputs(task.encoder()(mirror_boxes, labels, mirror_keypoints, out_hw), 17, out_hw)
    merged = task.flip_merge({name: torch.cat([first[name], second[name]]) for name in first})
    assert_regressed_joints(merged, keypoints)


def test_joint_offset_loss_at_centres_is_the_mean_over_labelled_coordinates():
    out_hw = (24, 24)
    targets = collate([encode_people(PoseTask(num_joints=5), random_people(2, 5, out_hw, seed=3), out_hw)])
    prediction = torch.randn(1, 10, *out_hw)
    errors = []
    for m in np.flatnonzero(targets["mask"][0].numpy()):
        y, x = divmod(int(targets["index"][0, m]), out_hw[1])
        labelled = targets["joint_offset_mask"][0, m] > 0
        errors += (prediction[0, :, y, x] - targets["joint_offset"][0, m]).abs()[labelled].tolist()
    assert len(errors) == 2 * 2 * 4  # two persons, four labelled joints each, x and y
    loss = sampled_joint_offset_loss(prediction, targets, gaussian=False)
    assert loss.item() == pytest.approx(np.mean(errors), rel=1e-4)
    with pytest.raises(ValueError, match="joint_offsets_at"):
        PoseTask(num_joints=5, joint_offsets_at="everywhere")


def test_training_pictures_draw_each_labelled_joint_where_the_targets_put_it():
    """train_batch*.jpg: a person's joints, read back from its centre and joint offsets, drawn at 4x the output
    pixels; an unlabelled joint is not drawn."""
    from centernet.visualize import training_batch_grid

    task = PoseTask(num_joints=3)
    boxes = np.array([[4.0, 4.0, 28.0, 36.0]])  # output pixels
    keypoints = np.array([[[8.0, 8.0, 2], [20.0, 30.0, 2], [25.0, 10.0, 0]]])
    targets = {k: torch.as_tensor(v)[None] for k, v in task.encoder()(boxes, np.array([0]), keypoints, (40, 32)).items()}
    images = torch.zeros(1, 3, 160, 128)
    grid = training_batch_grid(images, targets, (0.5,) * 3, (0.25,) * 3, ["person"], task=task)
    plain = training_batch_grid(images, targets, (0.5,) * 3, (0.25,) * 3, ["person"])
    changed = np.abs(grid.astype(int) - plain.astype(int)).sum(-1) > 0
    for x, y in ((32, 32), (80, 120)):  # the two labelled joints, in input pixels
        assert changed[y - 1 : y + 2, x - 1 : x + 2].all(), (x, y)
    assert not changed[38:43, 98:103].any()  # the unlabelled joint at (100, 40)
