"""Fuzzing the COCO, YOLO and VOC readers: whatever a user's files hold, the only exception that
escapes is CenterNetError (one line), and every problem reported has a known kind and a one-line message.

Files are random bytes, random json / yaml / xml, and valid-looking structures with wrong types and
values in them. ``CENTERNET_FUZZ_EXAMPLES`` raises the number of examples per test (default 60) for a
longer hunt.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from centernet.data.check import check_split  # noqa: E402
from centernet.data.coco import read_coco  # noqa: E402
from centernet.data.samples import PROBLEM_KINDS, DatasetSplit  # noqa: E402
from centernet.data.voc import read_voc  # noqa: E402
from centernet.data.yolo import read_yolo  # noqa: E402
from centernet.errors import CenterNetError  # noqa: E402

FUZZ = settings(
    max_examples=int(os.environ.get("CENTERNET_FUZZ_EXAMPLES", "60")),
    deadline=None,
    database=None,  # no saved examples: every run draws afresh
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
IMAGE_NAMES = ["a.jpg", "b.png"]  # written once per module; 32x24 and 20x30


def write_images(folder: Path) -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, (w, h) in zip(IMAGE_NAMES, [(32, 24), (20, 30)]):
        assert cv2.imwrite(str(folder / name), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def assert_reads_or_fails_cleanly(read) -> DatasetSplit | None:
    """Run ``read()``: a DatasetSplit with well-formed problems, or a one-line CenterNetError."""
    try:
        split = read()
    except CenterNetError as e:
        assert "\n" not in str(e), str(e)
        return None
    assert isinstance(split, DatasetSplit)
    for problem in split.problems:
        assert problem.kind in PROBLEM_KINDS, problem
        assert "\n" not in problem.message and "\r" not in problem.message, problem
    for sample in split.samples:
        assert sample.width > 0 and sample.height > 0
        assert sample.boxes.shape == (len(sample.labels), 4) and np.isfinite(sample.boxes).all()
        assert np.isfinite(sample.ignore_boxes).all()
        assert ((sample.labels >= 0) & (sample.labels < split.num_classes)).all()
    check_split(split, verify_images=False, progress=False)
    split.to_coco()
    return split


# --- values --------------------------------------------------------------------------------------

special_numbers = st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -0.0, 2**64, 0.5, True])
numbers = st.one_of(
    st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0, 1, 2, 10, -1]),
    special_numbers,
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                                                 inner, max_size=4),
                           max_leaves=12)


def maybe(strategy, wrong=json_values):
    """Mostly ``strategy``, sometimes any json value or an odd number, sometimes absent (None: left out)."""
    return st.one_of(strategy, strategy, strategy, wrong, special_numbers, st.just(None))


def entry(**fields) -> st.SearchStrategy:
    """A dict with these keys (a key whose value came out None is left out)."""
    return st.fixed_dictionaries(fields).map(lambda d: {k: v for k, v in d.items() if v is not None})


# --- COCO ----------------------------------------------------------------------------------------

coco_image = entry(id=maybe(st.integers(0, 4)), file_name=maybe(st.sampled_from(IMAGE_NAMES + ["gone.jpg", ""])),
                   width=maybe(st.sampled_from([32, 20, 0, -3, 32.0, 1.5])),
                   height=maybe(st.sampled_from([24, 30, 0, 24.5])))
coco_annotation = entry(
    id=maybe(st.integers(0, 9)),
    image_id=maybe(st.integers(0, 4) | st.sampled_from(["1", 1.0, 2.5])),
    category_id=maybe(st.integers(0, 3)),
    bbox=maybe(st.lists(numbers, min_size=3, max_size=5) | st.lists(st.floats(-5, 40), min_size=4, max_size=4)
               | st.sampled_from(["abc", "1234", [1, 2, 3], {"x": 1}])),
    iscrowd=maybe(st.sampled_from([0, 1, True, "0", 2])),
)
coco_category = entry(id=maybe(st.integers(0, 3)), name=maybe(st.text(max_size=6)))
coco_documents = st.one_of(
    st.fixed_dictionaries({
        "images": maybe(st.lists(maybe(coco_image, scalars), max_size=5)),
        "annotations": maybe(st.lists(maybe(coco_annotation, scalars), max_size=8)),
        "categories": maybe(st.lists(coco_category, max_size=3), st.lists(json_values, max_size=2)),
    }),
    json_values,
)


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz_coco")
    write_images(root / "images")
    return root


@FUZZ
@given(document=coco_documents)
def test_coco_json_structures(coco_root, document):
    path = coco_root / "instances.json"
    path.write_text(json.dumps(document, allow_nan=True))
    assert_reads_or_fails_cleanly(lambda: read_coco(path, coco_root / "images"))


VALID_COCO = {
    "images": [{"id": 1, "file_name": "a.jpg", "width": 32, "height": 24},
               {"id": 2, "file_name": "b.png", "width": 20, "height": 30}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10], "iscrowd": 0},
                    {"id": 2, "image_id": 2, "category_id": 2, "bbox": [1, 1, 5, 5], "iscrowd": 1},
                    {"id": 3, "image_id": 2, "category_id": 1, "bbox": [3, 4, 5, 6]}],
    "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
}
COCO_KEYS = ["id", "file_name", "width", "height", "image_id", "category_id", "bbox", "iscrowd", "name", "area"]


@FUZZ
@given(section=st.sampled_from(sorted(VALID_COCO)), index=st.integers(0, 2), key=st.sampled_from(COCO_KEYS),
       value=json_values | special_numbers, whole=st.integers(0, 9))
def test_coco_one_wrong_value(coco_root, section, index, key, value, whole):
    """A valid document with one value replaced: a field of one entry, the entry itself, or the section."""
    document = json.loads(json.dumps(VALID_COCO))
    entries = document[section]
    if whole == 0:
        document[section] = value
    elif whole == 1:
        entries[index % len(entries)] = value
    else:
        entries[index % len(entries)][key] = value
    path = coco_root / "instances.json"
    path.write_text(json.dumps(document, allow_nan=True))
    assert_reads_or_fails_cleanly(lambda: read_coco(path, coco_root / "images"))


@FUZZ
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_coco_random_bytes(coco_root, data):
    path = coco_root / "instances.json"
    path.write_bytes(data)
    assert_reads_or_fails_cleanly(lambda: read_coco(path, coco_root / "images"))


# --- YOLO ----------------------------------------------------------------------------------------

number_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.floats(-0.5, 1.5).map(lambda v: f"{v:.4f}"),
    st.integers(-3, 5).map(str), st.sampled_from(["nan", "inf", "-inf", "1e999", "0x10", "1_0", "", "０.5"]),
)
label_lines = st.one_of(
    st.lists(number_text, min_size=0, max_size=7).map(" ".join),
    st.text(max_size=30),
)
label_files = st.one_of(
    st.lists(label_lines, max_size=6).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")),
    st.binary(max_size=80),
)


@pytest.fixture(scope="module")
def yolo_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz_yolo")
    write_images(root / "images" / "train")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images/train", "names": ["a", "b"]}))
    return root


@FUZZ
@given(labels=st.lists(label_files, min_size=2, max_size=2))
def test_yolo_label_lines(yolo_root, labels):
    for name, data in zip(IMAGE_NAMES, labels):
        (yolo_root / "labels" / "train" / name).with_suffix(".txt").write_bytes(data)
    split = assert_reads_or_fails_cleanly(lambda: read_yolo(yolo_root / "data.yaml", "train"))
    assert split is not None and len(split.samples) + _dropped_label_files(split) == 2


def _dropped_label_files(split: DatasetSplit) -> int:
    return sum("dropped" in p.message and "label file" in p.message for p in split.problems)


yaml_values = st.recursive(
    st.one_of(scalars.filter(lambda v: not (isinstance(v, float) and math.isnan(v))),
              st.sampled_from(["images/train", "../images/train", "list.txt", "~nobody_here/x", "/", "\x00"])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(scalars.filter(lambda v: v == v), inner, max_size=3),
    max_leaves=8,
)
yaml_documents = st.one_of(
    st.fixed_dictionaries({
        "path": maybe(st.sampled_from([".", "", "nowhere", "~"]), yaml_values),
        "train": maybe(st.sampled_from(["images/train", ["images/train", "images/train"], "list.txt"]), yaml_values),
        "names": maybe(st.sampled_from([["a", "b"], {0: "a", 1: "b"}, {"1": "b", "0": "a"}, [], {}]), yaml_values),
        "nc": maybe(st.integers(-1, 3), yaml_values),
    }).map(lambda d: yaml.safe_dump({k: v for k, v in d.items() if v is not None}, allow_unicode=True)),
    yaml_values.map(lambda v: yaml.safe_dump(v, allow_unicode=True)),
    st.text(max_size=80),
    st.sampled_from(["a: 2020-13-45", "train: [[[[[", "names: !!python/object:os.system x", "a: &x [*x]",
                     "names: {.inf: a}", "names: {1.5: a}"]),
)


@FUZZ
@given(key=st.sampled_from(["path", "train", "names", "nc", "val"]), value=yaml_values | special_numbers,
       listing=label_lines)
def test_yolo_yaml_one_wrong_value(yolo_root, key, value, listing):
    config = {"path": ".", "train": "list.txt", "names": ["a", "b"], key: value}
    (yolo_root / "fuzz.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    (yolo_root / "list.txt").write_text(listing + "\nimages/train/a.jpg\n")
    assert_reads_or_fails_cleanly(lambda: read_yolo(yolo_root / "fuzz.yaml", "train"))


@FUZZ
@given(text=yaml_documents, listing=label_lines)
def test_yolo_yaml_documents(yolo_root, text, listing):
    (yolo_root / "fuzz.yaml").write_text(text, errors="surrogatepass")
    (yolo_root / "list.txt").write_text(listing + "\nimages/train/a.jpg\n", errors="surrogatepass")
    assert_reads_or_fails_cleanly(lambda: read_yolo(yolo_root / "fuzz.yaml", "train"))


# --- VOC -----------------------------------------------------------------------------------------

xml_text = st.one_of(number_text, st.text(max_size=10))


def element(tag: str, text: st.SearchStrategy, raw: bool = False) -> st.SearchStrategy:
    """``<tag>text</tag>`` with the text escaped (or, if ``raw``, sometimes not), or nothing."""
    body = text.map(escape) if not raw else st.one_of(text.map(escape), text)
    return st.one_of(body.map(lambda t: f"<{tag}>{t}</{tag}>"), st.just(""))


voc_box = st.tuples(*(element(k, xml_text) for k in ("xmin", "ymin", "xmax", "ymax"))).map(
    lambda parts: "<bndbox>" + "".join(parts) + "</bndbox>")
voc_object = st.tuples(
    element("name", st.sampled_from(["a", "b", " a ", "", "a\nb"]) | st.text(max_size=5)),
    element("difficult", st.sampled_from(["0", "1", "true", "x", "nan", ""])),
    voc_box | st.just(""),
).map(lambda parts: "<object>" + "".join(parts) + "</object>")
voc_documents = st.one_of(
    st.tuples(
        element("filename", st.sampled_from(IMAGE_NAMES + ["", "../x.jpg", "a\x00.jpg", "x" * 300])),
        st.tuples(element("width", xml_text), element("height", xml_text)).map(
            lambda wh: "<size>" + "".join(wh) + "</size>") | st.just(""),
        st.lists(voc_object, max_size=4).map("".join),
    ).map(lambda parts: "<annotation>" + "".join(parts) + "</annotation>"),
    st.text(max_size=80),
    st.sampled_from([
        '<?xml version="1.0" encoding="no-such-codec"?><annotation/>',
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><annotation><object><name>&e;</name></object>'
        "</annotation>",
        "<annotation><size><width>1e999</width><height>-5</height></size></annotation>",
        "<annotation><object><name>a</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>inf</xmax><ymax>9"
        "</ymax></bndbox></object></annotation>",
        "<notvoc/>", "", "<annotation>",
    ]),
)
voc_files = st.one_of(voc_documents.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=120))
split_lists = st.one_of(
    st.lists(st.sampled_from(["a", "b", "a", "missing", "../a", "x" * 300, "a\x00"]) | st.text(max_size=6),
             max_size=5).map("\n".join).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=40),
)


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz_voc")
    write_images(root / "JPEGImages")
    (root / "Annotations").mkdir()
    (root / "ImageSets" / "Main").mkdir(parents=True)
    return root


VALID_VOC = {"filename": "a.jpg", "width": "32", "height": "24", "name": "a", "difficult": "0", "xmin": "2",
             "ymin": "3", "xmax": "20", "ymax": "15"}


def voc_document(fields: dict[str, str]) -> str:
    f = {k: escape(v) for k, v in fields.items()}
    return (f"<annotation><filename>{f['filename']}</filename><size><width>{f['width']}</width>"
            f"<height>{f['height']}</height></size><object><name>{f['name']}</name>"
            f"<difficult>{f['difficult']}</difficult><bndbox><xmin>{f['xmin']}</xmin><ymin>{f['ymin']}</ymin>"
            f"<xmax>{f['xmax']}</xmax><ymax>{f['ymax']}</ymax></bndbox></object></annotation>")


@FUZZ
@given(key=st.sampled_from(sorted(VALID_VOC)), value=xml_text | st.sampled_from(["inf", "1e999", "-inf", "nan"]),
       class_names=st.none() | st.just(["a", "b"]))
def test_voc_one_wrong_value(voc_root, key, value, class_names):
    for name in IMAGE_NAMES:
        text = voc_document({**VALID_VOC, "filename": name, key: value})
        (voc_root / "Annotations" / name).with_suffix(".xml").write_text(text, errors="surrogatepass")
    (voc_root / "ImageSets" / "Main" / "train.txt").write_text("a\nb\n")
    assert_reads_or_fails_cleanly(lambda: read_voc(voc_root, "train", class_names=class_names))


@FUZZ
@given(xmls=st.lists(voc_files, min_size=2, max_size=2), listing=split_lists,
       class_names=st.none() | st.just(["a", "b"]))
def test_voc_documents(voc_root, xmls, listing, class_names):
    for name, data in zip(IMAGE_NAMES, xmls):
        (voc_root / "Annotations" / name).with_suffix(".xml").write_bytes(data)
    (voc_root / "ImageSets" / "Main" / "train.txt").write_bytes(listing + b"\na\nb\n")
    assert_reads_or_fails_cleanly(lambda: read_voc(voc_root, "train", class_names=class_names))
