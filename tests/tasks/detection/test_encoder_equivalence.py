"""The vectorised detection encoder against a plain per-object loop (the encoder as it was), exactly."""

import math

import numpy as np
import pytest
from conftest import random_boxes

from centernet.tasks.detection.targets import DetectionTargetEncoder
from centernet.ops.gaussian import draw_gaussian, gaussian_2d, gaussian_radii, gaussian_radius


def loop_encode(encoder: DetectionTargetEncoder, boxes, labels, output_size, ignore_boxes=None):
    """One object at a time in Python floats, a fresh kernel per object: the straightforward version."""
    out_h, out_w = output_size
    m = encoder.max_objects
    heatmap = np.zeros((encoder.num_classes, out_h, out_w), np.float32)
    size, offset = np.zeros((m, 2), np.float32), np.zeros((m, 2), np.float32)
    index, mask = np.zeros((m,), np.int64), np.zeros((m,), np.float32)
    ignore = np.zeros((out_h, out_w), np.float32)
    k = 0
    for (x1, y1, x2, y2), label in zip(np.asarray(boxes).tolist(), np.asarray(labels).tolist()):
        bw, bh = x2 - x1, y2 - y1
        if bw <= 0 or bh <= 0 or k >= m:
            continue
        radius = max(0, int(gaussian_radius(math.ceil(bh), math.ceil(bw), encoder.min_overlap, encoder.exact_radius)))
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        ix, iy = min(max(int(cx), 0), out_w - 1), min(max(int(cy), 0), out_h - 1)
        g = gaussian_2d(radius)
        plane = heatmap[int(label)]
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                y, x = iy + dy, ix + dx
                if 0 <= y < out_h and 0 <= x < out_w:
                    plane[y, x] = max(plane[y, x], g[dy + radius, dx + radius])
        size[k] = bw, bh
        offset[k] = cx - ix, cy - iy
        index[k] = iy * out_w + ix
        mask[k] = 1
        k += 1
    if ignore_boxes is not None:
        for x1, y1, x2, y2 in np.asarray(ignore_boxes, np.float32).reshape(-1, 4).tolist():
            xa, ya = max(int(math.floor(x1)), 0), max(int(math.floor(y1)), 0)
            xb, yb = max(min(int(math.ceil(x2)), out_w), 0), max(min(int(math.ceil(y2)), out_h), 0)
            ignore[ya:yb, xa:xb] = 1
    return {"heatmap": heatmap, "size": size, "offset": offset, "index": index, "mask": mask, "ignore": ignore}


def assert_same(ours, ref):
    assert set(ours) == set(ref)
    for name in ref:
        assert ours[name].dtype == ref[name].dtype and ours[name].shape == ref[name].shape, name
        np.testing.assert_array_equal(ours[name], ref[name], err_msg=name)


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("n", [0, 1, 5, 20, 33, 60, 200])  # both radius paths (<= 32 and > 32), beyond max_objects
def test_vectorised_encoder_equals_loop(n, exact):
    rng = np.random.default_rng(n * 2 + exact)
    for trial in range(4):
        out_h, out_w = [(32, 48), (17, 9), (128, 128), (1, 5)][trial]
        encoder = DetectionTargetEncoder(num_classes=3, max_objects=50, min_overlap=[0.7, 0.5, 0.9, 0.7][trial],
                                         exact_radius=exact)
        boxes, labels = random_boxes(rng, n, out_h, out_w, 3)
        ignore = rng.uniform(-3, max(out_h, out_w) + 3, (2, 4)) if trial % 2 else None
        assert_same(encoder(boxes, labels, (out_h, out_w), ignore), loop_encode(encoder, boxes, labels, (out_h, out_w), ignore))


def test_same_class_overlaps_max_merge_and_border_and_order():
    """Overlapping objects of one class max-merge (any order gives the same map); borders cut the kernel."""
    encoder = DetectionTargetEncoder(num_classes=2, max_objects=4)
    boxes = np.array([[0, 0, 12, 12], [4, 3, 16, 15], [20, 20, 32, 32], [25, 22, 32, 32], [1, 1, 3, 3],
                      [5, 5, 5, 9]], np.float32)  # the last one has zero width: skipped, not counted
    labels = np.array([0, 0, 1, 1, 0, 1])
    ours = encoder(boxes, labels, (32, 32))
    assert_same(ours, loop_encode(encoder, boxes, labels, (32, 32)))
    assert ours["mask"].tolist() == [1, 1, 1, 1]  # 4 kept = max_objects; the 5th valid box is dropped
    reordered = encoder(boxes[[1, 0, 3, 2]], labels[[1, 0, 3, 2]], (32, 32))
    np.testing.assert_array_equal(reordered["heatmap"], ours["heatmap"])
    single = np.zeros((32, 32), np.float32)
    for box in boxes[:2]:
        r = max(0, int(gaussian_radius(12, 12)))
        draw_gaussian(single, (int((box[0] + box[2]) / 2), int((box[1] + box[3]) / 2)), r)
    np.testing.assert_array_equal(ours["heatmap"][0], single)


def test_float64_and_integer_boxes_and_non_finite():
    encoder = DetectionTargetEncoder(num_classes=2)
    boxes = np.array([[1, 2, 9, 7], [0, 0, 3, 3]])
    labels = np.array([1, 0])
    for b in (boxes, boxes.astype(np.float64)):
        assert_same(encoder(b, labels, (16, 16)), loop_encode(encoder, b, labels, (16, 16)))
    with pytest.raises(ValueError):
        encoder(np.array([[0, 0, np.nan, 3]], np.float32), np.array([0]), (16, 16))


def scalar_radius(h: float, w: float, m: float, exact: bool) -> float:
    """The original's three quadratics, one box at a time in Python floats (the reference)."""
    cases = [(1.0, h + w, w * h * (1 - m) / (1 + m)), (4.0, 2 * (h + w), (1 - m) * w * h),
             (4 * m, -2 * m * (h + w), (m - 1) * w * h)]
    roots = []
    for i, (a, b, c) in enumerate(cases):
        sq = math.sqrt(max(b * b - 4 * a * c, 0.0))
        roots.append(((b - sq if i < 2 else b + sq) / (2 * a)) if exact else (b + sq) / 2)
    return min(roots)


def test_gaussian_radii_equal_a_scalar_reference():
    h, w = np.meshgrid(np.arange(0, 130.0), np.arange(0, 130.0))
    for m in (0.3, 0.7, 0.9):
        for exact in (False, True):
            radii = gaussian_radii(h.ravel(), w.ravel(), m, exact)
            expected = [scalar_radius(a, b, m, exact) for a, b in zip(h.ravel().tolist(), w.ravel().tolist())]
            np.testing.assert_allclose(radii, expected, rtol=1e-12, atol=1e-12)
            assert gaussian_radius(7.0, 19.0, m, exact) == pytest.approx(scalar_radius(7.0, 19.0, m, exact), rel=1e-12)


def test_cached_kernel_is_not_shared_with_callers():
    g = gaussian_2d(2)
    g[:] = 0
    assert gaussian_2d(2)[2, 2] == 1.0
