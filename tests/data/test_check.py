"""Dataset problems: every kind is counted and reported, never silent, never a crash; and ``check``."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from centernet.data import load_split, read_split
from centernet.data.check import check_split, format_report, run_check, valid_samples
from centernet.data.samples import PROBLEM_KINDS, DatasetProblem, DatasetSplit
from centernet.data.voc import read_voc
from conftest import SHARED_DATA

needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"real datasets folder {SHARED_DATA} is absent")


def write_image(path: Path, width: int = 32, height: int = 24) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


def kinds(problems: list[DatasetProblem]) -> list[str]:
    return sorted(p.kind for p in problems)


# --- COCO ------------------------------------------------------------------------------------------


def write_coco(root: Path, images: list[dict], annotations: list[dict], categories=None) -> Path:
    """annotations/instances_train.json + images/train/ (image files written for the entries whose name has no
    'gone')."""
    for entry in images:
        if "gone" not in entry["file_name"] and not (root / "images" / "train" / entry["file_name"]).exists():
            write_image(root / "images" / "train" / entry["file_name"], 32, 24)
    categories = categories or [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    path = root / "annotations" / "instances_train.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def image(image_id: int, name: str, width: int = 32, height: int = 24) -> dict:
    return {"id": image_id, "file_name": name, "width": width, "height": height}


def ann(ann_id: int, image_id: int, bbox: list, category_id: int = 1, crowd: int = 0) -> dict:
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": bbox, "iscrowd": crowd}


def test_coco_problems_are_reported_and_valid_data_kept(tmp_path):
    images = [image(1, "a.jpg"), image(2, "b.jpg"), image(1, "again.jpg"), image(3, "b.jpg"), image(4, "gone.jpg")]
    annotations = [
        ann(1, 1, [2, 2, 10, 10]),              # fine
        ann(2, 1, [25, 4, 20, 10], 2),          # outside on the right: clipped to x2 = 32
        ann(3, 1, [10, 10, -5, 4]),             # x2 < x1: zero area
        ann(4, 1, [1, 1, 5, 5], category_id=42),  # category not in the json
        ann(5, 2, [1, "x", 2, 2]),              # malformed bbox
        ann(6, 2, [1, float("nan"), 2, 2]),     # NaN
        ann(7, 99, [1, 1, 2, 2]),               # image id not listed
        ann(8, 2, [40, 30, 5, 5]),              # entirely outside: zero area after clipping
    ]
    write_coco(tmp_path, images, annotations)
    split = load_split(tmp_path, "train")
    assert [s.image_path.name for s in split.samples] == ["a.jpg", "b.jpg"]
    a = split.samples[0]
    np.testing.assert_allclose(a.boxes, [[2, 2, 12, 12], [25, 4, 32, 14]])
    assert a.labels.tolist() == [0, 1]
    assert kinds(split.problems) == sorted([
        "box_clipped", "zero_area", "unknown_class", "malformed_label", "malformed_label",
        "orphan_annotation", "zero_area", "duplicate_image", "duplicate_image", "missing_image",
    ])
    assert split.dropped_boxes == 3  # 2 zero area + 1 unknown class
    unknown = next(p for p in split.problems if p.kind == "unknown_class")
    assert "category id 42" in unknown.message and unknown.file.endswith("instances_train.json")
    missing = next(p for p in split.problems if p.kind == "missing_image")
    assert missing.file.endswith("gone.jpg")
    for p in split.problems:
        assert p.kind in PROBLEM_KINDS and "\n" not in p.message


def test_coco_every_image_missing_is_still_an_error_at_load(tmp_path):
    from centernet.errors import CenterNetError

    write_coco(tmp_path, [image(1, "gone.jpg")], [])
    with pytest.raises(CenterNetError, match="1 of 1 listed images are missing, first .*gone.jpg"):
        load_split(tmp_path, "train")
    assert kinds(read_split(tmp_path, "train").problems) == ["missing_image"]


# --- images ----------------------------------------------------------------------------------------


def test_image_checks_truncated_empty_mismatch_and_valid_samples(tmp_path):
    write_image(tmp_path / "images" / "train" / "cut.jpg", 64, 48)
    data = (tmp_path / "images" / "train" / "cut.jpg").read_bytes()
    (tmp_path / "images" / "train" / "cut.jpg").write_bytes(data[: len(data) // 2])
    write_image(tmp_path / "images" / "train" / "padded.jpg", 32, 24)
    with open(tmp_path / "images" / "train" / "padded.jpg", "ab") as f:
        f.write(b"\x00" * 100 + b"\n")  # trailing padding after EOI is fine
    write_image(tmp_path / "images" / "train" / "cut.png", 32, 24)
    data = (tmp_path / "images" / "train" / "cut.png").read_bytes()
    (tmp_path / "images" / "train" / "cut.png").write_bytes(data[:-12])  # IEND chunk gone
    (tmp_path / "images" / "train" / "empty.jpg").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "images" / "train" / "empty.jpg").write_bytes(b"")
    (tmp_path / "images" / "train" / "text.jpg").write_text("not an image")
    write_image(tmp_path / "images" / "train" / "small.jpg", 20, 10)
    images = [image(1, "ok.jpg"), image(2, "cut.jpg", 64, 48), image(3, "padded.jpg"), image(4, "cut.png"),
              image(5, "empty.jpg"), image(6, "text.jpg"), image(7, "small.jpg")]
    write_coco(tmp_path, images, [ann(1, 2, [1, 1, 10, 10]), ann(2, 1, [1, 1, 4, 4])])
    split = load_split(tmp_path, "train")
    assert len(split.samples) == 7 and split.problems == []  # the readers do not decode images
    report = check_split(split, verify_images=True, progress=False)
    by_file = {Path(p.file).name: p.kind for p in report.problems}
    assert by_file == {"cut.jpg": "truncated_image", "cut.png": "truncated_image", "empty.jpg": "unreadable_image",
                       "text.jpg": "unreadable_image", "small.jpg": "size_mismatch"}
    assert "decoded 20x10, annotations say 32x24" in next(p.message for p in report.problems
                                                          if p.kind == "size_mismatch")
    valid = valid_samples(split, report)
    assert [s.image_path.name for s in valid.samples] == ["ok.jpg", "padded.jpg"]
    assert valid.class_names == split.class_names and len(valid.problems) == 5
    unchecked = check_split(split, verify_images=False, progress=False)
    assert unchecked.problems == [] and valid_samples(split, unchecked).samples == split.samples


# --- YOLO ------------------------------------------------------------------------------------------


def write_yolo(root: Path, labels: dict[str, str], names=("a", "b"), train: object = "images/train") -> Path:
    """data.yaml + images/train/<name>.jpg (32x24) + labels/train/<name>.txt for each entry (None: no file)."""
    for name, text in labels.items():
        write_image(root / "images" / "train" / f"{name}.jpg")
        if text is not None:
            (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
            (root / "labels" / "train" / f"{name}.txt").write_text(text)
    (root / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": train, "names": list(names)}))
    return root / "data.yaml"


def test_yolo_problems_with_file_and_line(tmp_path):
    text = "\n".join([
        "0 0.5 0.5 0.5 0.5",          # 1: fine -> [8, 6, 24, 18]
        "0 0.5 0.5 0.5",              # 2: 4 fields
        "1 0.5 nan 0.2 0.2",          # 3: NaN
        "1 0.5 0.5 -0.2 0.2",         # 4: negative width: x2 < x1
        "1 0.95 0.5 0.2 0.2",         # 5: outside on the right: clipped
        "7 0.5 0.5 0.2 0.2",          # 6: class 7 with 2 names
        "a 0.5 0.5 0.2 0.2",          # 7: not a number
        "",                           # 8: blank lines are fine
        "1.5 0.5 0.5 0.2 0.2",        # 9: not a class index
    ])
    write_yolo(tmp_path, {"img": text, "bg": None})
    split = load_split(tmp_path, "train")
    sample = next(s for s in split.samples if s.image_path.name == "img.jpg")
    np.testing.assert_allclose(sample.boxes, [[8, 6, 24, 18], [27.2, 9.6, 32, 14.4]], atol=1e-4)
    at = {p.line: p.kind for p in split.problems}
    assert at == {2: "malformed_label", 3: "malformed_label", 4: "zero_area", 5: "box_clipped",
                  6: "unknown_class", 7: "malformed_label", 9: "malformed_label"}
    assert all(p.file == str(tmp_path / "labels" / "train" / "img.txt") for p in split.problems)
    assert "expected 5 fields" in next(p.message for p in split.problems if p.line == 2)
    report = check_split(split, verify_images=False, progress=False)
    assert (report.images, report.background_images, report.kept_boxes, report.boxes) == (2, 1, 2, 4)
    assert report.boxes_per_class == {"a": 1, "b": 1}


def test_yolo_duplicate_missing_and_unreadable_images(tmp_path):
    write_yolo(tmp_path, {"x": "0 0.5 0.5 0.2 0.2\n", "y": None}, train="list.txt")
    (tmp_path / "images" / "train" / "zero.jpg").write_bytes(b"")
    (tmp_path / "list.txt").write_text("images/train/x.jpg\nimages/train/y.jpg\n./images/train/x.jpg\n"
                                       "images/train/gone.jpg\nimages/train/zero.jpg\n")
    split = load_split(tmp_path, "train")
    assert [s.image_path.name for s in split.samples] == ["x.jpg", "y.jpg"]
    at = {(Path(p.file).name, p.line): p.kind for p in split.problems}
    assert at == {("list.txt", 3): "duplicate_image", ("list.txt", 4): "missing_image",
                  ("zero.jpg", None): "unreadable_image"}


def test_yolo_same_folder_twice_is_duplicates(tmp_path):
    write_yolo(tmp_path, {"x": "0 0.5 0.5 0.2 0.2\n"}, train=["images/train", "images/train"])
    split = load_split(tmp_path, "train")
    assert len(split.samples) == 1 and kinds(split.problems) == ["duplicate_image"]


# --- VOC -------------------------------------------------------------------------------------------


def voc_object(name: str, box: tuple, difficult: int = 0) -> str:
    xmin, ymin, xmax, ymax = box
    return (f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{xmin}</xmin>"
            f"<ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")


def write_voc(root: Path, xmls: dict[str, str], ids: list[str] | None = None) -> Path:
    """One 32x24 JPEG per xml, the xml bodies wrapped in <annotation> with a <size>, split 'train'."""
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for key, body in xmls.items():
        write_image(root / "JPEGImages" / f"{key}.jpg")
        text = body if body.startswith("<?xml") or body.startswith("<!") else (
            f"<annotation><size><width>32</width><height>24</height></size>{body}</annotation>")
        (root / "Annotations" / f"{key}.xml").write_text(text)
    (root / "ImageSets" / "Main" / "train.txt").write_text("\n".join(ids or list(xmls)) + "\n")
    return root


def test_voc_entity_declaration_is_bad_xml_never_expanded(tmp_path):
    evil = ('<?xml version="1.0"?>\n<!DOCTYPE foo [<!ENTITY x "RBC">]>\n<annotation><size><width>32</width>'
            '<height>24</height></size>' + voc_object("&x;", (2, 2, 9, 9)) + "</annotation>")
    write_voc(tmp_path, {"good": voc_object("WBC", (2, 2, 9, 9)), "evil": evil, "broken": "<annotation><size>"})
    split = load_split(tmp_path, "train")
    assert split.class_names == ["WBC"]  # 'RBC' from the entity never appears
    assert [s.image_path.name for s in split.samples] == ["good.jpg"]
    bad = {Path(p.file).name: p for p in split.problems}
    assert sorted(bad) == ["broken.xml", "evil.xml"] and {p.kind for p in bad.values()} == {"bad_xml"}
    assert "forbidden" in bad["evil.xml"].message and "EntitiesForbidden" in bad["evil.xml"].message


def test_voc_problems(tmp_path):
    objects = "".join([
        voc_object("a", (1, 1, 10, 10)),            # fine -> [0, 0, 10, 10]
        voc_object("a", (5, 5, 3, 9)),              # xmax < xmin
        voc_object("b", (20, 10, 40, 30)),          # outside: clipped to 32x24
        voc_object("zzz", (1, 1, 4, 4)),            # not in the given class list
        voc_object("b", (2, 2, 6, 6), difficult=1), # ignore region
        "<object><name>a</name><bndbox><xmin>q</xmin></bndbox></object>",
    ])
    write_voc(tmp_path, {"one": objects, "two": ""}, ids=["one", "two", "one", "gone", "three"])
    (tmp_path / "JPEGImages" / "three.jpg").write_bytes(b"")  # an image whose xml is missing
    split = read_voc(tmp_path, "train", class_names=["a", "b"])
    one = split.samples[0]
    np.testing.assert_allclose(one.boxes, [[0, 0, 10, 10], [19, 9, 32, 24]])
    np.testing.assert_allclose(one.ignore_boxes, [[1, 1, 6, 6]])
    kinds_at = sorted((p.kind, Path(p.file).name, p.line) for p in split.problems)
    assert kinds_at == [
        ("box_clipped", "one.xml", None), ("duplicate_image", "train.txt", 3),
        ("malformed_label", "one.xml", None), ("missing_annotation", "train.txt", 4),
        ("missing_annotation", "train.txt", 5), ("unknown_class", "one.xml", None), ("zero_area", "one.xml", None),
    ]
    report = check_split(split, verify_images=True, progress=False)
    assert (report.images, report.boxes, report.kept_boxes, report.ignore_regions, report.background_images) == (
        2, 4, 2, 1, 1)


# --- report ----------------------------------------------------------------------------------------


def test_format_report_groups_problems_with_examples(tmp_path):
    lines = "".join("0 0.5 0.5 0.5\n" for _ in range(12)) + "1 0.5 0.5 0.5 0.5\n"
    write_yolo(tmp_path, {"img": lines, "bg": None, "bg2": ""})
    split = load_split(tmp_path, "train")
    report = check_split(split, verify_images=True, progress=False)
    text = format_report(report)
    assert "images             3" in text and "background images  2" in text
    assert "boxes (in files)   1" in text and "32x24 (3 images)" in text
    assert "malformed_label (12)" in text and "... and 2 more" in text
    assert f"{tmp_path / 'labels' / 'train' / 'img.txt'}:1: expected 5 fields" in text
    assert "no boxes: a" in text


def test_run_check_prints_every_split_and_returns_zero(tmp_path, capsys):
    write_yolo(tmp_path, {"img": "0 0.5 0.5 0.5 0.5\n0 0.5 0.5 0.5\n"})
    config = yaml.safe_load((tmp_path / "data.yaml").read_text())
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({**config, "val": "images/train"}))
    assert run_check(str(tmp_path), None, progress=False) == 0
    out = capsys.readouterr().out
    assert "== split train ==" in out and "== split val ==" in out and "malformed_label (1)" in out
    assert run_check(str(tmp_path), ["val"], progress=False) == 0
    assert "== split train ==" not in capsys.readouterr().out


def test_report_of_an_empty_split():
    text = format_report(check_split(DatasetSplit([], ["a"], [1], source="nothing"), progress=False))
    assert "images             0" in text and "Problems: none" in text


# --- real data -------------------------------------------------------------------------------------


def merge(*splits: DatasetSplit) -> DatasetSplit:
    return DatasetSplit([s for sp in splits for s in sp.samples], splits[0].class_names, splits[0].category_ids,
                        source="+".join(sp.source for sp in splits), problems=[p for sp in splits for p in sp.problems],
                        dropped_boxes=sum(sp.dropped_boxes for sp in splits))


@needs_shared
def test_bccd_check_counts_and_the_two_zero_area_boxes():
    root = SHARED_DATA / "bccd"
    split = merge(load_split(root, "trainval"), load_split(root, "test"))
    report = check_split(split, verify_images=True, progress=False)
    assert report.images == 364 and report.boxes == 4888 and report.kept_boxes == 4886
    assert split.class_names == ["Platelets", "RBC", "WBC"]
    assert report.boxes_per_class == {"Platelets": 361, "RBC": 4153, "WBC": 372}  # README's RBC 4,155 less 2
    assert [(Path(p.file).name, p.kind) for p in report.problems] in (
        [("BloodImage_00338.xml", "zero_area"), ("BloodImage_00343.xml", "zero_area")],
        [("BloodImage_00343.xml", "zero_area"), ("BloodImage_00338.xml", "zero_area")],
    )
    assert report.image_sizes == {(640, 480): 364} and report.background_images == 0


@needs_shared
def test_coco128_check_counts():
    root = SHARED_DATA / "coco128"
    train = check_split(load_split(root / "data.yaml", "train"), verify_images=False, progress=False)
    assert (train.images, train.boxes, train.background_images, train.problems) == (128, 929, 2, [])
    val = check_split(load_split(root, "val"), verify_images=False, progress=False)
    assert (val.images, val.boxes, val.problems) == (128, 898, [])
    json_split = load_split(root / "annotations" / "instances_train2017.json", "train")
    from_json = check_split(json_split, verify_images=False, progress=False)
    assert (from_json.images, from_json.boxes, from_json.ignore_regions) == (128, 929, 10)
