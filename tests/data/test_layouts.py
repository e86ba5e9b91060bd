"""Datasets in the layouts users download them in: Roboflow-style COCO split folders, split-name synonyms,
the unused parent category; and predict over a folder that holds a few broken files.

Each layout is written into a temporary folder by the test itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from centernet.cli import main
from centernet.data import SPLIT_SYNONYMS, available_splits, detect_format, load_split, resolve_split
from centernet.data.check import run_check
from centernet.errors import CenterNetError

CLASSES = ("platelet", "rbc")


def write_roboflow_coco(root: Path, splits: dict[str, int], parent: str = "cells-abc") -> Path:
    """A Roboflow COCO export: ``<split>/`` with its images and ``_annotations.coco.json``; category 0 is the
    dataset's name (supercategory "none", no annotations), the classes name it as their supercategory."""
    categories = [{"id": 0, "name": parent, "supercategory": "none"}]
    categories += [{"id": i + 1, "name": name, "supercategory": parent} for i, name in enumerate(CLASSES)]
    for split, count in splits.items():
        folder = root / split
        folder.mkdir(parents=True)
        images, annotations = [], []
        for i in range(count):
            name = f"{split}_{i}.jpg"
            cv2.imwrite(str(folder / name), np.full((48, 64, 3), 40 * i % 255, np.uint8))
            images.append({"id": i, "file_name": name, "width": 64, "height": 48})
            annotations.append({"id": len(annotations), "image_id": i, "category_id": 1 + i % 2,
                                "bbox": [4, 6, 20, 16], "area": 320, "iscrowd": 0})
        coco = {"images": images, "annotations": annotations, "categories": categories}
        (folder / "_annotations.coco.json").write_text(json.dumps(coco))
    return root


def test_roboflow_coco_export_is_read_split_by_split(tmp_path):
    root = write_roboflow_coco(tmp_path / "bccd", {"train": 4, "valid": 2, "test": 3})
    assert detect_format(root) == "coco"
    assert available_splits(root) == ["test", "train", "valid"]
    train, val = load_split(root, "train"), load_split(root, "val")  # 'val' finds valid/
    assert len(train.samples) == 4 and len(val.samples) == 2 and len(load_split(root, "test").samples) == 3
    assert val.source.endswith("valid/_annotations.coco.json")
    # The parent category is left out with a note; the classes keep the file's own ids for predictions.json.
    assert train.class_names == list(CLASSES) and train.category_ids == [1, 2]
    assert len(train.notes) == 1 and "'cells-abc'" in train.notes[0] and "supercategory" in train.notes[0]
    assert sorted(int(label) for s in train.samples for label in s.labels) == [0, 0, 1, 1]
    with pytest.raises(CenterNetError, match="no split 'holdout'.*splits found: test, train, valid"):
        load_split(root, "holdout")


def test_check_reports_every_split_of_a_split_folder_root(tmp_path, capsys):
    root = write_roboflow_coco(tmp_path / "export", {"train": 2, "valid": 1, "test": 1})
    assert run_check(str(root), verify_images=False, progress=False) == 0
    out = capsys.readouterr().out
    assert "== split train ==" in out and "== split valid ==" in out and "== split test ==" in out
    assert "note: category 0 'cells-abc' left out" in out
    assert "== all splits (train, valid, test): 4 images, 4 boxes" in out


def test_an_empty_category_that_is_not_a_parent_stays_a_class(tmp_path):
    root = write_roboflow_coco(tmp_path / "export", {"train": 2})
    path = root / "train" / "_annotations.coco.json"
    coco = json.loads(path.read_text())
    coco["categories"].append({"id": 3, "name": "wbc", "supercategory": "cells-abc"})  # the user's, unused yet
    path.write_text(json.dumps(coco))
    split = load_split(root, "train")
    assert split.class_names == [*CLASSES, "wbc"] and split.category_ids == [1, 2, 3]
    coco["categories"][1]["supercategory"] = "blood"  # no longer the parent of every other: kept
    path.write_text(json.dumps(coco))
    assert load_split(root, "train").class_names == ["cells-abc", *CLASSES, "wbc"]


def test_the_same_data_as_a_roboflow_export_trains_to_the_same_ap(tmp_path):
    """The tiny shapes set (a COCO folder) rewritten as split folders: the same seed gives the same model."""
    import shutil

    import torch

    from centernet import CenterNet
    from centernet.data import default_cache_dir
    from centernet.data.shapes import build_shapes

    from conftest import TINY_SHAPES

    canonical = build_shapes(default_cache_dir() / "datasets", TINY_SHAPES)
    export = tmp_path / "export"
    for split, folder in (("train", "train"), ("val", "valid")):
        shutil.copytree(canonical / "images" / split, export / folder)
        shutil.copy(canonical / "annotations" / f"instances_{split}.json", export / folder / "_annotations.coco.json")
    settings = dict(epochs=2, batch_size=8, input_size=64, workers=0, progress=False, val_interval=2, ema=False,
                    precision="fp32", deterministic=True, augment_mode="none", color_aug=False)
    metrics, losses = [], []
    for data in (canonical, export):
        torch.manual_seed(0)
        model = CenterNet("resnet18")
        metrics.append(model.train(data=str(data), out=tmp_path / data.name, **settings))
        rows = (tmp_path / data.name / "results.csv").read_text().splitlines()
        header = rows[0].split(",")
        losses.append([float(row.split(",")[header.index("loss")]) for row in rows[1:]])
    assert len(losses[0]) == 2 and min(losses[0]) > 0  # the same batches give the same losses, step for step
    assert losses[1] == losses[0]
    for key in ("map", "map50", "map75"):
        assert metrics[1][key] == pytest.approx(metrics[0][key], abs=1e-9), key


def test_check_names_an_image_that_two_splits_list(tmp_path, capsys):
    root = write_roboflow_coco(tmp_path / "export", {"train": 3, "valid": 1})
    path = root / "valid" / "_annotations.coco.json"
    coco = json.loads(path.read_text())
    coco["images"][0]["file_name"] = "../train/train_1.jpg"  # the val json points at a training image
    path.write_text(json.dumps(coco))
    run_check(str(root), verify_images=False, progress=False)
    out = capsys.readouterr().out
    assert "1 dataset problem (1 duplicate_image)" in out and "train_1.jpg" in out and "also in split 'train'" in out


@pytest.mark.parametrize("asked, have, found", [
    ("val", ["train", "valid", "test"], "valid"),
    ("val", ["training", "validation"], "validation"),
    ("train", ["training", "validation"], "training"),
    ("test", ["train", "testing"], "testing"),
    ("val", ["val", "valid"], "val"),               # the name itself wins
    ("val", ["valid", "validation"], "val"),        # two synonyms: no guess, the reader says it is missing
    ("holdout", ["train", "valid"], "holdout"),
])
def test_split_names_have_synonyms(asked, have, found):
    assert resolve_split(asked, have) == found
    assert all(names[0] in ("train", "val", "test") for names in SPLIT_SYNONYMS)


def test_a_folder_without_images_beside_its_json_is_no_split_folder(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "metrics.json").write_text("{}")
    with pytest.raises(CenterNetError, match="no known layout"):
        detect_format(tmp_path)


# ------------------------------------------------------------------------------ VOC without ImageSets


def voc_xml(filename: str, objects: list[tuple[str, tuple[int, int, int, int]]]) -> str:
    boxes = "".join(f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
                    f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>" for name, (x1, y1, x2, y2) in objects)
    return (f"<annotation><filename>{filename}</filename><size><width>64</width><height>48</height></size>"
            f"{boxes}</annotation>")


def write_voc_files(xml_dir: Path, image_dir: Path, stems: list[str]) -> None:
    """One image and one xml per stem; the image named in <filename> (as labelImg writes it)."""
    xml_dir.mkdir(parents=True, exist_ok=True)
    image_dir.mkdir(parents=True, exist_ok=True)
    for i, stem in enumerate(stems):
        cv2.imwrite(str(image_dir / f"{stem}.jpg"), np.full((48, 64, 3), 30 * i % 250, np.uint8))
        objects = [("rbc", (5, 6, 20, 30))] + ([("wbc", (30, 10, 60, 40))] if i % 2 else [])
        (xml_dir / f"{stem}.xml").write_text(voc_xml(f"{stem}.jpg", objects))


@pytest.mark.parametrize("layout", ["beside", "annotations_images", "Annotations_JPEGImages_no_imagesets"])
def test_voc_folder_without_imagesets_is_one_train_split(tmp_path, layout):
    root = tmp_path / "voc"
    xml_dir, image_dir = {
        "beside": (root, root),
        "annotations_images": (root / "annotations", root / "images"),
        "Annotations_JPEGImages_no_imagesets": (root / "Annotations", root / "JPEGImages"),
    }[layout]
    write_voc_files(xml_dir, image_dir, ["a", "b", "c"])
    assert detect_format(root) == "voc" and available_splits(root) == ["train"]
    split = load_split(root, "train")
    assert len(split.samples) == 3 and split.class_names == ["rbc", "wbc"] and not split.problems
    assert split.samples[1].boxes.tolist() == [[4.0, 5.0, 20.0, 30.0], [29.0, 9.0, 60.0, 40.0]]  # VOC's 1-based
    with pytest.raises(CenterNetError, match="no split 'val' \\(splits found: train"):
        load_split(root, "val")


def test_roboflow_voc_export_has_split_folders_sharing_one_class_list(tmp_path):
    root = tmp_path / "export"
    write_voc_files(root / "train", root / "train", ["t0", "t1"])
    write_voc_files(root / "valid", root / "valid", ["v0"])  # only rbc here: the classes still come from all
    assert detect_format(root) == "voc" and available_splits(root) == ["train", "valid"]
    val = load_split(root, "val")
    assert len(val.samples) == 1 and val.class_names == ["rbc", "wbc"] == load_split(root, "train").class_names


def test_voc_xml_without_its_image_and_an_unsafe_only_file_are_named(tmp_path):
    root = tmp_path / "voc"
    write_voc_files(root, root, ["a", "b"])
    (root / "b.jpg").unlink()
    split = load_split(root, "train")
    [problem] = split.problems
    assert problem.kind == "missing_image" and problem.file.endswith("b.xml") and len(split.samples) == 1
    unsafe = tmp_path / "unsafe"
    unsafe.mkdir()
    (unsafe / "x.xml").write_text('<!DOCTYPE a [<!ENTITY e "boom">]><annotation><object><name>&e;</name>'
                                  "</object></annotation>")
    with pytest.raises(CenterNetError, match="no class names.*1 xml file\\(s\\) refused.*x.xml.*forbidden"):
        load_split(unsafe, "train")


def test_a_folder_that_is_two_layouts_at_once_is_an_error_that_says_how_to_choose(tmp_path, capsys):
    root = write_roboflow_coco(tmp_path / "both", {"train": 2, "valid": 1})
    write_voc_files(root / "train", root / "train", ["x0"])  # a VOC export unpacked over the COCO one
    with pytest.raises(CenterNetError, match="is both COCO split folders .* and VOC xml folders .*choose one") as e:
        load_split(root, "train")
    assert "\n" not in str(e.value)
    assert len(load_split(root, "train", data_format="coco").samples) == 2  # the way out it names: --format
    assert len(load_split(root, "train", data_format="voc").samples) == 1
    assert len(load_split(root, "val", data_format="coco").samples) == 1  # valid/, by its synonym
    with pytest.raises(CenterNetError, match="is not in YOLO layout \\(it matches: voc, coco\\)"):
        load_split(root, "train", data_format="yolo")
    assert main(["check", str(root), "--format", "coco", "--no-verify-images"]) == 0
    assert "== split valid ==" in capsys.readouterr().out
    data = tmp_path / "choice.yaml"  # or a dataset file
    data.write_text(f"train: {{coco: {root}/train/_annotations.coco.json}}\nval: {{voc: {root}/train}}\n")
    assert len(load_split(data, "train").samples) == 2 and len(load_split(data, "val").samples) == 1


# ------------------------------------------------------------------------------ YOLO without data.yaml


def write_yolo_images(images: Path, labels: Path, stems: list[str]) -> None:
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for i, stem in enumerate(stems):
        cv2.imwrite(str(images / f"{stem}.jpg"), np.full((48, 64, 3), 30 * i % 250, np.uint8))
        (labels / f"{stem}.txt").write_text(f"{i % 2} 0.5 0.5 0.25 0.5\n")


@pytest.mark.parametrize("names_at", ["classes.txt", "labels/classes.txt", "obj.names"])
def test_yolo_folder_with_a_names_file_and_no_yaml(tmp_path, names_at):
    root = tmp_path / "yolo"
    write_yolo_images(root / "images", root / "labels", ["a", "b", "c"])
    (root / names_at).write_text("cat\ndog\n\n")
    assert detect_format(root) == "yolo" and available_splits(root) == ["train"]
    split = load_split(root, "train")
    assert split.class_names == ["cat", "dog"] and len(split.samples) == 3 and not split.problems
    assert sorted(int(label) for s in split.samples for label in s.labels) == [0, 0, 1]
    assert split.samples[0].boxes.tolist() == [[24.0, 12.0, 40.0, 36.0]]


def test_yolo_folder_with_split_subfolders_and_no_yaml(tmp_path):
    root = tmp_path / "yolo"
    write_yolo_images(root / "images" / "train", root / "labels" / "train", ["a", "b"])
    write_yolo_images(root / "images" / "valid", root / "labels" / "valid", ["c"])
    (root / "obj.names").write_text("cat\ndog\n")
    assert available_splits(root) == ["train", "valid"]
    assert len(load_split(root, "val").samples) == 1 and len(load_split(root, "train").samples) == 2
    (root / "obj.names").write_text("\n")
    with pytest.raises(CenterNetError, match="obj.names: no class names"):
        load_split(root, "train")


def test_roboflow_yolo_yaml_with_parent_relative_paths(tmp_path):
    """Roboflow writes ``train: ../train/images`` into a data.yaml that sits beside train/ and valid/."""
    root = tmp_path / "export"
    write_yolo_images(root / "train" / "images", root / "train" / "labels", ["a", "b"])
    write_yolo_images(root / "valid" / "images", root / "valid" / "labels", ["c"])
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 2\nnames: ['cat', 'dog']\n")
    assert len(load_split(root, "train").samples) == 2 and len(load_split(root, "val").samples) == 1


# ------------------------------------------------------------------------------ a dataset file for any mix


def write_mixed(root: Path, names: list[str] | None) -> Path:
    """train: a Roboflow COCO split (platelet, rbc); val: a VOC folder without ImageSets (rbc, wbc)."""
    write_roboflow_coco(root / "coco", {"train": 3})
    write_voc_files(root / "voc_val", root / "voc_val", ["v0", "v1"])
    lines = ["train: {coco: coco/train/_annotations.coco.json}", "val: {voc: voc_val}"]
    if names is not None:
        lines.insert(0, f"names: {names}")
    (root / "data.yaml").write_text("\n".join(lines) + "\n")
    return root / "data.yaml"


def test_a_dataset_file_mixes_formats_under_one_class_list(tmp_path):
    data = write_mixed(tmp_path, ["rbc", "wbc", "platelet"])
    assert available_splits(data) == ["train", "val"]
    train, val = load_split(data, "train"), load_split(data, "val")
    assert train.class_names == val.class_names == ["rbc", "wbc", "platelet"] and train.category_ids == [0, 1, 2]
    # train: COCO labels platelet (0) and rbc (1) -> 2 and 0; val: VOC rbc (0), wbc (1) -> 0, 1
    assert sorted(int(label) for s in train.samples for label in s.labels) == [0, 2, 2]
    assert sorted(int(label) for s in val.samples for label in s.labels) == [0, 0, 1]
    assert train.notes  # the COCO export's parent category was still left out


def test_a_dataset_file_finds_voc_images_kept_in_another_folder(tmp_path):
    write_voc_files(tmp_path / "labels_xml", tmp_path / "photos", ["a", "b"])
    (tmp_path / "data.yaml").write_text("train: {voc: labels_xml, images: photos}\n")
    split = load_split(tmp_path / "data.yaml", "train")
    assert len(split.samples) == 2 and not split.problems
    assert split.samples[0].image_path == tmp_path / "photos" / "a.jpg"


def test_a_dataset_file_without_names_takes_every_sources_classes_and_drops_others_when_named(tmp_path):
    data = write_mixed(tmp_path / "a", None)
    assert load_split(data, "val").class_names == ["platelet", "rbc", "wbc"]
    data = write_mixed(tmp_path / "b", ["rbc"])
    val = load_split(data, "val")
    assert val.class_names == ["rbc"] and val.dropped_boxes == 1
    assert [p.kind for p in val.problems] == ["unknown_class"] and "'wbc'" in val.problems[0].message
    (tmp_path / "b" / "data.yaml").write_text("train: {coco: nowhere.json}\n")
    with pytest.raises(CenterNetError, match="coco source .*nowhere.json' does not exist"):
        load_split(tmp_path / "b" / "data.yaml", "train")
    (tmp_path / "b" / "data.yaml").write_text("train: {coco: a.json, voc: b}\n")
    with pytest.raises(CenterNetError, match="must name one source"):
        load_split(tmp_path / "b" / "data.yaml", "train")


# ------------------------------------------------------------------------------ a held-out split


def test_hold_out_is_seeded_and_keeps_at_least_one_image_each_side(tmp_path):
    from centernet.data import hold_out

    root = tmp_path / "voc"
    write_voc_files(root, root, [f"img{i}" for i in range(10)])
    split = load_split(root, "train")
    train, val = hold_out(split, 0.2, seed=0)
    assert len(val.samples) == 2 and len(train.samples) == 8
    assert {s.image_path for s in train.samples}.isdisjoint(s.image_path for s in val.samples)
    again = hold_out(split, 0.2, seed=0)[1]
    assert [s.image_path for s in again.samples] == [s.image_path for s in val.samples]
    assert [s.image_path for s in hold_out(split, 0.2, seed=1)[1].samples] != [s.image_path for s in val.samples]
    assert len(hold_out(split, 0.01, seed=0)[1].samples) == 1 and len(hold_out(split, 0.99, seed=0)[0].samples) == 1
    with pytest.raises(CenterNetError, match="val_fraction=1.5"):
        hold_out(split, 1.5, seed=0)


def test_training_without_a_val_split_holds_one_out_and_val_and_resume_reuse_it(tmp_path, capsys):
    from centernet import CenterNet

    root = tmp_path / "voc"
    write_voc_files(root, root, [f"img{i}" for i in range(6)])
    out = tmp_path / "run"
    settings = dict(epochs=1, batch_size=2, input_size=64, workers=0, progress=False, precision="fp32")
    CenterNet("resnet18").train(data=str(root), out=out, val_fraction=0.34, **settings)
    printed = capsys.readouterr().out
    assert "no split 'val'; holding out 2 of 6 images for validation (val_fraction 0.34, seed 0)" in printed
    train_list = (out / "train_images.txt").read_text().splitlines()
    val_list = (out / "val_images.txt").read_text().splitlines()
    assert len(train_list) == 4 and len(val_list) == 2 and not set(train_list) & set(val_list)
    # val with the run's weights and resume both read the lists back
    model = CenterNet(out / "last.pt")
    metrics = model.val(str(root), progress=False)
    assert "validating on the val_images.txt held out when the model trained" in capsys.readouterr().out
    assert 0 <= metrics["map"] <= 1
    CenterNet(out / "last.pt").train(resume=True, epochs=2, progress=False)
    assert "holding out" not in capsys.readouterr().out
    assert (out / "val_images.txt").read_text().splitlines() == val_list
    assert main(["train", "--data", str(root), "--out", str(tmp_path / "none"), "--val-split", "none", "--epochs",
                 "1", "--batch-size", "2", "--input-size", "64", "--workers", "0"]) == 0
    assert not (tmp_path / "none" / "val_images.txt").exists()


# ------------------------------------------------------------------------------ predict over broken files


def broken_folder(tmp_path: Path, good: int) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir(parents=True)
    for i in range(good):
        cv2.imwrite(str(folder / f"good{i}.jpg"), np.full((64, 64, 3), 90 + 40 * i, np.uint8))
    (folder / "notes.jpg").write_text("not an image")
    whole = cv2.imencode(".jpg", np.full((64, 64, 3), 200, np.uint8))[1].tobytes()
    (folder / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    return folder


def test_predict_skips_unreadable_images_names_them_and_lists_them(trained_run, tmp_path, capsys):
    folder, out = broken_folder(tmp_path, good=2), tmp_path / "pred"
    weights = str(trained_run["out"] / "best.pt")
    assert main(["predict", str(folder), "--weights", weights, "--out", str(out), "--conf", "0"]) == 0
    captured = capsys.readouterr()
    skipped_lines = [line for line in captured.err.splitlines() if line.startswith("skipped ")]
    assert len(skipped_lines) == 2 and any("notes.jpg" in line for line in skipped_lines)
    listed = (out / "skipped.txt").read_text().splitlines()
    assert sorted(Path(line.split("\t")[0]).name for line in listed) == ["cut.jpg", "notes.jpg"]
    assert all(line.split("\t")[1] for line in listed)  # each with its reason
    assert {r["file_name"] for r in json.loads((out / "predictions.json").read_text())} <= {
        str(folder / "good0.jpg"), str(folder / "good1.jpg")}
    assert (out / "good0.jpg").is_file() and (out / "good1.jpg").is_file()
    assert "skipped 2 unreadable" in captured.out
    # --strict stops at the first, in one line; a folder with nothing readable is an error either way.
    assert main(["predict", str(folder), "--weights", weights, "--out", str(out), "--strict"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot read image" in err
    only_bad = broken_folder(tmp_path / "bad", good=0)
    assert main(["predict", str(only_bad), "--weights", weights, "--out", str(tmp_path / "p2")]) == 2
    assert "no image could be read (2 skipped)" in capsys.readouterr().err
