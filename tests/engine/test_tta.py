"""Test-time augmentation: flip merging, Gaussian soft-NMS and multi-scale merging."""

from __future__ import annotations

import math

import pytest
import torch

from centernet.tasks.detection.decode import decode_detections
from centernet.engine.tta import flip_images, merge_detections, merge_flip, soft_nms_gaussian
from centernet.ops.boxes import box_iou


def logits_of(probability: list | torch.Tensor) -> torch.Tensor:
    return torch.logit(torch.as_tensor(probability, dtype=torch.float32))


# ---------------------------------------------------------------- flip


def test_flip_images_is_batch_then_mirror():
    images = torch.arange(2 * 3 * 2 * 4, dtype=torch.float32).reshape(2, 3, 2, 4)  # (B, 3, H, W)
    flipped = flip_images(images)
    assert flipped.shape == (4, 3, 2, 4)
    assert torch.equal(flipped[:2], images)
    assert flipped[2, 0, 0].tolist() == [3.0, 2.0, 1.0, 0.0]
    assert flipped[3, 1, 1].tolist() == images[1, 1, 1].flip(0).tolist()


def test_merge_flip_keeps_a_symmetric_heatmap():
    probability = torch.tensor([[[[0.1, 0.7, 0.3, 0.7, 0.1]], [[0.05, 0.2, 0.9, 0.2, 0.05]]]])  # (1, 2, 1, 5)
    heatmap = logits_of(probability).repeat(2, 1, 1, 1)  # the mirror of a symmetric map is the same map
    size = torch.ones(2, 2, 1, 5)
    merged = merge_flip({"heatmap": heatmap, "size": size, "offset": torch.zeros(2, 2, 1, 5)})
    assert merged["heatmap"].shape == (1, 2, 1, 5)
    torch.testing.assert_close(torch.sigmoid(merged["heatmap"]), probability, atol=1e-6, rtol=0)


def test_merge_flip_averages_heatmap_as_probabilities_and_size_flipped_back():
    first = [[[[0.2, 0.4, 0.6]]]]      # (1, 1, 1, 3) on the image
    mirrored = [[[[0.1, 0.3, 0.9]]]]   # on the mirror: flipped back it reads 0.9, 0.3, 0.1
    heatmap = torch.cat([logits_of(first), logits_of(mirrored)])  # (2, 1, 1, 3)
    size = torch.tensor([[[[2.0, 4.0, 6.0]]], [[[1.0, 3.0, 9.0]]]])  # (2, 1, 1, 3)
    offset = torch.stack([torch.full((2, 1, 3), 0.25), torch.full((2, 1, 3), 0.75)])  # (2, 2, 1, 3)
    depth = torch.tensor([[[[1.0, 2.0, 3.0]]], [[[7.0, 8.0, 9.0]]]])  # a head not averaged

    merged = merge_flip({"heatmap": heatmap, "size": size, "offset": offset, "depth": depth})

    torch.testing.assert_close(torch.sigmoid(merged["heatmap"]), torch.tensor([[[[0.55, 0.35, 0.35]]]]))
    torch.testing.assert_close(merged["size"], torch.tensor([[[[5.5, 3.5, 3.5]]]]))
    assert torch.equal(merged["offset"], torch.full((1, 2, 1, 3), 0.25))
    assert torch.equal(merged["depth"], torch.tensor([[[[1.0, 2.0, 3.0]]]]))


def test_merge_flip_clamps_saturated_probabilities_to_finite_logits():
    heatmap = torch.tensor([[[[50.0, -50.0]]], [[[-50.0, 50.0]]]])  # p = 1 then 0 on both halves (after flip)
    merged = merge_flip({"heatmap": heatmap, "size": torch.zeros(2, 2, 1, 2)})
    assert torch.isfinite(merged["heatmap"]).all()
    torch.testing.assert_close(merged["heatmap"], logits_of([[[[1 - 1e-6, 1e-6]]]]))


def test_merge_flip_custom_average_and_errors():
    maps = {"heatmap": torch.zeros(2, 1, 1, 2), "size": torch.tensor([[[[1.0, 2.0]]], [[[4.0, 8.0]]]])}
    assert torch.equal(merge_flip(maps, average=("heatmap",))["size"], torch.tensor([[[[1.0, 2.0]]]]))
    with pytest.raises(ValueError, match="offset"):
        merge_flip(maps, average=("heatmap", "offset"))
    with pytest.raises(ValueError, match="odd batch"):
        merge_flip({"heatmap": torch.zeros(3, 1, 1, 2), "size": torch.zeros(3, 2, 1, 2)})


def _outputs_for(objects: list[list[tuple[int, float, float, float, float]]], num_classes: int, h: int, w: int):
    """Heatmap logits, size and offset maps (B, ., h, w) for objects (class, cx, cy, width, height) per image.

    Background logits fall along a ramp so every value is distinct (no tied peaks); each object
    has a Gaussian blob at its centre pixel, the sub-pixel offset and its size there.
    """
    b = len(objects)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    probability = torch.sigmoid(-6.0 - 0.01 * (xs + w * ys)).expand(b, num_classes, h, w).clone()
    generator = torch.Generator().manual_seed(0)
    size = torch.rand(b, 2, h, w, generator=generator) * 10 + 1     # junk away from centres
    offset = torch.rand(b, 2, h, w, generator=generator) * 0.8 + 0.1
    for i, image_objects in enumerate(objects):
        for label, cx, cy, width, height in image_objects:
            px, py = int(cx), int(cy)
            blob = 0.9 * torch.exp(-((xs - px) ** 2 + (ys - py) ** 2) / 2)  # (h, w)
            probability[i, label] = torch.maximum(probability[i, label], blob)
            size[i, :, py, px] = torch.tensor([width, height])
            offset[i, :, py, px] = torch.tensor([cx - px, cy - py])
    return {"heatmap": torch.logit(probability), "size": size, "offset": offset}


def _mirror_outputs(outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What a perfect model gives on the mirrored image.

    A centre at i + dx mirrors to (w - 1 - i) + (1 - dx): the offset's x becomes 1 - dx.
    """
    offset = outputs["offset"].flip(-1)
    return {
        "heatmap": outputs["heatmap"].flip(-1),
        "size": outputs["size"].flip(-1),
        "offset": torch.stack([1 - offset[:, 0], offset[:, 1]], dim=1),
    }


def _boxes_of(detections: dict[str, torch.Tensor], image: int, min_score: float = 0.1) -> list[tuple]:
    confident = detections["scores"][image] > min_score
    return list(zip(detections["labels"][image][confident].tolist(), detections["boxes"][image][confident].tolist()))


def test_merge_flip_of_an_exact_mirror_decodes_to_the_unflipped_boxes():
    h = w = 16
    objects = [
        [(0, 3.3, 5.6, 4.0, 6.0), (1, 10.7, 9.2, 5.0, 3.0)],
        [(1, 12.25, 2.5, 3.0, 3.0)],
    ]
    outputs = _outputs_for(objects, num_classes=2, h=h, w=w)
    mirrored = _mirror_outputs(outputs)

    # The mirror is built right: decoded alone, it gives the mirrored boxes.
    plain = decode_detections(outputs, k=4)
    alone = decode_detections(mirrored, k=4)
    for image in range(2):
        for (label, box), (label_m, box_m) in zip(_boxes_of(plain, image), _boxes_of(alone, image)):
            assert label == label_m
            assert box_m == pytest.approx([w - box[2], box[1], w - box[0], box[3]], abs=1e-5)

    batch = {name: torch.cat([outputs[name], mirrored[name]]) for name in outputs}  # (2B, ., h, w)
    merged = decode_detections(merge_flip(batch), k=4)

    expected = [
        [(label, [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]) for label, cx, cy, bw, bh in image_objects]
        for image_objects in objects
    ]
    for image in range(2):
        assert [label for label, _ in _boxes_of(merged, image)] == [label for label, _ in _boxes_of(plain, image)]
        for (_, box), (_, box_plain) in zip(_boxes_of(merged, image), _boxes_of(plain, image)):
            assert box == pytest.approx(box_plain, abs=1e-5)
        found = sorted(_boxes_of(merged, image))
        assert [label for label, _ in found] == [label for label, _ in sorted(expected[image])]
        for (_, box), (_, box_expected) in zip(found, sorted(expected[image])):
            assert box == pytest.approx(box_expected, abs=1e-5)
    torch.testing.assert_close(merged["scores"], plain["scores"], atol=1e-5, rtol=0)
    assert torch.equal(merged["labels"], plain["labels"])


# ---------------------------------------------------------------- soft-NMS


def test_box_iou_hand_computed():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 4.0, 6.0]])  # the second is inverted (x2 < x1)
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [2.0, 0.0, 4.0, 2.0]])
    expected = torch.tensor([[1 / 7, 1.0, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(box_iou(a, b), expected)
    assert box_iou(torch.zeros(0, 4), b).shape == (0, 3)


def _iou(a: list[float], b: list[float]) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def reference_soft_nms(boxes, scores, labels, sigma, threshold) -> dict[int, float]:
    """Plain per-class loop: {kept index: new score}."""
    kept: dict[int, float] = {}
    for label in sorted(set(labels)):
        remaining = {i: scores[i] for i in range(len(scores)) if labels[i] == label}
        while remaining:
            top = max(remaining, key=lambda i: (remaining[i], -i))
            kept[top] = remaining.pop(top)
            for i in list(remaining):
                iou = _iou(boxes[top], boxes[i])
                if iou > 0:
                    remaining[i] *= math.exp(-iou * iou / sigma)
                    if remaining[i] < threshold:
                        del remaining[i]
    return kept


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sigma, threshold", [(0.5, 0.001), (0.3, 0.2)])
def test_soft_nms_matches_a_per_class_loop(seed, sigma, threshold):
    generator = torch.Generator().manual_seed(seed)
    n = 40
    corner = torch.rand(n, 2, generator=generator) * 30
    side = torch.rand(n, 2, generator=generator) * 16 + 4
    boxes = torch.cat([corner, corner + side], dim=1)  # (N, 4) crowded into 50 x 50
    scores = torch.rand(n, generator=generator)
    labels = torch.randint(0, 3, (n,), generator=generator)

    keep, new_scores = soft_nms_gaussian(boxes, scores, labels, sigma=sigma, score_threshold=threshold)
    expected = reference_soft_nms(boxes.tolist(), scores.tolist(), labels.tolist(), sigma, threshold)

    assert keep.dtype == torch.int64
    assert sorted(keep.tolist()) == sorted(expected)
    assert new_scores.tolist() == pytest.approx([expected[i] for i in keep.tolist()], abs=1e-6)
    assert torch.all(new_scores[:-1] >= new_scores[1:])  # sorted descending
    assert any(expected[i] < scores[i].item() for i in expected)  # some were decayed
    if threshold > 0.01:
        assert len(expected) < n  # and some dropped


@pytest.mark.parametrize("sigma", [0.5, 0.3])
def test_soft_nms_identical_boxes_decay_by_exp_minus_one_over_sigma(sigma):
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    keep, new_scores = soft_nms_gaussian(boxes, torch.tensor([0.8, 0.9]), torch.tensor([3, 3]), sigma=sigma)
    assert keep.tolist() == [1, 0]
    assert new_scores.tolist() == pytest.approx([0.9, 0.8 * math.exp(-1 / sigma)], abs=1e-7)


def test_soft_nms_leaves_disjoint_and_edge_touching_boxes_alone():
    # The last two share an edge: IoU 0 without the original's + 1 pixel.
    boxes = torch.tensor([[0.0, 0.0, 5.0, 5.0], [20.0, 20.0, 30.0, 30.0], [30.0, 20.0, 40.0, 30.0]])
    scores = torch.tensor([0.3, 0.6, 0.5])
    keep, new_scores = soft_nms_gaussian(boxes, scores, torch.tensor([1, 1, 1]))
    assert keep.tolist() == [1, 2, 0]
    assert torch.equal(new_scores, scores[keep])  # untouched


def test_soft_nms_classes_never_suppress_each_other():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3)
    scores = torch.tensor([0.9, 0.8, 0.7])
    keep, new_scores = soft_nms_gaussian(boxes, scores, torch.tensor([0, 1, 2]))
    assert keep.tolist() == [0, 1, 2]
    assert torch.equal(new_scores, scores)


def test_soft_nms_threshold_drops_only_decayed_boxes():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0]])
    scores = torch.tensor([0.9, 0.005, 0.0005])
    keep, new_scores = soft_nms_gaussian(boxes, scores, torch.tensor([0, 0, 0]), sigma=0.5, score_threshold=0.001)
    # box 1 decays to 0.005 * e^-2 = 0.00068 < 0.001: dropped; box 2 is low but never decayed: kept (as the original)
    assert keep.tolist() == [0, 2]
    assert torch.equal(new_scores, scores[[0, 2]])


def test_soft_nms_empty_input():
    keep, new_scores = soft_nms_gaussian(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64))
    assert keep.shape == (0,) and keep.dtype == torch.int64
    assert new_scores.shape == (0,)


# ---------------------------------------------------------------- multi-scale


def test_merge_detections_keeps_the_top_and_a_decayed_duplicate_padded_and_sorted():
    scale_1 = {  # K = 2
        "boxes": torch.tensor([[[10.0, 10.0, 30.0, 30.0], [50.0, 50.0, 60.0, 60.0]],
                               [[0.0, 0.0, 5.0, 5.0], [20.0, 20.0, 25.0, 25.0]]]),
        "scores": torch.tensor([[0.9, 0.5], [0.3, 0.0005]]),
        "labels": torch.tensor([[2, 0], [1, 1]]),
    }
    scale_2 = {  # K = 1: the same object as scale 1 saw, shifted by 2 pixels
        "boxes": torch.tensor([[[12.0, 10.0, 32.0, 30.0]], [[0.0, 0.0, 5.0, 5.0]]]),
        "scores": torch.tensor([[0.8], [0.2]]),
        "labels": torch.tensor([[2], [0]]),
    }
    merged = merge_detections([scale_1, scale_2], max_detections=5)

    assert merged["boxes"].shape == (2, 5, 4) and merged["scores"].shape == (2, 5) and merged["labels"].shape == (2, 5)
    assert merged["labels"].dtype == torch.int64
    iou = (18 * 20) / (400 + 400 - 18 * 20)  # 9 / 11
    duplicate = 0.8 * math.exp(-iou**2 / 0.5)  # 0.2098
    assert merged["scores"][0].tolist() == pytest.approx([0.9, 0.5, duplicate, 0.0, 0.0], abs=1e-6)
    assert merged["labels"][0].tolist() == [2, 0, 2, 0, 0]
    assert merged["boxes"][0].tolist() == [
        [10.0, 10.0, 30.0, 30.0], [50.0, 50.0, 60.0, 60.0], [12.0, 10.0, 32.0, 30.0], [0.0] * 4, [0.0] * 4,
    ]
    # Image 1: the two boxes at the same place are different classes, so neither is decayed.
    assert merged["scores"][1].tolist() == pytest.approx([0.3, 0.2, 0.0005, 0.0, 0.0], abs=1e-7)
    assert merged["labels"][1].tolist() == [1, 0, 1, 0, 0]

    top_two = merge_detections([scale_1, scale_2], max_detections=2)
    torch.testing.assert_close(top_two["scores"], torch.tensor([[0.9, 0.5], [0.3, 0.2]]))
    assert top_two["labels"].tolist() == [[2, 0], [1, 0]]


def test_merge_detections_without_detections():
    empty = {"boxes": torch.zeros(1, 0, 4), "scores": torch.zeros(1, 0), "labels": torch.zeros(1, 0, dtype=torch.int64)}
    merged = merge_detections([empty], max_detections=3)
    assert merged["scores"].tolist() == [[0.0, 0.0, 0.0]]
    assert merged["boxes"].shape == (1, 3, 4) and not merged["boxes"].any()
    with pytest.raises(ValueError, match="empty"):
        merge_detections([])


def test_flip_tta_on_a_symmetric_image_gives_symmetric_detections():
    """A model on a left-right symmetric image, with flip TTA: the merged heatmap and size maps are exact
    mirrors of themselves, so every peak has its mirror peak with the same score, class and size."""
    import numpy as np

    from centernet import create_model
    from centernet.data.dataset import Normalize
    from centernet.ops.peaks import heatmap_peaks
    from centernet.engine.inference import InferenceSettings, detect
    from centernet.tasks import DetectionTask

    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=3).eval()
    rng = np.random.default_rng(0)
    half = rng.integers(0, 255, (96, 64, 3), dtype=np.uint8)
    image = np.concatenate([half, half[:, ::-1]], axis=1)  # (96, 128, 3), symmetric
    settings = InferenceSettings(keep_resolution=True, flip=True, precision="fp32")
    dets, outputs = detect(model, DetectionTask(3), [image], settings, Normalize())
    heat = torch.sigmoid(outputs["heatmap"])
    torch.testing.assert_close(heat, heat.flip(-1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(outputs["size"], outputs["size"].flip(-1), rtol=1e-5, atol=1e-5)
    peaks = heatmap_peaks(outputs["heatmap"]) > 0
    assert torch.equal(peaks, peaks.flip(-1)) and peaks.any()
    # Without flip, a random network's heatmap of the same image is not symmetric.
    plain, _ = detect(model, DetectionTask(3), [image], InferenceSettings(keep_resolution=True), Normalize())
    _, raw = detect(model, DetectionTask(3), [image], InferenceSettings(keep_resolution=True, precision="fp32"),
                    Normalize())
    assert not torch.allclose(torch.sigmoid(raw["heatmap"]), torch.sigmoid(raw["heatmap"]).flip(-1), atol=1e-4)
    assert dets["boxes"].shape == plain["boxes"].shape == (1, 100, 4)
