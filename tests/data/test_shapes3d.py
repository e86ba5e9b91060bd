"""The built-in synthetic 3D set "shapes3d": KITTI files whose labels describe their pixels."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from centernet.data import available_splits, detect_format, load_split
from centernet.data.kitti import read_calib_file, read_kitti, read_label_file
from centernet.data.shapes3d import (
    SHAPES3D_CLASSES,
    Shapes3DConfig,
    build_shapes3d,
    camera_matrix,
    dataset_dir,
    render_image3d,
)
from centernet.ops.camera import box_corners, project
from centernet.errors import CenterNetError

TINY = Shapes3DConfig(num_train=4, num_val=2, seed=5)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_shapes3d(tmp_path_factory.mktemp("shapes3d"), TINY, progress=False)


def _frames(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "training" / "label_2").glob("*.txt"))


def test_layout(built: Path) -> None:
    assert built == dataset_dir(built.parent, TINY) and (built / ".complete").is_file()
    assert (built / "ImageSets" / "train.txt").read_text().split() == ["000000", "000001", "000002", "000003"]
    assert (built / "ImageSets" / "val.txt").read_text().split() == ["000004", "000005"]
    assert detect_format(built) == "kitti" and available_splits(built) == ["train", "val"]
    for frame in _frames(built):
        image = cv2.imread(str(built / "training" / "image_2" / f"{frame}.png"))
        assert image.shape == (TINY.height, TINY.width, 3)
    assert build_shapes3d(built.parent, TINY, progress=False) == built  # built once, reused
    assert dataset_dir(built.parent, replace(TINY, seed=6)) != built


def test_boxes_are_projected_3d_boxes(built: Path) -> None:
    checked = 0
    for frame in _frames(built):
        p2 = read_calib_file(built / "training" / "calib" / f"{frame}.txt")["P2"]
        np.testing.assert_allclose(p2, camera_matrix(TINY), rtol=1e-9)
        for obj in read_label_file(built / "training" / "label_2" / f"{frame}.txt"):
            points = project(p2, box_corners(np.array(obj.dimensions), np.array(obj.location), obj.rotation_y))
            full = np.array([*points.min(axis=0), *points.max(axis=0)])
            clipped = np.clip(full, 0, [TINY.width, TINY.height] * 2)
            np.testing.assert_allclose(obj.box, clipped, atol=0.01)
            if obj.truncated == 0:
                np.testing.assert_allclose(obj.box, full, atol=1.0)
                checked += 1
            x, y, z = obj.location
            assert -math.pi <= obj.rotation_y <= math.pi and -math.pi <= obj.alpha <= math.pi
            assert y == pytest.approx(TINY.camera_height) and obj.occluded in (0, 1, 2)
            diff = obj.alpha - (obj.rotation_y - math.atan2(x, z))
            assert abs(math.remainder(diff, 2 * math.pi)) <= 0.011
            assert obj.box[3] - obj.box[1] >= TINY.min_box_height - 0.01
    assert checked >= 5


def test_deterministic(built: Path, tmp_path: Path) -> None:
    again = build_shapes3d(tmp_path, TINY, progress=False)
    files = sorted(p.relative_to(built) for p in built.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in files:
        assert (built / name).read_bytes() == (again / name).read_bytes(), name


def test_read_back(built: Path) -> None:
    split = read_kitti(built, "val")
    assert split.problems == [] and split.annotations == ("boxes", "objects3d", "calib") and split.class_names == list(SHAPES3D_CLASSES)
    assert [s.image_id for s in split.samples] == [4, 5]
    for sample in split.samples:
        assert len(sample.boxes) == len(sample.objects3d) == len(sample.labels3d) >= 1
    via_name = load_split("shapes3d", "train", TINY)  # built into the (test) cache on first use
    assert len(via_name.samples) == 4 and via_name.annotations == ("boxes", "objects3d", "calib")
    assert available_splits("shapes3d") == ["train", "val"]


def test_objects_span_depths_classes_and_occlusion() -> None:
    rows = [r for i in range(40) for r in render_image3d(TINY, "train", i)[1]]
    depths = np.array([r.location[2] for r in rows])
    assert depths.min() < 10 and depths.max() > 45
    counts = Counter(r.type for r in rows)
    assert set(counts) == set(SHAPES3D_CLASSES) and counts["Car"] > counts["Cyclist"]
    assert {r.occluded for r in rows} == {0, 1, 2} and any(r.truncated > 0 for r in rows)
    yaws = np.array([r.rotation_y for r in rows])
    assert yaws.min() < -2.5 and yaws.max() > 2.5


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_near_objects_occlude_far_ones() -> None:
    """Occlusion comes from nearer objects only: the nearest object is never occluded, and an occluded one has a
    nearer one overlapping its box."""
    occluded = 0
    for i in range(30):
        _, rows = render_image3d(TINY, "train", i)
        distance = [math.hypot(r.location[0], r.location[2]) for r in rows]
        assert rows[int(np.argmin(distance))].occluded == 0
        for k, row in enumerate(rows):
            if row.occluded:
                occluded += 1
                nearer = [r for j, r in enumerate(rows) if distance[j] < distance[k]]
                assert any(_overlap(row.box, r.box) for r in nearer)
    assert occluded >= 3


def test_config_checks() -> None:
    with pytest.raises(CenterNetError, match="min_depth"):
        build_shapes3d("/nonexistent", replace(TINY, min_depth=70.0))
    with pytest.raises(CenterNetError, match="unknown split"):
        render_image3d(TINY, "test", 0)


@pytest.mark.parametrize("kind", SHAPES3D_CLASSES)
def test_front_and_back_look_different(kind: str) -> None:
    """Turned by pi an all-alike box would draw the same pixels; the front band (headlights, a face) tells them apart."""
    from centernet.data.shapes3d import _FRONT_BAND, _Object, _colours, _draw_object

    p2 = camera_matrix(TINY)
    dims, location = np.array([1.5, 1.6, 3.9]), np.array([0.0, TINY.camera_height, 10.0])
    colours = _colours(np.random.default_rng(0), kind)
    sky = np.zeros(3)
    pictures = {}
    for heading in (math.pi / 2, -math.pi / 2):  # front towards the camera, then the back
        corners = box_corners(dims, location, heading)
        obj = _Object(kind, dims, location, heading, corners, project(p2, corners), (0, 0, 1, 1), 0.0, colours)
        image = np.zeros((TINY.height, TINY.width, 3), np.uint8)
        _draw_object(image, obj, p2, TINY, sky)
        pictures[heading] = image.astype(np.float64)
    facing, away = pictures[math.pi / 2], pictures[-math.pi / 2]
    drawn = (facing.sum(axis=2) > 0) | (away.sum(axis=2) > 0)
    assert drawn.sum() > 500
    assert (np.abs(facing - away).max(axis=2)[drawn] > 20).mean() > 0.03  # not the same picture
    # The front colour shows only when the front faces the camera (distance in RGB, shading aside).
    front = colours[_FRONT_BAND[kind][1]]
    hue = lambda img: img[drawn] / np.maximum(img[drawn].sum(axis=1, keepdims=True), 1)  # noqa: E731
    close = lambda img: (np.abs(hue(img) - front / front.sum()).sum(axis=1) < 0.02).mean()  # noqa: E731
    assert close(facing) > close(away) + 0.02
