"""Bad input wherever a user's file enters: images (read_image_rgb, the dataset check, predict) and labels
(COCO json, YOLO txt + yaml, VOC xml). Every test writes its own tiny files.

A bad file gives a one-line CenterNetError naming it (predict, file-level label errors) or a counted
problem naming it (the dataset check, entries inside a label file); never a traceback, never a silent drop.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image, ImageOps

from centernet.data import load_split
from centernet.data.check import check_split, valid_samples
from centernet.data.coco import read_coco
from centernet.data.images import ImageFileError, read_image_header, read_image_rgb
from centernet.data.samples import PROBLEM_KINDS
from centernet.data.voc import read_voc
from centernet.data.yolo import read_yolo
from centernet.errors import CenterNetError


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text, text
    return text


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 random pixels."""
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def write_jpeg(path: Path, rgb: np.ndarray, orientation: int = 1, **options) -> Path:
    """``rgb`` (as stored) saved by Pillow, with an EXIF orientation tag when ``orientation`` is not 1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    Image.fromarray(rgb).save(path, quality=95, exif=exif, **options)
    return path


def blocks(height: int = 24, width: int = 36) -> np.ndarray:
    """(H, W, 3) RGB of 12x12 blocks in distinct colours: any wrong flip or turn changes it a lot."""
    rows, cols = height // 12, width // 12
    colours = np.random.default_rng(1).integers(0, 255, (rows, cols, 3), dtype=np.uint8)
    return np.kron(colours, np.ones((12, 12, 1), np.uint8))


# --- image files --------------------------------------------------------------------------------


def test_empty_missing_folder_and_text_files(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "folder.jpg").mkdir()
    cases = {"empty.jpg": r"empty file \(0 bytes\)", "text.png": "cv2 cannot decode it",
             "gone.jpg": "does not exist", "folder.jpg": "folder"}
    for name, reason in cases.items():
        with pytest.raises(ImageFileError, match=reason) as e:
            read_image_rgb(tmp_path / name)
        assert str(tmp_path / name) in one_line(e.value) and e.value.kind == "unreadable_image"
        with pytest.raises(ImageFileError):
            read_image_header(tmp_path / name)


def test_truncated_jpeg_and_png_are_refused(tmp_path):
    jpeg = write_jpeg(tmp_path / "full.jpg", noise(48, 64)).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    assert cv2.imread(str(tmp_path / "cut.jpg")) is not None  # cv2 alone decodes it, grey-filled
    assert cv2.imwrite(str(tmp_path / "full.png"), noise(24, 32))
    (tmp_path / "cut.png").write_bytes((tmp_path / "full.png").read_bytes()[:-12])
    for name in ("cut.jpg", "cut.png"):
        with pytest.raises(ImageFileError, match="cut short") as e:
            read_image_rgb(tmp_path / name)
        assert e.value.kind == "truncated_image" and str(tmp_path / name) in one_line(e.value)
    assert read_image_header(tmp_path / "cut.jpg").width == 64  # the header is intact: the readers keep it


def test_jpeg_end_marker_is_found_after_the_image_data(tmp_path):
    """An FF D9 inside a header segment (an EXIF thumbnail, a comment) does not hide a cut;
    data appended after the real end (motion photos) is not a cut."""
    jpeg = write_jpeg(tmp_path / "a.jpg", noise(48, 64)).read_bytes()
    comment = b"\xff\xfe" + struct.pack(">H", 2 + 6) + b"x\xff\xd9yz!"  # a COM segment holding FF D9
    with_comment = jpeg[:2] + comment + jpeg[2:]
    (tmp_path / "comment_cut.jpg").write_bytes(with_comment[: len(with_comment) // 2])
    with pytest.raises(ImageFileError, match="cut short"):
        read_image_rgb(tmp_path / "comment_cut.jpg")
    (tmp_path / "motion.jpg").write_bytes(jpeg + b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    expected = read_image_rgb(tmp_path / "a.jpg")
    np.testing.assert_array_equal(read_image_rgb(tmp_path / "motion.jpg"), expected)


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([0, 1000, 32896, 65535], np.uint16)  # 32896 = 128 * 257
    grey = np.tile(values, (2, 1))
    assert cv2.imwrite(str(tmp_path / "grey16.png"), grey)
    colour = np.stack([grey, grey[:, ::-1], np.full_like(grey, 257)], axis=-1)  # BGR as cv2 writes it
    assert cv2.imwrite(str(tmp_path / "colour16.png"), colour)
    read = read_image_rgb(tmp_path / "grey16.png")
    assert read.dtype == np.uint8 and read.shape == (2, 4, 3)
    assert read[0, :, 0].tolist() == [0, 4, 128, 255]  # round(v * 255 / 65535); clipping would give 255s
    rgb = read_image_rgb(tmp_path / "colour16.png")
    assert rgb[0, :, 2].tolist() == [0, 4, 128, 255] and rgb[0, :, 0].tolist() == [1, 1, 1, 1]


def test_grey_grey_alpha_rgba_and_palette_become_rgb(tmp_path):
    rgb = blocks()
    grey = rgb[..., 0]
    alpha = np.where(np.arange(36) < 18, 255, 0).astype(np.uint8)[None, :].repeat(24, 0)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(tmp_path / "grey_alpha.png")
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb).quantize(8).save(tmp_path / "palette.png")
    Image.fromarray(rgb).quantize(8).save(tmp_path / "palette_trns.png", transparency=0)
    for name in ("grey.png", "grey_alpha.png"):
        read = read_image_rgb(tmp_path / name)
        assert read.shape == (24, 36, 3) and (read == grey[..., None]).all(), name
    # Alpha is dropped: transparent pixels keep the colour stored under them (not composited on black).
    np.testing.assert_array_equal(read_image_rgb(tmp_path / "rgba.png"), rgb)
    palette = np.asarray(Image.open(tmp_path / "palette.png").convert("RGB"))
    np.testing.assert_array_equal(read_image_rgb(tmp_path / "palette.png"), palette)
    np.testing.assert_array_equal(read_image_rgb(tmp_path / "palette_trns.png"), palette)


def test_cmyk_jpeg_reads_as_rgb(tmp_path):
    rgb = blocks()
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    read = read_image_rgb(tmp_path / "cmyk.jpg")
    assert read.shape == (24, 36, 3)
    assert np.abs(read.astype(int) - rgb).mean() < 6  # JPEG loss only


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_viewers_and_cv2_imread(tmp_path, orientation):
    path = write_jpeg(tmp_path / f"o{orientation}.jpg", blocks(), orientation)
    read = read_image_rgb(path)
    shown = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))  # what a viewer shows
    assert read.shape == shown.shape and np.abs(read.astype(int) - shown).mean() < 3
    np.testing.assert_array_equal(read, cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1])
    header = read_image_header(path)
    assert (header.height, header.width) == read.shape[:2] and header.orientation == orientation


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_png_and_webp_exif_orientation_agrees_with_the_header(tmp_path, suffix):
    exif = Image.Exif()
    exif[0x0112] = 8
    path = tmp_path / f"turned{suffix}"
    Image.fromarray(blocks()).save(path, exif=exif, lossless=True)
    read = read_image_rgb(path)
    np.testing.assert_array_equal(read, np.rot90(blocks()))  # 8: turned 90 degrees counter-clockwise
    header = read_image_header(path)
    assert (header.width, header.height) == (24, 36)


# Displayed frame (what the user sees and annotates): 48 wide, 32 tall, a red object off-centre.
SHOWN_W, SHOWN_H, OBJECT = 48, 32, (30, 4, 44, 14)  # object box x1, y1, x2, y2 in displayed pixels


def write_turned_photo(path: Path, orientation: int) -> Path:
    """A JPEG whose stored pixels are the displayed picture turned back, tagged with ``orientation`` 6 or 8."""
    shown = np.full((SHOWN_H, SHOWN_W, 3), 40, np.uint8)
    x1, y1, x2, y2 = OBJECT
    shown[y1:y2, x1:x2] = (230, 20, 20)
    stored = np.rot90(shown, 1 if orientation == 6 else -1)  # 6 is shown turned clockwise, so store it turned back
    return write_jpeg(path, np.ascontiguousarray(stored), orientation)


def assert_box_on_object(image: np.ndarray, box: np.ndarray) -> None:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    inside = image[y1:y2, x1:x2].reshape(-1, 3).mean(axis=0)
    assert inside[0] > 200 and inside[1] < 60 and inside[2] < 60, inside


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_turned_photo_boxes_land_on_the_object_in_every_format(tmp_path, orientation):
    x1, y1, x2, y2 = OBJECT
    # YOLO: normalised by the displayed size.
    photo = write_turned_photo(tmp_path / "yolo" / "images" / "train" / "p.jpg", orientation)
    (tmp_path / "yolo" / "labels" / "train").mkdir(parents=True)
    line = f"0 {(x1 + x2) / 2 / SHOWN_W} {(y1 + y2) / 2 / SHOWN_H} {(x2 - x1) / SHOWN_W} {(y2 - y1) / SHOWN_H}"
    (tmp_path / "yolo" / "labels" / "train" / "p.txt").write_text(line + "\n")
    (tmp_path / "yolo" / "data.yaml").write_text(yaml.safe_dump({"train": "images/train", "names": ["obj"]}))
    # COCO and VOC: the displayed size declared, as annotation tools write it.
    coco_photo = write_turned_photo(tmp_path / "coco" / "images" / "train" / "p.jpg", orientation)
    (tmp_path / "coco" / "annotations").mkdir(parents=True)
    (tmp_path / "coco" / "annotations" / "instances_train.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "p.jpg", "width": SHOWN_W, "height": SHOWN_H}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1]}],
        "categories": [{"id": 1, "name": "obj"}]}))
    voc = tmp_path / "voc"
    write_turned_photo(voc / "JPEGImages" / "p.jpg", orientation)
    (voc / "Annotations").mkdir()
    (voc / "Annotations" / "p.xml").write_text(
        f"<annotation><size><width>{SHOWN_W}</width><height>{SHOWN_H}</height></size><object><name>obj</name>"
        f"<bndbox><xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        "</annotation>")
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "ImageSets" / "Main" / "train.txt").write_text("p\n")
    assert Image.open(photo).size == (SHOWN_H, SHOWN_W)  # stored turned: 32 wide, 48 tall
    for root in ("yolo", "coco", "voc"):
        split = load_split(tmp_path / root, "train")
        report = check_split(split, progress=False)
        assert report.problems == [], (root, report.problems)
        sample = split.samples[0]
        assert (sample.width, sample.height) == (SHOWN_W, SHOWN_H), root
        np.testing.assert_allclose(sample.boxes, [OBJECT], atol=1e-3)
        image = read_image_rgb(sample.image_path)
        assert image.shape == (SHOWN_H, SHOWN_W, 3)
        assert_box_on_object(image, sample.boxes[0])
    assert coco_photo.exists()


def test_annotations_in_the_stored_frame_are_a_size_mismatch(tmp_path):
    """A json declaring the stored (unturned) size: the boxes would be in the wrong frame, so the image is dropped."""
    write_turned_photo(tmp_path / "images" / "train" / "p.jpg", 6)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_train.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "p.jpg", "width": SHOWN_H, "height": SHOWN_W}], "annotations": [],
        "categories": [{"id": 1, "name": "obj"}]}))
    split = load_split(tmp_path, "train")
    report = check_split(split, progress=False)
    [problem] = report.problems
    assert problem.kind == "size_mismatch" and "EXIF orientation 6" in problem.message
    assert valid_samples(split, report).samples == []


def forged_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (8-bit RGB) with almost no pixel data: a decompression bomb
    without the bomb."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def test_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path, monkeypatch):
    (tmp_path / "huge.png").write_bytes(forged_png(20000, 20000))  # 400 MP: over Pillow's own bomb limit too
    assert read_image_header(tmp_path / "huge.png").width == 20000
    with pytest.raises(ImageFileError, match=r"20000x20000 is 400.0 megapixels, over the limit of 100") as e:
        read_image_rgb(tmp_path / "huge.png")
    assert e.value.kind == "image_too_large" and str(tmp_path / "huge.png") in one_line(e.value)
    write_jpeg(tmp_path / "small.jpg", noise(24, 32))
    monkeypatch.setenv("CENTERNET_MAX_IMAGE_PIXELS", "500")
    with pytest.raises(ImageFileError, match=r"32x24 .* over the limit of 0.0005 .*CENTERNET_MAX_IMAGE_PIXELS"):
        read_image_rgb(tmp_path / "small.jpg")
    assert read_image_rgb(tmp_path / "small.jpg", max_pixels=768).shape == (24, 32, 3)
    monkeypatch.setenv("CENTERNET_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(CenterNetError, match="CENTERNET_MAX_IMAGE_PIXELS='lots' is not a positive number"):
        read_image_rgb(tmp_path / "small.jpg")


def test_paths_with_spaces_and_non_ascii_characters(tmp_path):
    folder = tmp_path / "mes données" / "фото 猫"
    path = write_jpeg(folder / "chat noir (1) é.jpg", noise(24, 32))
    assert read_image_rgb(path).shape == (24, 32, 3)
    assert (read_image_header(path).width, read_image_header(path).height) == (32, 24)
    (folder / "labels").mkdir()
    root = folder
    write_jpeg(root / "images" / "train" / "ö ü.jpg", noise(24, 32))
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "ö ü.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text(yaml.safe_dump({"train": "images/train", "names": ["猫"]}, allow_unicode=True))
    split = load_split(root, "train")
    assert check_split(split, progress=False).problems == [] and len(split.samples[0].boxes) == 1


def test_dataset_check_counts_every_bad_image_and_training_reads_the_rest(tmp_path):
    """Through the check, each bad image is a problem naming its file; every image it keeps can be loaded."""
    images = tmp_path / "images" / "train"
    write_jpeg(images / "good.jpg", noise(24, 32))
    (images / "empty.jpg").write_bytes(b"")
    (images / "cut.jpg").write_bytes((images / "good.jpg").read_bytes()[:300])
    (images / "huge.png").write_bytes(forged_png(20000, 20000))
    (images / "text.jpg").write_text("hello")
    assert cv2.imwrite(str(images / "deep.png"), np.full((24, 32, 3), 40000, np.uint16))
    Image.fromarray(np.zeros((24, 32, 4), np.uint8), "RGBA").save(images / "rgba.png")
    Image.fromarray(noise(24, 32)).convert("CMYK").save(images / "cmyk.jpg")
    write_jpeg(images / "turned.jpg", noise(32, 24), orientation=6)  # stored 24x32, shown 32x24
    names = ["good.jpg", "empty.jpg", "cut.jpg", "huge.png", "text.jpg", "deep.png", "rgba.png", "cmyk.jpg",
             "turned.jpg"]
    entries = [{"id": i, "file_name": n, "width": 32, "height": 24} for i, n in enumerate(names, start=1)]
    entries[3].update(width=20000, height=20000)
    annotations = [{"id": i, "image_id": i, "category_id": 1, "bbox": [4, 4, 10, 10]} for i in range(1, 10)]
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_train.json").write_text(json.dumps(
        {"images": entries, "annotations": annotations, "categories": [{"id": 1, "name": "x"}]}))
    split = load_split(tmp_path, "train")
    report = check_split(split, progress=False)
    by_file = {Path(p.file).name: p.kind for p in report.problems}
    assert by_file == {"empty.jpg": "unreadable_image", "cut.jpg": "truncated_image", "huge.png": "image_too_large",
                       "text.jpg": "unreadable_image"}
    assert all(p.kind in PROBLEM_KINDS and "\n" not in p.message for p in report.problems)
    kept = valid_samples(split, report)
    assert [s.image_path.name for s in kept.samples] == ["good.jpg", "deep.png", "rgba.png", "cmyk.jpg", "turned.jpg"]
    from centernet.data.dataset import DetectionDataset
    from centernet.tasks import DetectionTask

    dataset = DetectionDataset(kept, 32, task=DetectionTask(num_classes=1))
    assert all(dataset[i]["image"].shape == (3, 32, 32) for i in range(len(dataset)))


def test_predict_names_the_bad_file_in_one_line(tmp_path):
    from centernet import CenterNet

    model = CenterNet("resnet18", num_classes=1)
    (tmp_path / "empty photo.jpg").write_bytes(b"")
    (tmp_path / "huge.png").write_bytes(forged_png(20000, 20000))
    for name, reason in (("empty photo.jpg", "empty file"), ("huge.png", "megapixels, over the limit")):
        with pytest.raises(CenterNetError, match=reason) as e:
            model.predict(tmp_path / name, input_size=32)
        assert str(tmp_path / name) in one_line(e.value)


# --- COCO json ----------------------------------------------------------------------------------


def write_coco(root: Path, document: dict) -> Path:
    write_jpeg(root / "images" / "a.jpg", noise(24, 32))
    path = root / "instances.json"
    path.write_text(json.dumps(document, allow_nan=True))
    return path


def coco(annotations: list, images: list | None = None, categories: list | None = None) -> dict:
    return {"images": images if images is not None else [{"id": 1, "file_name": "a.jpg", "width": 32, "height": 24}],
            "annotations": annotations, "categories": categories or [{"id": 1, "name": "x"}]}


def test_coco_wrong_types_are_counted_with_their_index(tmp_path):
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10]},       # 0: fine
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": "abc"},               # 1: a string
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": "1234"},              # 2: 4 characters, still a string
        {"id": 4, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]},           # 3: 3 numbers
        {"id": 5, "image_id": 1, "category_id": None, "bbox": [1, 2, 3, 4]},     # 4: null category
        {"id": 6, "image_id": 1, "category_id": 1.5, "bbox": [1, 2, 3, 4]},      # 5: not an integer
        {"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, float("inf"), 3, 4]},  # 6: Infinity
        {"id": 8, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": "0"},  # 7: a string flag
        {"id": 9, "image_id": 7, "category_id": 1, "bbox": [1, 2, 3, 4]},        # 8: image 7 is not listed
        {"id": 10, "image_id": float("inf"), "category_id": 1, "bbox": [1, 2, 3, 4]},  # 9: image id Infinity
        "not an object",                                                          # 10
        {"id": 12, "image_id": 1, "category_id": 1, "bbox": [5, 5, -3, 4]},      # 11: negative width
    ]
    images = [{"id": 1, "file_name": "a.jpg", "width": 32, "height": 24},
              {"id": float("inf"), "file_name": "a.jpg", "width": 32, "height": 24},
              {"id": 3, "file_name": ["a.jpg"], "width": 32, "height": 24},
              {"id": 4, "file_name": "b.jpg", "width": 32.5, "height": 24}]
    split = read_coco(write_coco(tmp_path, coco(annotations, images)), tmp_path / "images")
    assert len(split.samples) == 1 and split.samples[0].boxes.tolist() == [[2, 2, 12, 12]]
    found = {(p.kind, p.message.split(" ")[0].split(":")[0]) for p in split.problems}
    expected = {("malformed_label", f"annotations[{i}]") for i in (1, 2, 3, 4, 5, 6, 7, 9, 10)}
    expected |= {("orphan_annotation", "annotations[8]"), ("zero_area", "annotations[11]")}
    expected |= {("malformed_label", f"images[{i}]") for i in (1, 2, 3)}
    assert found == expected
    assert all(p.file == str(tmp_path / "instances.json") and "\n" not in p.message for p in split.problems)
    message = next(p.message for p in split.problems if p.message.startswith("annotations[1]"))
    assert "(id 2)" in message and "'bbox' must be 4 numbers" in message and '"abc"' in message


@pytest.mark.parametrize("document, reason", [
    ({"images": {}, "annotations": [], "categories": []}, "expected a list under 'images'.*got an object"),
    ({"images": [], "categories": []}, "expected a list under 'annotations'.*missing or null"),
    (coco([], categories=[{"id": float("inf"), "name": "x"}]), r"categories\[0\] .* needs an integer 'id'"),
    (coco([], categories=[{"id": 1, "name": "x"}, {"id": 1, "name": "y"}]), "category id 1 is listed twice"),
    ({"images": [], "annotations": [], "categories": []}, "'categories' is empty"),
    ([1, 2], "expected a json object"),
])
def test_coco_file_level_errors_are_one_line(tmp_path, document, reason):
    path = write_coco(tmp_path, {})
    path.write_text(json.dumps(document, allow_nan=True))
    with pytest.raises(CenterNetError, match=reason) as e:
        read_coco(path, tmp_path / "images")
    assert str(path) in one_line(e.value)


def test_coco_unparsable_files(tmp_path):
    path = write_coco(tmp_path, {})
    for data, reason in ((b"\xff\xfe\x00garbage", "not valid json"), (b"[" * 100000, "nested too deeply"),
                         (b'{"images": [', "not valid json")):
        path.write_bytes(data)
        with pytest.raises(CenterNetError, match=reason) as e:
            read_coco(path, tmp_path / "images")
        assert str(path) in one_line(e.value)


# --- YOLO ---------------------------------------------------------------------------------------


def write_yolo(root: Path, labels: bytes = b"0 0.5 0.5 0.5 0.5\n", config: dict | None = None) -> Path:
    write_jpeg(root / "images" / "train" / "a.jpg", noise(24, 32))
    (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "train" / "a.txt").write_bytes(labels)
    text = yaml.safe_dump(config if config is not None else {"train": "images/train", "names": ["x"]})
    (root / "data.yaml").write_text(text)
    return root / "data.yaml"


def test_yolo_label_lines_nan_inf_negative_and_garbage(tmp_path):
    lines = ["0 0.5 0.5 0.5 0.5", "0 inf 0.5 0.2 0.2", "0 0.5 0.5 -0.2 0.2", "0 0.5 0.5 0.2", "0 1e999 0 0 0",
             "0 0x1 0.5 0.2 0.2", "-1 0.5 0.5 0.2 0.2", "0 0.5 0.5 0.2 0.2 0.7"]
    split = read_yolo(write_yolo(tmp_path, "\n".join(lines).encode()), "train")
    assert split.samples[0].boxes.tolist() == [[8, 6, 24, 18]]
    at = {p.line: p.kind for p in split.problems}
    assert at == {2: "malformed_label", 3: "zero_area", 4: "malformed_label", 5: "malformed_label",
                  6: "malformed_label", 7: "malformed_label", 8: "malformed_label"}
    assert all(p.file.endswith("a.txt") for p in split.problems)


def test_yolo_label_file_that_is_not_text_drops_its_image_with_a_problem(tmp_path):
    split = read_yolo(write_yolo(tmp_path, b"\xff\xfe\x00\x81 binary"), "train")
    [problem] = split.problems
    assert split.samples == [] and problem.kind == "malformed_label" and "not readable UTF-8" in problem.message
    assert problem.file.endswith("a.txt") and "'a.jpg' dropped" in problem.message


@pytest.mark.parametrize("text, reason", [
    ("names: [x]\ntrain: images/train\ncreated: 2020-13-45\n", "not valid yaml"),
    ("names: {.inf: x}\ntrain: images/train\n", "'names' keys must be class indices"),
    ("names: {0: x, '0': y}\ntrain: images/train\n", "class index is listed twice"),
    ("names: []\ntrain: images/train\n", "'names' must be a non-empty list"),
    ("names: [x]\ntrain: [[[[\n", "not valid yaml"),
    ("- just\n- a list\n", "expected a mapping"),
])
def test_yolo_yaml_errors_are_one_line(tmp_path, text, reason):
    path = write_yolo(tmp_path)
    path.write_text(text)
    with pytest.raises(CenterNetError, match=reason) as e:
        read_yolo(path, "train")
    assert str(path) in one_line(e.value)


def test_yolo_odd_paths_and_lists(tmp_path):
    path = write_yolo(tmp_path, config={"path": "~no_such_user_here/x", "train": "images/train", "names": ["x"]})
    with pytest.raises(CenterNetError, match="neither a folder nor a .txt list"):
        read_yolo(path, "train")
    (tmp_path / "list.txt").write_bytes(b"images/train/a.jpg\n\xff\xfe bad bytes\n")
    path.write_text(yaml.safe_dump({"train": "list.txt", "names": ["x"]}))
    with pytest.raises(CenterNetError, match="list.txt: the image list is not readable UTF-8") as e:
        read_yolo(path, "train")
    one_line(e.value)
    (tmp_path / "list.txt").write_text("images/train/a.jpg\n" + "y" * 300 + ".jpg\n~nobody_at_all/z.jpg\n")
    split = read_yolo(path, "train")
    assert len(split.samples) == 1 and [p.kind for p in split.problems] == ["missing_image", "missing_image"]


# --- VOC ----------------------------------------------------------------------------------------


def write_voc(root: Path, xml: str, ids: str = "a\n") -> Path:
    write_jpeg(root / "JPEGImages" / "a.jpg", noise(24, 32))
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations" / "a.xml").write_text(xml)
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text(ids)
    return root


def voc_object(name: str = "x", xmin="2", ymin="2", xmax="10", ymax="10", difficult: str = "0") -> str:
    return (f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{xmin}</xmin>"
            f"<ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")


def test_voc_missing_and_non_numeric_fields(tmp_path):
    objects = "".join([
        voc_object(),                                   # 1: fine -> [1, 1, 10, 10]
        voc_object(xmin="abc"),                         # 2: not a number
        voc_object(xmax="inf"),                         # 3: infinite
        voc_object(ymin="nan"),                         # 4: NaN
        voc_object(difficult="maybe"),                  # 5: not a flag
        "<object><name>x</name></object>",              # 6: no bndbox
        "<object><bndbox><xmin>1</xmin></bndbox></object>",  # 7: no name
        voc_object(xmin="", ymax=""),                   # 8: empty fields
    ])
    xml = f"<annotation><size><width>abc</width><height>24</height></size>{objects}</annotation>"
    split = read_voc(write_voc(tmp_path, xml), "train", class_names=["x"])
    sample = split.samples[0]
    assert (sample.width, sample.height) == (32, 24)  # from the image, since <width> is not a number
    np.testing.assert_allclose(sample.boxes, [[1, 1, 10, 10]])
    messages = sorted(p.message for p in split.problems)
    assert all(p.kind == "malformed_label" and p.file.endswith("a.xml") for p in split.problems)
    assert len(messages) == 8
    assert any("<size> <width> is 'abc'" in m for m in messages)
    assert any(m.startswith("object 2 (x): <bndbox> needs numeric") and "xmin='abc'" in m for m in messages)
    assert any(m.startswith("object 3 (x): NaN or infinite") for m in messages)
    assert any(m.startswith("object 5 (x): <difficult> is 'maybe'") for m in messages)


def test_voc_infinite_size_unknown_encoding_and_odd_split_lists(tmp_path):
    xml = f"<annotation><size><width>1e999</width><height>24</height></size>{voc_object()}</annotation>"
    root = write_voc(tmp_path, xml, ids="a\n" + "z" * 300 + "\n../../a\n")
    split = read_voc(root, "train")
    assert len(split.samples) == 1 and (split.samples[0].width, split.samples[0].height) == (32, 24)
    kinds = sorted(p.kind for p in split.problems)
    assert kinds == ["malformed_label", "missing_annotation", "missing_annotation"]
    (root / "Annotations" / "a.xml").write_text('<?xml version="1.0" encoding="no-such"?><annotation/>')
    (root / "Annotations" / "b.xml").write_text(f"<annotation>{voc_object()}</annotation>")
    [problem] = read_voc(root, "train").problems[:1]
    assert problem.kind == "bad_xml" and problem.file.endswith("a.xml") and "\n" not in problem.message
    (root / "ImageSets" / "Main" / "train.txt").write_bytes(b"a\n\xff\xfe\n")
    with pytest.raises(CenterNetError, match="train.txt: the split list is not readable UTF-8") as e:
        read_voc(root, "train")
    one_line(e.value)


def test_voc_without_any_class_name_is_an_error(tmp_path):
    root = write_voc(tmp_path, "<annotation><size><width>32</width><height>24</height></size></annotation>")
    with pytest.raises(CenterNetError, match="no class names") as e:
        read_voc(root, "train")
    one_line(e.value)
