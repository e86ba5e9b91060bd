"""Dataset readers: COCO json, YOLO txt + data.yaml, Pascal VOC xml, and format detection.

One tiny dataset (three images drawn with cv2, one of them background) is written in
all three formats; every reader must produce the same boxes and labels.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from centernet.data import available_splits, detect_format, load_split, read_split
from centernet.data.voc import read_voc
from centernet.data.yolo import label_path
from centernet.errors import CenterNetError
from conftest import SHARED_DATA

CLASSES = ["circle", "square"]
# name -> (width, height, [(x1, y1, x2, y2, class)]) in 0-based pixels; integers so VOC can hold them exactly.
IMAGES: dict[str, tuple[int, int, list[tuple[int, int, int, int, str]]]] = {
    "a.jpg": (64, 48, [(4, 6, 30, 40, "circle"), (35, 10, 60, 30, "square")]),
    "b.png": (50, 40, [(10, 12, 20, 25, "square")]),
    "c.jpg": (40, 40, []),  # background: no objects
}


def draw_images(folder: Path) -> None:
    """Write IMAGES into ``folder``: grey canvas, each box filled (a circle or a square)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (w, h, boxes) in IMAGES.items():
        image = np.full((h, w, 3), 90, np.uint8)
        for x1, y1, x2, y2, cls in boxes:
            if cls == "circle":
                cv2.ellipse(image, ((x1 + x2) // 2, (y1 + y2) // 2), ((x2 - x1) // 2, (y2 - y1) // 2), 0, 0, 360,
                            (20, 200, 20), -1)
            else:
                cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), (200, 20, 20), -1)
        assert cv2.imwrite(str(folder / name), image)


def write_coco(root: Path, split: str = "train") -> Path:
    """COCO layout: annotations/instances_<split>.json + images/<split>/; category ids 1, 2."""
    draw_images(root / "images" / split)
    images, annotations = [], []
    for image_id, (name, (w, h, boxes)) in enumerate(IMAGES.items(), start=1):
        images.append({"id": image_id, "file_name": name, "width": w, "height": h})
        for x1, y1, x2, y2, cls in boxes:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": CLASSES.index(cls) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                                "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    path = root / "annotations" / f"instances_{split}.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def yolo_line(box: tuple[int, int, int, int, str], w: int, h: int) -> str:
    x1, y1, x2, y2, cls = box
    return f"{CLASSES.index(cls)} {(x1 + x2) / 2 / w:.10f} {(y1 + y2) / 2 / h:.10f} {(x2 - x1) / w:.10f} {(y2 - y1) / h:.10f}"


def write_yolo(root: Path, names: object = CLASSES, split: str = "train") -> Path:
    """YOLO layout: data.yaml + images/<split>/ + labels/<split>/ (no label file for the background image)."""
    draw_images(root / "images" / split)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    for name, (w, h, boxes) in IMAGES.items():
        if boxes:
            lines = [yolo_line(b, w, h) for b in boxes]
            (root / "labels" / split / name).with_suffix(".txt").write_text("\n".join(lines) + "\n")
    config = {"path": str(root), split: f"images/{split}", "val": f"images/{split}", "names": names}
    (root / "data.yaml").write_text(yaml.safe_dump(config))
    return root / "data.yaml"


def voc_xml(name: str, w: int, h: int, objects: list[tuple[int, int, int, int, str, int]]) -> str:
    """A VOC annotation; objects are 1-based inclusive boxes (xmin, ymin, xmax, ymax, class, difficult)."""
    body = "".join(
        f"<object><name>{cls}</name><difficult>{difficult}</difficult><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
        f"<xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>"
        for a, b, c, d, cls, difficult in objects
    )
    return (f"<annotation><filename>{name}</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>3</depth></size>{body}</annotation>")


def write_voc(root: Path, split: str = "train") -> Path:
    """VOC layout; pixel box (x1, y1, x2, y2) is written as xmin=x1+1, ymin=y1+1, xmax=x2, ymax=y2."""
    draw_images(root / "JPEGImages")
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for name, (w, h, boxes) in IMAGES.items():
        objects = [(x1 + 1, y1 + 1, x2, y2, cls, 0) for x1, y1, x2, y2, cls in boxes]
        (root / "Annotations" / f"{Path(name).stem}.xml").write_text(voc_xml(name, w, h, objects))
    (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(Path(n).stem for n in IMAGES) + "\n")
    return root


def by_name(split) -> dict[str, tuple[np.ndarray, np.ndarray, tuple[int, int]]]:
    return {s.image_path.name: (s.boxes, s.labels, (s.width, s.height)) for s in split.samples}


def assert_matches_images(split) -> None:
    """``split`` holds exactly IMAGES (boxes within 1e-4 px, labels in CLASSES order)."""
    assert split.class_names == CLASSES
    got = by_name(split)
    assert sorted(got) == sorted(IMAGES)
    for name, (w, h, boxes) in IMAGES.items():
        got_boxes, got_labels, size = got[name]
        assert size == (w, h)
        expected = np.array([b[:4] for b in boxes], np.float32).reshape(-1, 4)
        np.testing.assert_allclose(got_boxes, expected, atol=1e-4)
        assert got_labels.tolist() == [CLASSES.index(b[4]) for b in boxes]
        assert got_boxes.dtype == np.float32 and got_labels.dtype == np.int64


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc"])
def test_every_format_reads_the_same_samples(tmp_path, fmt):
    {"coco": write_coco, "yolo": write_yolo, "voc": write_voc}[fmt](tmp_path)
    split = load_split(tmp_path, "train")
    assert_matches_images(split)
    assert split.problems == [] and split.dropped_boxes == 0
    assert len({s.image_id for s in split.samples}) == 3


def test_yolo_names_as_dict_and_string_keys(tmp_path):
    write_yolo(tmp_path / "a", names={0: "circle", 1: "square"})
    assert_matches_images(load_split(tmp_path / "a" / "data.yaml", "train"))
    write_yolo(tmp_path / "b", names={"1": "square", "0": "circle"})
    split = load_split(tmp_path / "b", "train")
    assert_matches_images(split)
    assert split.category_ids == [0, 1]


def test_yolo_ultralytics_yaml_relative_path_lists_and_txt(tmp_path):
    root = tmp_path / "datasets" / "tiny"
    write_yolo(root)
    (root / "data.yaml").unlink()
    (root / "train.txt").write_text("./images/train/a.jpg\n./images/train/b.png\n\nimages/train/c.jpg\n")
    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    config = {"path": "../datasets/tiny", "train": "train.txt", "val": ["images/train"], "test": None,
              "names": {0: "circle", 1: "square"}}
    (config_dir / "tiny.yml").write_text(yaml.safe_dump(config))
    assert detect_format(config_dir / "tiny.yml") == "yolo"
    assert_matches_images(load_split(config_dir / "tiny.yml", "train"))
    assert_matches_images(load_split(config_dir / "tiny.yml", "val"))
    assert available_splits(config_dir / "tiny.yml") == ["train", "val"]
    with pytest.raises(CenterNetError, match=r"no split 'test' \(splits defined: train, val\)"):
        load_split(config_dir / "tiny.yml", "test")


def test_yolo_background_image_is_kept(tmp_path):
    write_yolo(tmp_path)
    split = load_split(tmp_path, "train")
    assert not label_path(tmp_path / "images" / "train" / "c.jpg").exists()
    background = [s for s in split.samples if len(s.boxes) == 0]
    assert [s.image_path.name for s in background] == ["c.jpg"]
    from centernet.data.check import check_split

    assert check_split(split, verify_images=False, progress=False).background_images == 1


def test_label_path_replaces_last_images_component():
    assert label_path(Path("/d/images/x/images/train/a.jpg")) == Path("/d/images/x/labels/train/a.txt")
    assert label_path(Path("/d/pics/a.png")) == Path("/d/pics/a.txt")
    assert label_path(Path("/d/images/images.jpg")) == Path("/d/labels/images.txt")


def test_voc_difficult_is_ignore_region_and_class_list(tmp_path):
    write_voc(tmp_path)
    xml = voc_xml("a.jpg", 64, 48, [(5, 7, 30, 40, "circle", 0), (36, 11, 60, 30, "square", 1)])
    (tmp_path / "Annotations" / "a.xml").write_text(xml)
    (tmp_path / "Annotations" / "extra.xml").write_text(voc_xml("z.jpg", 9, 9, [(1, 1, 5, 5, "triangle", 0)]))
    split = load_split(tmp_path, "train")
    assert split.class_names == ["circle", "square", "triangle"]  # sorted, over the whole Annotations folder
    assert split.category_ids == [1, 2, 3]
    sample = by_name(split)["a.jpg"]
    np.testing.assert_allclose(sample[0], [[4, 6, 30, 40]])
    a = next(s for s in split.samples if s.image_path.name == "a.jpg")
    np.testing.assert_allclose(a.ignore_boxes, [[35, 10, 60, 30]])


def test_voc_given_class_list(tmp_path):
    write_voc(tmp_path)
    split = read_voc(tmp_path, "train", class_names=["square", "circle"])
    assert split.class_names == ["square", "circle"]
    assert by_name(split)["a.jpg"][1].tolist() == [1, 0]


def test_coco_crowd_is_ignore_region(tmp_path):
    path = write_coco(tmp_path)
    data = json.loads(path.read_text())
    data["annotations"].append({"id": 99, "image_id": 3, "category_id": 1, "bbox": [2, 3, 10, 10], "iscrowd": 1})
    path.write_text(json.dumps(data))
    split = load_split(tmp_path, "train")
    c = next(s for s in split.samples if s.image_path.name == "c.jpg")
    assert len(c.boxes) == 0
    np.testing.assert_allclose(c.ignore_boxes, [[2, 3, 12, 13]])


def test_coco_category_ids_mapped_to_contiguous_labels(tmp_path):
    path = write_coco(tmp_path)
    data = json.loads(path.read_text())
    data["categories"] = [{"id": 9, "name": "nine"}, {"id": 3, "name": "three"}, {"id": 7, "name": "seven"}]
    for ann, cid in zip(data["annotations"], [3, 7, 9]):
        ann["category_id"] = cid
    path.write_text(json.dumps(data))
    split = load_split(path, "train")  # a json file: images found in ../images/train
    assert split.category_ids == [3, 7, 9]
    assert split.class_names == ["three", "seven", "nine"]
    labels = sorted(label for s in split.samples for label in s.labels.tolist())
    assert labels == [0, 1, 2]


def test_format_detection(tmp_path):
    write_coco(tmp_path / "coco")
    write_yolo(tmp_path / "yolo")
    write_voc(tmp_path / "voc")
    assert detect_format(tmp_path / "coco") == "coco"
    assert detect_format(tmp_path / "coco" / "annotations" / "instances_train.json") == "coco"
    assert detect_format(tmp_path / "yolo") == "yolo"
    assert detect_format(tmp_path / "yolo" / "data.yaml") == "yolo"
    assert detect_format(tmp_path / "voc") == "voc"
    assert available_splits(tmp_path / "voc") == ["train"]
    assert available_splits(tmp_path / "coco") == ["train"]


def test_unknown_layout_and_missing_split_are_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CenterNetError, match="has no known layout; expected a YOLO data.yaml") as e:
        load_split(tmp_path / "empty", "train")
    assert str(tmp_path / "empty") in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(CenterNetError, match="neither a .yaml"):
        load_split(tmp_path / "notes.txt")
    with pytest.raises(CenterNetError, match="does not exist"):
        load_split(tmp_path / "nowhere")
    write_coco(tmp_path / "coco")
    with pytest.raises(CenterNetError, match=r"no split 'val'.*splits found: train"):
        load_split(tmp_path / "coco", "val")
    write_voc(tmp_path / "voc")
    with pytest.raises(CenterNetError, match=r"no split 'test'.*splits found: train"):
        load_split(tmp_path / "voc", "test")
    write_yolo(tmp_path / "yolo")
    with pytest.raises(CenterNetError, match=r"no split 'test'"):
        load_split(tmp_path / "yolo", "test")


def test_split_without_valid_images_is_an_error(tmp_path):
    write_yolo(tmp_path)
    (tmp_path / "list.txt").write_text("images/train/gone.jpg\n")
    config = yaml.safe_load((tmp_path / "data.yaml").read_text())
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({**config, "train": "list.txt"}))
    assert read_split(tmp_path, "train").samples == []  # the check reads it
    with pytest.raises(CenterNetError, match=r"split 'train' has no valid images: 1 of 1 listed images are missing"):
        load_split(tmp_path, "train")


needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"real datasets folder {SHARED_DATA} is absent")


@needs_shared
def test_coco128_yolo_and_json_read_the_same_boxes():
    yolo = load_split(SHARED_DATA / "coco128", "train")
    coco = load_split(SHARED_DATA / "coco128" / "annotations" / "instances_train2017.json", "train")
    assert len(yolo.samples) == len(coco.samples) == 128
    assert yolo.class_names == coco.class_names and len(yolo.class_names) == 80
    from_json = {s.image_path.name: s for s in coco.samples}
    for s in yolo.samples:
        other = from_json[s.image_path.name]
        assert (s.width, s.height) == (other.width, other.height)
        assert len(s.boxes) == len(other.boxes)
        if len(s.boxes):  # each YOLO box has a json box within 0.01 px (6-decimal rounding), same label
            distance = np.abs(s.boxes[:, None, :] - other.boxes[None, :, :]).max(axis=2)  # (N, N) px
            nearest = distance.argmin(axis=1)
            assert distance.min(axis=1).max() < 0.01
            assert s.labels.tolist() == other.labels[nearest].tolist()
    assert sum(len(s.ignore_boxes) for s in coco.samples) == 10


def test_yolo_roboflow_style_parent_paths(tmp_path):
    write_yolo(tmp_path)
    config = yaml.safe_load((tmp_path / "data.yaml").read_text())
    del config["path"]
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({**config, "train": "../images/train"}))
    assert_matches_images(load_split(tmp_path, "train"))
