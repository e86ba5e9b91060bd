"""Reader for Pascal VOC datasets (``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/<split>.txt``).

Without ``ImageSets/`` (as labelImg and Roboflow's VOC export write them), every ``.xml`` of a folder is an
image's annotation (:func:`xml_folders`): the ``.xml`` files in the folder itself or in its ``Annotations/`` (or
``annotations/``) folder, with the images beside them or in a sibling ``JPEGImages/`` or ``images/``, are one
split named ``train``; sub-folders each holding ``.xml`` files (``train/``, ``valid/``, ``test/``) are splits of
those names. An image is found by the xml's name (``a.xml`` -> ``a.jpg``) or its ``<filename>``.

Coordinates: VOC boxes are 1-based inclusive pixel indices, so a box covering pixel
columns ``xmin..xmax`` spans ``[xmin - 1, xmax)`` in the continuous 0-based pixel
coordinates used everywhere else: ``x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax``.
A box with ``xmax <= xmin`` or ``ymax <= ymin`` as written is degenerate (an annotation
click without a drag; BCCD has two) and is dropped as ``zero_area`` rather than kept as
a 1-pixel box.

Classes: by default the sorted unique object names over the whole ``Annotations``
folder, so every split of one dataset shares one class list; or a given list, in which
case other names are reported as ``unknown_class``. ``difficult`` objects become
ignore regions. XML is parsed with defusedxml: a file that declares entities is
reported as ``bad_xml`` and skipped, never expanded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ..errors import CenterNetError
from .images import ImageFileError, read_image_header
from .samples import DatasetProblem, DatasetSplit, SampleBuilder, file_exists, one_line

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class VocObject:
    """One ``<object>`` as written: name, difficult flag, raw 1-based box or why it is unusable."""

    name: str
    difficult: bool
    box: tuple[float, float, float, float] | None  # (xmin, ymin, xmax, ymax) 1-based inclusive pixels
    error: str = ""  # why ``box`` is None


@dataclass
class VocAnnotation:
    """One parsed xml: declared image size (0 when absent or unusable), file name, objects."""

    width: int
    height: int
    filename: str
    objects: list[VocObject] = field(default_factory=list)
    size_error: str = ""  # why a <size> that is there cannot be used ("" when fine or absent)


def read_voc(
    root: str | Path, split: str = "train", class_names: Sequence[str] | None = None, images: Path | None = None
) -> DatasetSplit:
    """Read ``ImageSets/Main/<split>.txt`` of the VOC folder ``root``.

    ``images``: a folder to find the images in as well (after ``JPEGImages/``, or the xml's own folder and its
    siblings without ``ImageSets/``).

    ``class_names`` fixes the class list (labels in its order); by default it is the
    sorted unique object names of every xml under ``Annotations``. Category ids are
    1..C in label order.
    """
    root = Path(root)
    extra = [] if images is None else [Path(images)]
    if not (root / "ImageSets").is_dir():
        return _read_xml_folder(root, split, class_names, extra)
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if not file_exists(split_file):
        have = ", ".join(splits_in(root)) or "none"
        raise CenterNetError(f"VOC folder {str(root)!r} has no split {split!r}: expected {str(split_file)!r} "
                             f"(splits found: {have})")
    parsed: dict[Path, VocAnnotation | str] = {}
    names = _class_list(class_names, [root / "Annotations"], parsed, str(root))
    label_of = {name: i for i, name in enumerate(names)}

    problems: list[DatasetProblem] = []
    samples, dropped, seen = [], 0, set()
    for line, image_key in _split_ids(split_file):
        if image_key in seen:
            problems.append(DatasetProblem(str(split_file), line, "duplicate_image",
                                           f"{image_key} listed again; dropped"))
            continue
        seen.add(image_key)
        xml_path = root / "Annotations" / f"{image_key}.xml"
        if not file_exists(xml_path):
            problems.append(DatasetProblem(str(split_file), line, "missing_annotation",
                                           f"{image_key}: no {xml_path.name} in Annotations; dropped"))
            continue
        found = _read_image(xml_path, [root / "JPEGImages", *extra], (str(split_file), line), label_of, parsed,
                            problems)
        if found is not None:
            image_path, builder = found
            samples.append(builder.build(image_path, len(samples) + 1))
            dropped += builder.dropped
    category_ids = list(range(1, len(names) + 1))
    return DatasetSplit(samples, names, category_ids, source=str(split_file), problems=problems,
                        dropped_boxes=dropped)


def _read_xml_folder(root: Path, split: str, class_names: Sequence[str] | None, extra: list[Path]) -> DatasetSplit:
    """A split of a VOC set without ``ImageSets/`` (see the module docstring): every xml of its folder."""
    folders = xml_folders(root)
    if split not in folders:
        raise CenterNetError(f"VOC folder {str(root)!r} has no split {split!r} (splits found: "
                             f"{', '.join(folders) or 'none'}; without ImageSets/ the xml files of a folder are "
                             "'train' and sub-folders of xml files are splits of their names)")
    parsed: dict[Path, VocAnnotation | str] = {}
    names = _class_list(class_names, [xml_dir for xml_dir, _ in folders.values()], parsed, str(root))
    label_of = {name: i for i, name in enumerate(names)}
    xml_dir, image_dirs = folders[split]
    image_dirs = [*image_dirs, *extra]
    problems: list[DatasetProblem] = []
    samples, dropped = [], 0
    for xml_path in sorted(xml_dir.glob("*.xml")):
        found = _read_image(xml_path, image_dirs, (str(xml_path), None), label_of, parsed, problems)
        if found is not None:
            image_path, builder = found
            samples.append(builder.build(image_path, len(samples) + 1))
            dropped += builder.dropped
    category_ids = list(range(1, len(names) + 1))
    return DatasetSplit(samples, names, category_ids, source=str(xml_dir), problems=problems, dropped_boxes=dropped)


def xml_folders(root: Path) -> dict[str, tuple[Path, list[Path]]]:
    """Split name -> (folder of .xml files, folders to find their images in) of a VOC set without ``ImageSets/``;
    {} when ``root`` holds no such folder."""
    def images_for(xml_dir: Path) -> list[Path]:
        base = xml_dir.parent if xml_dir.name.lower() == "annotations" else xml_dir
        return [xml_dir, *(base / name for name in ("JPEGImages", "images") if (base / name).is_dir())]

    for xml_dir in (root, root / "Annotations", root / "annotations"):
        if xml_dir.is_dir() and any(xml_dir.glob("*.xml")):
            return {"train": (xml_dir, images_for(xml_dir))}
    return {folder.name: (folder, images_for(folder)) for folder in sorted(root.iterdir())
            if folder.is_dir() and not folder.name.startswith(".") and any(folder.glob("*.xml"))}


def _class_list(
    given: Sequence[str] | None, xml_dirs: list[Path], parsed: dict[Path, VocAnnotation | str], where: str
) -> list[str]:
    """The given class names, else the sorted object names of every readable xml in ``xml_dirs``."""
    if given is not None:
        return list(given)
    names = sorted(set().union(*(_names_in_folder(xml_dir, parsed) for xml_dir in xml_dirs)))
    if names:
        return names
    refused = [(path, reason) for path, reason in parsed.items() if isinstance(reason, str)]
    why = f"; {len(refused)} xml file(s) refused, the first {str(refused[0][0])!r}: {refused[0][1]}" if refused else ""
    raise CenterNetError(f"VOC folder {where!r}: no class names (no <object><name> in any readable xml, and none "
                         f"given){why}")


def splits_in(root: Path) -> list[str]:
    """Split names under ``ImageSets/Main``, without the per-class lists (``<class>_<split>.txt``); without
    ``ImageSets/``, those of :func:`xml_folders`."""
    if not (root / "ImageSets").is_dir():
        return list(xml_folders(root))
    stems = sorted(p.stem for p in (root / "ImageSets" / "Main").glob("*.txt"))
    return [s for s in stems if not any(s.endswith(f"_{other}") for other in stems if other != s)]


def parse_voc_xml(path: Path) -> VocAnnotation | str:
    """The parsed annotation, or a one-line reason it cannot be read (bad xml, forbidden entities)."""
    try:
        tree = SafeET.parse(path)
    except DefusedXmlException as e:
        return f"forbidden xml construct ({type(e).__name__}: {e}); file skipped"
    except SafeET.ParseError as e:
        return f"xml does not parse ({e}); file skipped"
    except (OSError, UnicodeDecodeError, ValueError, LookupError) as e:  # LookupError: an unknown encoding
        return f"cannot read the file ({one_line(str(e))}); file skipped"
    top = tree.getroot()
    width, height, size_error = _declared_size(top.find("size"))
    objects = [_parse_object(obj) for obj in top.findall("object")]
    return VocAnnotation(width, height, (top.findtext("filename") or "").strip(), objects, size_error)


def _declared_size(size: Element | None) -> tuple[int, int, str]:
    """(width, height, "") from ``<size>``; (0, 0, why) when a field is not a positive number; (0, 0, "")
    when there is no ``<size>`` (the image header gives it)."""
    if size is None:
        return 0, 0, ""
    values = []
    for tag in ("width", "height"):
        text = (size.findtext(tag) or "").strip()
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if value == 0:  # some tools write 0 for "unknown"
            return 0, 0, ""
        if not (math.isfinite(value) and value >= 1):
            return 0, 0, f"<size> <{tag}> is {one_line(text, 30)!r}, not a positive number"
        values.append(int(value))
    return values[0], values[1], ""


def _parse_object(obj: Element) -> VocObject:
    """An ``<object>`` with its raw box; ``error`` says what is missing or not a number."""
    name = (obj.findtext("name") or "").strip()
    difficult_text = (obj.findtext("difficult") or "").strip()
    difficult = _flag(difficult_text)
    bndbox = obj.find("bndbox")
    if not name:
        return VocObject(name, bool(difficult), None, "object has no <name>")
    if difficult is None:
        return VocObject(name, False, None, f"<difficult> is {one_line(difficult_text, 30)!r}, not 0 or 1")
    if bndbox is None:
        return VocObject(name, difficult, None, "object has no <bndbox>")
    texts = [(bndbox.findtext(k) or "").strip() for k in ("xmin", "ymin", "xmax", "ymax")]
    try:
        xmin, ymin, xmax, ymax = (float(t) for t in texts)
    except ValueError:
        shown = ", ".join(f"{k}={one_line(t, 20)!r}" for k, t in zip(("xmin", "ymin", "xmax", "ymax"), texts))
        return VocObject(name, difficult, None, f"<bndbox> needs numeric xmin, ymin, xmax, ymax (got {shown})")
    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
        return VocObject(name, difficult, None, "NaN or infinite coordinate in <bndbox>")
    return VocObject(name, difficult, (xmin, ymin, xmax, ymax))


def _flag(text: str) -> bool | None:
    """``<difficult>``: empty, 0 or false -> False; a non-zero number or true -> True; else None."""
    if text.lower() in ("", "false", "no"):
        return False
    if text.lower() in ("true", "yes"):
        return True
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value != 0


def _names_in_folder(annotations: Path, parsed: dict[Path, VocAnnotation | str]) -> list[str]:
    """Sorted unique object names over every xml in ``annotations`` (parsed files are cached in ``parsed``).

    Unparsable files are left out here; they are reported by the split that lists them.
    """
    names: set[str] = set()
    for path in sorted(annotations.glob("*.xml")):
        parsed[path] = parse_voc_xml(path)
        if isinstance(parsed[path], VocAnnotation):
            names.update(o.name for o in parsed[path].objects if o.name)  # type: ignore[union-attr]
    return sorted(names)


def _split_ids(split_file: Path) -> list[tuple[int, str]]:
    """(1-based line, image id) per non-empty line; the first token of a line is the id."""
    try:
        lines = split_file.read_bytes().decode("utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CenterNetError(f"{split_file}: the split list is not readable UTF-8 text ({one_line(str(e))})") from None
    out = []
    for number, text in enumerate(lines, start=1):
        tokens = text.split()
        if tokens:
            out.append((number, tokens[0]))
    return out


def _read_image(
    xml_path: Path,
    image_dirs: list[Path],
    listed_at: tuple[str, int | None],
    label_of: dict[str, int],
    parsed: dict[Path, VocAnnotation | str],
    problems: list[DatasetProblem],
) -> tuple[Path, SampleBuilder] | None:
    """The image path and its filled builder, or None when the image is dropped (reported at ``listed_at``:
    the split list and its line, or the xml itself)."""
    annotation = parsed[xml_path] if xml_path in parsed else parse_voc_xml(xml_path)
    if isinstance(annotation, str):
        problems.append(DatasetProblem(str(xml_path), None, "bad_xml", annotation))
        return None
    image_path = _find_image(image_dirs, xml_path.stem, annotation.filename)
    if image_path is None:
        looked = ", ".join(str(folder) for folder in image_dirs)
        problems.append(DatasetProblem(*listed_at, "missing_image", f"{xml_path.stem}: no image in {looked}; dropped"))
        return None
    size = (annotation.width, annotation.height)
    if annotation.size_error:
        problems.append(DatasetProblem(str(xml_path), None, "malformed_label",
                                       f"{annotation.size_error}; the image's own size is used"))
    if size[0] <= 0 or size[1] <= 0:
        try:
            header = read_image_header(image_path)
        except ImageFileError as e:
            problems.append(DatasetProblem(str(image_path), None, e.kind,
                                           f"no usable <size> in {xml_path.name} and {e.reason}; dropped"))
            return None
        size = (header.width, header.height)
    builder = SampleBuilder(xml_path, size[0], size[1], problems)
    for index, obj in enumerate(annotation.objects, start=1):
        _add_object(builder, obj, index, label_of)
    return image_path, builder


def _find_image(folders: list[Path], image_key: str, filename: str) -> Path | None:
    """``<id>.jpg`` (or another image suffix), else the xml's ``<filename>``, in the first folder that has it."""
    for folder in folders:
        for suffix in IMAGE_SUFFIXES:
            if file_exists(folder / f"{image_key}{suffix}"):
                return folder / f"{image_key}{suffix}"
        if filename and file_exists(folder / Path(filename).name):
            return folder / Path(filename).name
    return None


def _add_object(builder: SampleBuilder, obj: VocObject, index: int, label_of: dict[str, int]) -> None:
    """Add one object: difficult -> ignore region; unknown names, bad and degenerate boxes reported."""
    what = f"object {index} ({one_line(obj.name, 40) or '?'})"
    if obj.box is None:
        builder.problem("malformed_label", f"{what}: {obj.error}; skipped")
        return
    if not obj.difficult and obj.name not in label_of:
        builder.drop("unknown_class", f"{what}: class {obj.name!r} is not in the class list; skipped")
        return
    xmin, ymin, xmax, ymax = obj.box
    if xmax <= xmin or ymax <= ymin:
        message = f"{what}: degenerate box xmin={xmin:g} ymin={ymin:g} xmax={xmax:g} ymax={ymax:g}; dropped"
        builder.drop("zero_area", message, is_object=not obj.difficult)
        return
    label = None if obj.difficult else label_of[obj.name]  # difficult: ignored for its class (every one if unknown)
    builder.add((xmin - 1, ymin - 1, xmax, ymax), label, what=what, ignore_for=label_of.get(obj.name, -1))
