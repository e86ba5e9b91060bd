"""KITTI 3D object evaluation (``centernet.eval.kitti``): geometry, protocol rules and AP values by hand."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from centernet.data.kitti import KittiObject, read_label_file
from centernet.errors import CenterNetError
from centernet.tasks.mono3d.metrics import (
    LOOSE_OVERLAP, KittiEvalSettings, bev_corners, bev_iou, evaluate_kitti, format_kitti_table, iou3d, matched_errors,
)

from conftest import SHARED_DATA

KITTI_MINI = SHARED_DATA / "kitti_mini"
LEVELS = ("easy", "moderate", "hard")
METRICS = ("bbox", "aos", "bev", "3d")


def obj(kind: str = "Car", x: float = 0.0, z: float = 20.0, box_x: float = 100.0, height_px: float = 50.0,
        score: float | None = None, alpha: float = 0.0, ry: float = 0.0, occluded: int = 0,
        truncated: float = 0.0) -> KittiObject:
    """A car-sized object at (x, 1.5, z), 2D box 60 px wide starting at ``box_x``."""
    return KittiObject(
        type=kind, truncated=truncated, occluded=occluded, alpha=alpha,
        box=(box_x, 150.0, box_x + 60.0, 150.0 + height_px), dimensions=(1.5, 1.8, 4.0),
        location=(x, 1.5, z), rotation_y=ry, score=score,
    )


def as_detection(o: KittiObject, score: float, **changes) -> KittiObject:
    return dataclasses.replace(o, score=score, **changes)


def ap(metrics: dict, cls: str = "Car", level: str = "moderate", metric: str = "bbox") -> float:
    return metrics["per_class"][cls][level][metric]


def three_cars() -> list[KittiObject]:
    """Three valid (50 px, unoccluded) cars, apart in the image and on the ground."""
    return [obj(x=-8.0 + 8 * i, box_x=100.0 + 200 * i, alpha=0.3 * i, ry=0.2 * i) for i in range(3)]


# --------------------------------------------------------------------------- 1. ground truth as predictions

@pytest.mark.parametrize("recall_points", [40, 11])
@pytest.mark.parametrize("decreasing", [False, True])
def test_ground_truth_as_detections_is_perfect_on_kitti_mini(recall_points, decreasing):
    label_dir = KITTI_MINI / "training" / "label_2"
    if not label_dir.is_dir():
        pytest.skip(f"real KITTI frames {KITTI_MINI} absent: ../shared/data/kitti_mini not present")
    gts = [read_label_file(p) for p in sorted(label_dir.glob("*.txt"))]
    assert len(gts) == 14
    dets, rank = [], 0
    for frame in gts:  # every row, other classes and DontCare included (they must be left out)
        dets.append([])
        for o in frame:
            rank += 1
            dets[-1].append(as_detection(o, 1.0 - rank / 1000 if decreasing else 1.0))
    m = evaluate_kitti(gts, dets, KittiEvalSettings(recall_points=recall_points))
    # from the label files: 41 Car, 11 Pedestrian, 4 Cyclist rows; the difficulty filters keep these
    assert m["num_gt"]["Car"] == {"easy": 13, "moderate": 24, "hard": 30}
    assert m["num_gt"]["Pedestrian"] == {"easy": 6, "moderate": 8, "hard": 11}
    assert m["num_gt"]["Cyclist"] == {"easy": 1, "moderate": 2, "hard": 2}
    for cls in ("Car", "Pedestrian", "Cyclist"):
        for level in LEVELS:
            for metric in METRICS:
                assert ap(m, cls, level, metric) == pytest.approx(1.0, abs=1e-12), (cls, level, metric)
    for level in LEVELS:
        for key in ("ap2d", "aos", "bev_ap", "ap3d"):
            assert m[f"{key}_{level}"] == pytest.approx(1.0, abs=1e-12)
    table = format_kitti_table(m)
    assert "Cyclist" in table and "100.00" in table


# --------------------------------------------------------------------------- 2. overlaps by hand

def test_bev_iou_axis_aligned_shifts_by_hand():
    car = np.array([[0.0, 0.0, 2.0, 4.0, 0.0]])  # (x, z, w, l, ry): ry = 0, length 4 along x, width 2 along z
    shifted = np.array([
        [1.0, 0.0, 2.0, 4.0, 0.0],  # 1 m along the length: overlap 3 x 2 = 6, union 8 + 8 - 6 = 10 -> 3/5
        [0.0, 1.0, 2.0, 4.0, 0.0],  # 1 m across: overlap 4 x 1 = 4, union 12 -> 1/3
        [4.0, 0.0, 2.0, 4.0, 0.0],  # touching end to end: 0
        [9.0, 9.0, 2.0, 4.0, 0.0],  # far away: 0
        [0.0, 0.0, 2.0, 4.0, 0.0],  # identical: 1
        [0.0, 0.0, 2.0, 4.0, math.pi],  # turned around: the same rectangle, 1
        [0.5, 0.0, 1.0, 2.0, 0.0],  # inside: area 2 / area 8 = 1/4
    ])
    expected = [0.6, 1 / 3, 0.0, 0.0, 1.0, 1.0, 0.25]
    np.testing.assert_allclose(bev_iou(car, shifted)[0], expected, atol=1e-9)
    np.testing.assert_allclose(bev_iou(shifted, car)[:, 0], expected, atol=1e-9)  # symmetric

    # ry = pi/2: the devkit's heading (cos ry, -sin ry) points along -z, so the length lies along z
    turned = np.array([[0.0, 0.0, 2.0, 4.0, math.pi / 2]])
    corners = bev_corners(turned)[0]
    np.testing.assert_allclose(np.sort(np.abs(corners[:, 0])), [1, 1, 1, 1], atol=1e-12)  # x within +-w/2
    np.testing.assert_allclose(np.sort(np.abs(corners[:, 1])), [2, 2, 2, 2], atol=1e-12)  # z within +-l/2
    along_z = np.array([[0.0, 1.0, 2.0, 4.0, math.pi / 2], [1.0, 0.0, 2.0, 4.0, math.pi / 2]])
    np.testing.assert_allclose(bev_iou(turned, along_z)[0], [0.6, 1 / 3], atol=1e-9)
    # the car crossed with the turned one: a 2 x 2 square in common, union 8 + 8 - 4 -> 1/3
    np.testing.assert_allclose(bev_iou(car, turned)[0, 0], 1 / 3, atol=1e-9)


def grid_iou(a: np.ndarray, b: np.ndarray, n: int = 1200) -> float:
    """Brute-force BEV IoU of two (x, z, w, l, ry) boxes by sampling an n x n grid around both."""
    corners = np.concatenate([bev_corners(a[None]), bev_corners(b[None])], axis=1)[0]
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    xs = np.linspace(lo[0], hi[0], n)
    zs = np.linspace(lo[1], hi[1], n)
    px, pz = np.meshgrid(xs, zs)

    def inside(box: np.ndarray) -> np.ndarray:
        x, z, w, l, ry = box
        u = (px - x) * math.cos(ry) - (pz - z) * math.sin(ry)  # along the heading (cos ry, -sin ry)
        v = (px - x) * math.sin(ry) + (pz - z) * math.cos(ry)  # across
        return (np.abs(u) <= l / 2) & (np.abs(v) <= w / 2)

    ia, ib = inside(a), inside(b)
    return float((ia & ib).sum() / (ia | ib).sum())


def test_bev_iou_rotated_matches_grid_estimate():
    rng = np.random.default_rng(0)
    boxes = [
        (np.array([0.0, 0.0, 2.0, 4.0, 0.0]), np.array([0.5, 0.3, 2.0, 4.0, math.pi / 4])),  # 45 degrees
        (np.array([0.0, 0.0, 2.0, 4.0, 0.3]), np.array([0.0, 0.0, 2.0, 4.0, 0.3 + math.pi / 2])),  # a cross
        (np.array([3.0, 10.0, 1.6, 3.9, -1.2]), np.array([3.4, 10.5, 1.7, 4.2, -0.9])),
    ]
    for _ in range(3):
        a = np.array([*rng.uniform(-1, 1, 2), *rng.uniform(0.5, 3, 2), rng.uniform(-math.pi, math.pi)])
        b = np.array([*rng.uniform(-1, 1, 2), *rng.uniform(0.5, 3, 2), rng.uniform(-math.pi, math.pi)])
        boxes.append((a, b))
    for a, b in boxes:
        exact = bev_iou(a[None], b[None])[0, 0]
        assert exact == pytest.approx(grid_iou(a, b), abs=1e-2), (a, b)
        assert bev_iou(b[None], a[None])[0, 0] == pytest.approx(exact, abs=1e-12)
    # a rotated box with itself, and a rotated box nested in a larger one of the same heading
    a = np.array([[5.0, 30.0, 1.7, 4.1, 0.77]])
    assert bev_iou(a, a)[0, 0] == pytest.approx(1.0, abs=1e-9)
    inner = np.array([[5.0, 30.0, 0.85, 2.05, 0.77]])
    assert bev_iou(a, inner)[0, 0] == pytest.approx(0.25, abs=1e-9)


def test_iou3d_height_shift_by_hand():
    # (x, y, z, h, w, l, ry); y is the bottom, the box spans [y - h, y] = [0, 1.5]
    box = np.array([[0.0, 1.5, 10.0, 1.5, 2.0, 4.0, 0.0]])
    others = np.array([
        [0.0, 1.5, 10.0, 1.5, 2.0, 4.0, 0.0],  # identical: 1
        [0.0, 2.0, 10.0, 1.5, 2.0, 4.0, 0.0],  # 0.5 m lower: height overlap 1.0 -> 8 / (12 + 12 - 8) = 1/2
        [1.0, 2.0, 10.0, 1.5, 2.0, 4.0, 0.0],  # and 1 m along the length: 6 x 1.0 / (24 - 6) = 1/3
        [0.0, 3.0, 10.0, 1.5, 2.0, 4.0, 0.0],  # 1.5 m lower: stacked, touching -> 0
    ])
    np.testing.assert_allclose(iou3d(box, others)[0], [1.0, 0.5, 1 / 3, 0.0], atol=1e-9)
    assert iou3d(np.zeros((0, 7)), others).shape == (0, 4)


# --------------------------------------------------------------------------- 3. orientation

def test_orientation_off_by_pi_zeroes_aos_but_not_ap():
    gt = three_cars()
    flipped = [as_detection(o, 0.9, alpha=o.alpha + math.pi, rotation_y=o.rotation_y + math.pi) for o in gt]
    m = evaluate_kitti([gt], [flipped])
    for level in LEVELS:
        for metric in ("bbox", "bev", "3d"):  # a box turned by pi is the same box
            assert ap(m, level=level, metric=metric) == pytest.approx(1.0)
        assert ap(m, level=level, metric="aos") == pytest.approx(0.0, abs=1e-12)
    quarter = [as_detection(o, 0.9, alpha=o.alpha + math.pi / 2) for o in gt]
    m = evaluate_kitti([gt], [quarter])
    assert ap(m, metric="aos") == pytest.approx(0.5)  # (1 + cos(pi/2)) / 2 at every recall point
    assert ap(m, metric="bbox") == pytest.approx(1.0)


# --------------------------------------------------------------------------- 4. R40 vs R11

def test_recall_sampling_40_and_11_points_by_hand():
    gt = [obj(x=-12.0 + 8 * i, box_x=50.0 + 150 * i) for i in range(4)]
    half = [as_detection(gt[0], 0.9), as_detection(gt[1], 0.8)]
    # recall reaches 1/2 at precision 1 and no further.
    # R40: points 1/40 .. 20/40 have precision 1, 21/40 .. 1 have 0 -> 20 / 40 = 0.5
    # R11: points 0, 0.1 .. 0.5 (six) have precision 1, 0.6 .. 1 (five) 0 -> 6 / 11
    r40 = evaluate_kitti([gt], [half], KittiEvalSettings(recall_points=40))
    r11 = evaluate_kitti([gt], [half], KittiEvalSettings(recall_points=11))
    for metric in METRICS:
        assert ap(r40, metric=metric) == pytest.approx(0.5, abs=1e-12)
        assert ap(r11, metric=metric) == pytest.approx(6 / 11, abs=1e-12)

    # two gts; TP 0.9, FP 0.8, TP 0.7: (recall 1/2, precision 1), then (recall 1, precision 2/3)
    # R40: 20 points at 1 and 20 at 2/3 -> (20 + 40/3) / 40 = 5/6
    # R11: 6 points (0 .. 0.5) at 1 and 5 (0.6 .. 1) at 2/3 -> (6 + 10/3) / 11 = 28/33
    gt2 = gt[:2]
    dets = [as_detection(gt2[0], 0.9), as_detection(gt[3], 0.8, box=(900.0, 10.0, 960.0, 60.0)),
            as_detection(gt2[1], 0.7)]
    dets[1] = dataclasses.replace(dets[1], location=(30.0, 1.5, 60.0))
    r40 = evaluate_kitti([gt2], [dets], KittiEvalSettings(recall_points=40))
    r11 = evaluate_kitti([gt2], [dets], KittiEvalSettings(recall_points=11))
    for metric in ("bbox", "bev", "3d"):
        assert ap(r40, metric=metric) == pytest.approx(5 / 6, abs=1e-12)
        assert ap(r11, metric=metric) == pytest.approx(28 / 33, abs=1e-12)

    # FP 0.95 first: (recall 1/2, precision 1/2), then (recall 1, precision 2/3); the interpolated
    # precision max(p[i:]) is 2/3 at every point, so AP = 2/3 for both samplings (not (1/2 + 2/3) / 2)
    dets = [dataclasses.replace(dets[1], score=0.95), as_detection(gt2[0], 0.9), as_detection(gt2[1], 0.8)]
    for points in (40, 11):
        m = evaluate_kitti([gt2], [dets], KittiEvalSettings(recall_points=points))
        assert ap(m, metric="3d") == pytest.approx(2 / 3, abs=1e-12)


def test_duplicate_below_the_last_recall_step_costs_nothing():
    gt = [obj()]
    best_scored = as_detection(gt[0], 0.9, box=(100.0, 150.0, 160.0, 190.0))   # 2D IoU 40/50 = 0.8
    duplicate = as_detection(gt[0], 0.6, box=(100.0, 150.0, 160.0, 199.0))     # 2D IoU 49/50 = 0.98
    # pass 1 gives the gt its highest-scoring match (0.9): full recall is reached at threshold 0.9,
    # where the 0.6 duplicate is not yet active, so AP = 1 (taking 0.6 would make it 1/2)
    m = evaluate_kitti([gt], [[best_scored, duplicate]])
    assert ap(m, metric="bbox") == pytest.approx(1.0)
    for metric in ("bev", "3d"):  # same 3D box: the same holds whichever overlap decides
        assert ap(m, metric=metric) == pytest.approx(1.0)
    # a duplicate scored *above* the true positive of the only gt is a false positive before full recall
    m = evaluate_kitti([gt], [[best_scored, dataclasses.replace(duplicate, score=0.95, location=(9.0, 1.5, 20.0))]])
    assert ap(m, metric="bbox") == pytest.approx(1.0)  # here it is the better-scored 2D match: TP
    assert ap(m, metric="3d") == pytest.approx(0.5)    # moved 9 m in 3D: a FP at 0.95, then the TP at 0.9


def test_precision_pass_matches_each_gt_to_its_largest_overlap():
    # 2D boxes 100 px tall; G1 and G2 overlap (IoU 80/120 = 0.67, below Car's 0.7), G3 stands apart
    g1 = obj(box_x=0.0, height_px=100.0)
    g1 = dataclasses.replace(g1, box=(0.0, 100.0, 100.0, 200.0))
    g2 = dataclasses.replace(g1, box=(20.0, 100.0, 120.0, 200.0), location=(5.0, 1.5, 20.0))
    g3 = dataclasses.replace(g1, box=(500.0, 100.0, 600.0, 200.0), location=(-5.0, 1.5, 20.0))
    a = as_detection(g1, 0.9, box=(10.0, 100.0, 110.0, 200.0))  # IoU 90/110 = 0.82 with both G1 and G2
    b = as_detection(g1, 0.8)                                   # G1 exactly (IoU 0.67 with G2)
    d = as_detection(g3, 0.7)
    m = evaluate_kitti([[g1, g2, g3]], [[a, b, d]])
    # pass 1 (highest score): G1 <- A (0.9), G2 <- nothing (B does not reach it), G3 <- D (0.7):
    # TP scores (0.9, 0.7) of 3 gts, so recall points above 2/3 get precision 0.
    # At threshold 0.9 only A: TP 1, FP 0. At 0.7 (A, B, D), largest overlap: G1 <- B, G2 <- A, G3 <- D:
    # TP 3, FP 0. R40: points 1/40..26/40 (<= 2/3) at precision 1 -> AP 26/40.
    # (Taking the best-scored match here, G1 <- A, would leave B a FP: 13 points at 1, 13 at 2/3.)
    assert ap(m, metric="bbox") == pytest.approx(26 / 40, abs=1e-12)


# --------------------------------------------------------------------------- 5. DontCare and neighbours

def scene() -> list[KittiObject]:
    car = obj(x=0.0, z=20.0, box_x=100.0)
    van = obj("Van", x=8.0, z=25.0, box_x=400.0)
    sitting = obj("Person_sitting", x=-6.0, z=15.0, box_x=850.0)
    pedestrian = obj("Pedestrian", x=4.0, z=12.0, box_x=1000.0)
    dontcare = KittiObject(type="DontCare", truncated=-1, occluded=-1, alpha=-10, box=(600.0, 140.0, 760.0, 260.0),
                           dimensions=(-1, -1, -1), location=(-1000, -1000, -1000), rotation_y=-10)
    return [car, van, sitting, pedestrian, dontcare]


def test_dontcare_and_neighbour_classes_are_neither_tp_nor_fp():
    gt = scene()
    car, van, sitting, pedestrian = gt[:4]
    base = [as_detection(car, 0.9), as_detection(pedestrian, 0.9)]
    # a Car detection on the DontCare box (its 3D box far from anything), scored above the true positive
    on_dontcare = obj(x=-20.0, z=50.0, box_x=620.0, height_px=80.0, score=0.95)  # 2D box inside the region
    on_van = as_detection(van, 0.95, type="Car")  # a Car detection on the Van
    on_sitting = as_detection(sitting, 0.95, type="Pedestrian")
    elsewhere = obj(x=20.0, z=60.0, box_x=1100.0, height_px=80.0, score=0.95)
    partly = obj(x=-20.0, z=50.0, box_x=720.0, height_px=80.0, score=0.95)  # 40 of 60 px over the region

    m = evaluate_kitti([gt], [base])
    for metric in METRICS:
        assert ap(m, "Car", metric=metric) == pytest.approx(1.0)
        assert ap(m, "Pedestrian", metric=metric) == pytest.approx(1.0)

    m = evaluate_kitti([gt], [base + [on_van, on_sitting]])
    for metric in METRICS:
        assert ap(m, "Car", metric=metric) == pytest.approx(1.0)
        assert ap(m, "Pedestrian", metric=metric) == pytest.approx(1.0)

    # the devkit's DontCare test is 2D: bbox and AOS are unchanged; BEV/3D count it (see the module notes)
    m = evaluate_kitti([gt], [base + [on_dontcare]])
    assert ap(m, "Car", metric="bbox") == pytest.approx(1.0)
    assert ap(m, "Car", metric="aos") == pytest.approx(1.0)
    assert ap(m, "Car", metric="3d") == pytest.approx(0.5)
    m = evaluate_kitti([gt], [base + [on_dontcare]], KittiEvalSettings(dontcare_all_metrics=True))
    for metric in METRICS:
        assert ap(m, "Car", metric=metric) == pytest.approx(1.0)

    # a false positive above the only true positive halves the precision at every recall: AP 1/2
    for fp in (elsewhere, partly):  # partly: 2/3 of its area is over the region, below Car's 0.7
        m = evaluate_kitti([gt], [base + [fp]], KittiEvalSettings(dontcare_all_metrics=True))
        for metric in ("bbox", "bev", "3d"):
            assert ap(m, "Car", metric=metric) == pytest.approx(0.5)
        assert ap(m, "Pedestrian") == pytest.approx(1.0)  # other classes untouched
    # a Van detection is not evaluated at all; a Truck gt is not a neighbour: a Car on it is a FP
    m = evaluate_kitti([gt], [base + [as_detection(elsewhere, 0.95, type="Van")]])
    assert ap(m, "Car") == pytest.approx(1.0)
    truck = dataclasses.replace(van, type="Truck")
    m = evaluate_kitti([gt[:1] + [truck] + gt[2:]], [base + [on_van]])
    assert ap(m, "Car") == pytest.approx(0.5)


# --------------------------------------------------------------------------- 6. difficulty

def test_difficulty_filters_by_height_occlusion_truncation():
    tall = obj(x=-5.0, box_x=100.0, height_px=50.0)
    short = obj(x=5.0, box_x=400.0, height_px=30.0)  # 30 px: moderate and hard (>= 25), not easy (>= 40)
    gt = [tall, short]

    m = evaluate_kitti([gt], [[as_detection(tall, 0.8), as_detection(short, 0.9)]])
    assert m["num_gt"]["Car"] == {"easy": 1, "moderate": 2, "hard": 2}
    # in easy the short detection (scored first) is ignored, below 40 px: not a false positive
    for level in LEVELS:
        assert ap(m, level=level) == pytest.approx(1.0)

    # a 30 px detection on nothing: ignored in easy (below 40 px), a false positive in moderate and hard
    stray = obj(x=20.0, z=40.0, box_x=800.0, height_px=30.0, score=0.95)
    m = evaluate_kitti([gt], [[as_detection(tall, 0.8), as_detection(short, 0.7), stray]])
    assert (ap(m, level="easy"), ap(m, level="moderate"), ap(m, level="hard")) == pytest.approx((1.0, 2 / 3, 2 / 3))

    m = evaluate_kitti([gt], [[as_detection(tall, 0.9)]])
    assert (ap(m, level="easy"), ap(m, level="moderate"), ap(m, level="hard")) == pytest.approx((1.0, 0.5, 0.5))

    m = evaluate_kitti([gt], [[as_detection(short, 0.9)]])
    assert (ap(m, level="easy"), ap(m, level="moderate"), ap(m, level="hard")) == pytest.approx((0.0, 0.5, 0.5))

    occluded = dataclasses.replace(tall, occluded=2)   # easy allows 0, moderate 1, hard 2
    truncated = dataclasses.replace(short, box=(400.0, 150.0, 460.0, 200.0), truncated=0.2)  # easy <= 0.15
    m = evaluate_kitti([[occluded, truncated]], [[]])
    assert m["num_gt"]["Car"] == {"easy": 0, "moderate": 1, "hard": 2}
    assert math.isnan(ap(m, level="easy")) and math.isnan(m["ap3d_easy"])  # no valid gt: NaN, not 0
    assert ap(m, level="hard") == 0.0
    assert math.isnan(ap(m, "Cyclist", level="hard"))
    assert m["ap2d_hard"] == 0.0  # the mean is over classes with ground truth (Car only)
    assert "-" in format_kitti_table(m)


# --------------------------------------------------------------------------- errors

def test_bad_input_raises_one_line_errors():
    gt = three_cars()
    with pytest.raises(CenterNetError, match="2 ground-truth images but 1"):
        evaluate_kitti([gt, gt], [[]])
    with pytest.raises(CenterNetError, match="without a finite score"):
        evaluate_kitti([gt], [gt])
    with pytest.raises(CenterNetError, match="recall_points"):
        evaluate_kitti([gt], [[]], KittiEvalSettings(recall_points=20))
    with pytest.raises(CenterNetError, match="min_overlap"):
        evaluate_kitti([gt], [[]], KittiEvalSettings(classes=("Tram",)))


# --------------------------------------------------------------------------- median errors of matched objects

def test_matched_errors_of_known_perturbations():
    cars = three_cars()
    exact = matched_errors([cars], [[as_detection(c, 0.9) for c in cars]], ("Car",))
    assert exact["matched"] == 3 and all(exact[k] == pytest.approx(0.0, abs=1e-9) for k in exact if k != "matched")
    far = [as_detection(c, 0.9, location=(c.location[0], c.location[1], c.location[2] * 1.05)) for c in cars]
    errors = matched_errors([cars], [far], ("Car",))
    assert errors["depth_error"] == pytest.approx(0.05) and errors["lateral_error"] == pytest.approx(0.0)
    # 5 % too far (1 m at 20 m) costs every car its BEV match at IoU 0.7; 2 % (0.4 m) keeps them at IoU 0.5
    assert ap(evaluate_kitti([cars], [far], KittiEvalSettings(classes=("Car",))), metric="bev") == 0.0
    near = [as_detection(c, 0.9, location=(c.location[0], c.location[1], c.location[2] * 1.02)) for c in cars]
    loose = evaluate_kitti([cars], [near], KittiEvalSettings(classes=("Car",), min_overlap=LOOSE_OVERLAP))
    assert ap(loose, metric="bev") == pytest.approx(1.0)
    turned = [as_detection(c, 0.9, rotation_y=c.rotation_y + math.pi, alpha=c.alpha + math.pi) for c in cars]
    errors = matched_errors([cars], [turned], ("Car",))
    assert errors["axis_error"] == pytest.approx(0.0, abs=1e-6) and errors["alpha_error"] == pytest.approx(180.0)
    quarter = [as_detection(c, 0.9, rotation_y=c.rotation_y + math.pi / 2) for c in cars]
    assert matched_errors([cars], [quarter], ("Car",))["axis_error"] == pytest.approx(90.0)
    bigger = [as_detection(c, 0.9, dimensions=(1.8, 2.1, 4.3)) for c in cars]
    assert matched_errors([cars], [bigger], ("Car",))["dimension_error"] == pytest.approx(0.3)


def test_matched_errors_take_the_best_scoring_overlap_once_and_leave_other_classes():
    cars = three_cars()
    low = as_detection(cars[0], 0.2, location=(9.0, 1.5, 20.0))                   # 9 m off, low score
    high = as_detection(cars[0], 0.8, location=(cars[0].location[0] + 1.0, 1.5, 20.0))  # 1 m off, high score
    walker = as_detection(cars[1], 0.9, type="Pedestrian")                          # right place, other class
    errors = matched_errors([cars], [[low, high, walker]], ("Car", "Pedestrian"))
    assert errors["matched"] == 1 and errors["lateral_error"] == pytest.approx(1.0)
    nothing = matched_errors([cars], [[]], ("Car",))
    assert nothing["matched"] == 0 and math.isnan(nothing["depth_error"])

