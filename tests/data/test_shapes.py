"""Tests for the synthetic "shapes" detection dataset."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

import centernet.data.shapes as shapes
from centernet.data.shapes import (
    SHAPE_CLASSES,
    ShapesConfig,
    build_shapes,
    dataset_dir,
    render_image,
    visible_fractions,
)
from centernet.errors import CenterNetError

SMALL = ShapesConfig(image_size=96, num_train=8, num_val=4, min_size=6.0, seed=3)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small dataset shared by the read-only tests."""
    return build_shapes(tmp_path_factory.mktemp("shapes"), SMALL, progress=False)


def _load(folder: Path, split: str) -> dict:
    return json.loads((folder / "annotations" / f"instances_{split}.json").read_text())


def test_layout_and_coco(built: Path) -> None:
    assert built == dataset_dir(built.parent, SMALL)
    assert (built / "dataset.yaml").is_file()
    assert (built / ".complete").is_file()
    for split, count in (("train", SMALL.num_train), ("val", SMALL.num_val)):
        coco = COCO(str(built / "annotations" / f"instances_{split}.json"))
        assert len(coco.getImgIds()) == count
        cats = coco.loadCats(coco.getCatIds())
        assert [(c["id"], c["name"]) for c in cats] == [
            (i + 1, name) for i, name in enumerate(SHAPE_CLASSES)
        ]
        assert len(SHAPE_CLASSES) >= 4
        for info in coco.loadImgs(coco.getImgIds()):
            image = cv2.imread(str(built / "images" / split / info["file_name"]))
            assert image is not None and image.dtype == np.uint8
            assert image.shape == (info["height"], info["width"], 3)
            assert info["width"] == info["height"] == SMALL.image_size
        for ann in coco.loadAnns(coco.getAnnIds()):
            assert ann["iscrowd"] == 0
            assert ann["area"] == pytest.approx(ann["bbox"][2] * ann["bbox"][3])
            assert all(isinstance(v, float) for v in ann["bbox"])


def test_files_match_render(built: Path) -> None:
    """The PNG on disk is the RGB image render_image returns, boxes included."""
    coco = _load(built, "train")
    image, boxes, category_ids = render_image(SMALL, "train", 2)
    on_disk = cv2.imread(str(built / "images" / "train" / "000002.png"))[:, :, ::-1]
    np.testing.assert_array_equal(on_disk, image)
    anns = [a for a in coco["annotations"] if a["image_id"] == 3]
    assert [a["bbox"] for a in anns] == boxes.tolist()
    assert [a["category_id"] for a in anns] == category_ids.tolist()


def test_deterministic(tmp_path: Path) -> None:
    a = build_shapes(tmp_path / "a", SMALL, progress=False)
    b = build_shapes(tmp_path / "b", SMALL, progress=False)
    for split in ("train", "val"):
        name = f"annotations/instances_{split}.json"
        assert (a / name).read_bytes() == (b / name).read_bytes()
        for png in sorted((a / "images" / split).glob("*.png")):
            assert png.read_bytes() == (b / "images" / split / png.name).read_bytes()

    other = replace(SMALL, seed=SMALL.seed + 1)
    c = build_shapes(tmp_path / "a", other, progress=False)
    assert c != a
    assert _load(c, "train") != _load(a, "train")
    first = cv2.imread(str(a / "images/train/000000.png"))
    assert not np.array_equal(first, cv2.imread(str(c / "images/train/000000.png")))


def test_images_independent_of_split_and_order() -> None:
    img_a, boxes_a, _ = render_image(SMALL, "train", 5)
    img_b, boxes_b, _ = render_image(SMALL, "train", 5)
    np.testing.assert_array_equal(img_a, img_b)
    np.testing.assert_array_equal(boxes_a, boxes_b)
    img_val, _, _ = render_image(SMALL, "val", 5)
    assert not np.array_equal(img_a, img_val)


def test_boxes_inside_and_sized(built: Path) -> None:
    size = SMALL.image_size
    for split in ("train", "val"):
        for ann in _load(built, split)["annotations"]:
            x, y, w, h = ann["bbox"]
            assert w > 0 and h > 0
            assert x >= 0 and y >= 0 and x + w <= size and y + h <= size
            assert max(w, h) <= SMALL.max_size
            touches_border = x == 0 or y == 0 or x + w == size or y + h == size
            if not touches_border:
                assert min(w, h) >= SMALL.min_size


def test_shape_fills_its_box() -> None:
    """For the last-drawn (unoccluded) object of a few images, pixels of the shape's
    colour fill a good part of its box, span most of it and stay inside it."""
    cfg = ShapesConfig(image_size=128, num_train=8, num_val=0, seed=7)
    checked = 0
    for index in range(8):
        image, boxes, _ = render_image(cfg, "train", index)
        x, y, w, h = boxes[-1].astype(int)
        if min(w, h) < 10:
            continue
        centre = image[y + h // 3 : y + 2 * h // 3, x + w // 3 : x + 2 * w // 3]
        colour = np.median(centre.reshape(-1, 3), axis=0)  # the shape's fill colour
        # Look a little beyond the box: the fill-coloured pixels must span the box.
        pad = 4
        x0, y0 = max(x - pad, 0), max(y - pad, 0)
        window = image[y0 : y + h + pad, x0 : x + w + pad].astype(float)
        near = np.linalg.norm(window - colour, axis=-1) < 40  # (h', w') bool
        assert near[y - y0 : y - y0 + h, x - x0 : x - x0 + w].mean() > 0.25
        rows, cols = np.nonzero(near)
        left, top = x0 + cols.min(), y0 + rows.min()
        right, bottom = x0 + cols.max() + 1, y0 + rows.max() + 1
        # Nothing of the shape's colour beyond the box (1 pixel of slack) ...
        assert left >= x - 1 and top >= y - 1 and right <= x + w + 1 and bottom <= y + h + 1
        # ... and the coloured pixels span most of it (star tips are thin and faint).
        assert right - left >= 0.6 * w and bottom - top >= 0.6 * h
        checked += 1
    assert checked >= 3


def test_box_matches_drawn_pixels_exactly() -> None:
    """On a flat image before noise, the box is exactly the extent of the pixels the
    fill paints at least half way (fainter anti-aliased fringes are left out)."""
    rng = np.random.default_rng(0)
    for name in SHAPE_CLASSES:
        for angle in (0.0, 0.3, 1.1):
            image = np.full((64, 64, 3), 40, np.uint8)
            owner = np.zeros((64, 64), np.int16)
            polygon = shapes._rotate(shapes._unit_polygon(name, 1.2, 0.45), angle) * 30
            raster = shapes._rasterise(polygon + 32, outline=False)
            placed = shapes._try_commit(rng, raster, 1, image, owner, [])
            assert placed is not None
            change = np.abs(image.astype(float) - 40)  # (64, 64, 3)
            channel = int(change.max(axis=(0, 1)).argmax())
            coverage = change[:, :, channel] / change[:, :, channel].max()  # 0..1
            x, y, w, h = (int(v) for v in placed.box)
            inside = np.zeros((64, 64), bool)
            inside[y : y + h, x : x + w] = True
            assert coverage[~inside].max() < 0.52  # nothing solid outside the box
            assert coverage[y, x : x + w].max() > 0.48  # each side touches the shape
            assert coverage[y + h - 1, x : x + w].max() > 0.48
            assert coverage[y : y + h, x].max() > 0.48
            assert coverage[y : y + h, x + w - 1].max() > 0.48


def test_visible_fractions_follow_the_occlusion_rule() -> None:
    """One fraction per box, in [0.5, 1] (no object keeps less than half of itself), the last object drawn
    always whole, and some objects in a set really covered."""
    cfg = ShapesConfig(image_size=96, mean_objects=6.0, seed=5)
    fractions = []
    for index in range(20):
        _, boxes, _ = render_image(cfg, "val", index)
        visible = visible_fractions(cfg, "val", index)
        assert visible.shape == (len(boxes),) and visible[-1] == 1.0
        fractions.extend(visible.tolist())
    assert min(fractions) >= 0.5 and max(fractions) == 1.0 and np.mean(np.array(fractions) < 0.9) > 0.05


def test_cached(tmp_path: Path) -> None:
    cfg = ShapesConfig(image_size=64, num_train=3, num_val=1, seed=1)
    first = build_shapes(tmp_path, cfg, progress=False)
    marker = first / ".complete"
    stamp = marker.stat().st_mtime_ns
    json_stamp = (first / "annotations/instances_train.json").stat().st_mtime_ns
    second = build_shapes(tmp_path, cfg, progress=False)
    assert second == first
    assert marker.stat().st_mtime_ns == stamp
    assert (first / "annotations/instances_train.json").stat().st_mtime_ns == json_stamp
    # Only the finished folder remains: no temporary folders left behind.
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


def test_incomplete_folder_is_rebuilt(tmp_path: Path) -> None:
    cfg = ShapesConfig(image_size=64, num_train=2, num_val=1, seed=2)
    stale = dataset_dir(tmp_path, cfg)
    (stale / "images").mkdir(parents=True)  # an interrupted build, no marker
    built = build_shapes(tmp_path, cfg, progress=False)
    assert built == stale
    assert (built / ".complete").is_file()
    assert len(list((built / "images" / "train").glob("*.png"))) == 2


def test_object_statistics() -> None:
    cfg = ShapesConfig(image_size=64, min_size=4.0, mean_objects=4.0, seed=11)
    counts = []
    classes: set[int] = set()
    for index in range(50):
        _, boxes, category_ids = render_image(cfg, "train", index)
        counts.append(len(boxes))
        classes.update(category_ids.tolist())
    assert 0.75 * cfg.mean_objects <= np.mean(counts) <= 1.25 * cfg.mean_objects
    assert min(counts) >= 1
    assert classes == set(range(1, len(SHAPE_CLASSES) + 1))


def test_bad_settings() -> None:
    with pytest.raises(CenterNetError, match="image_size"):
        build_shapes("unused", ShapesConfig(image_size=8), progress=False)
    with pytest.raises(CenterNetError, match="mean_objects"):
        ShapesConfig(mean_objects=0.5).validate()
    with pytest.raises(CenterNetError, match="split"):
        render_image(SMALL, "test", 0)


def test_failed_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that dies midway leaves no folder that could pass for a finished one."""

    real = shapes.render_image

    def failing(cfg: ShapesConfig, split: str, index: int) -> tuple:
        if index == 2:
            raise RuntimeError("boom")
        return real(cfg, split, index)

    monkeypatch.setattr(shapes, "render_image", failing)
    cfg = ShapesConfig(image_size=64, num_train=4, num_val=1, seed=4)
    with pytest.raises(RuntimeError, match="boom"):
        build_shapes(tmp_path, cfg, progress=False)
    assert list(tmp_path.iterdir()) == []
