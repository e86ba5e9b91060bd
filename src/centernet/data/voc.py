"""Reader for Pascal VOC datasets (``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/<split>.txt``).

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


def read_voc(root: str | Path, split: str = "train", class_names: Sequence[str] | None = None) -> DatasetSplit:
    """Read ``ImageSets/Main/<split>.txt`` of the VOC folder ``root``.

    ``class_names`` fixes the class list (labels in its order); by default it is the
    sorted unique object names of every xml under ``Annotations``. Category ids are
    1..C in label order.
    """
    root = Path(root)
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if not file_exists(split_file):
        have = ", ".join(splits_in(root)) or "none"
        raise CenterNetError(f"VOC folder {str(root)!r} has no split {split!r}: expected {str(split_file)!r} "
                             f"(splits found: {have})")
    parsed: dict[Path, VocAnnotation | str] = {}
    names = list(class_names) if class_names is not None else _names_in_folder(root / "Annotations", parsed)
    if not names:
        raise CenterNetError(f"VOC folder {str(root)!r}: no class names (no <object><name> in any readable xml "
                             "under Annotations, and none given)")
    label_of = {name: i for i, name in enumerate(names)}

    problems: list[DatasetProblem] = []
    samples, dropped, seen = [], 0, set()
    for line, image_key in _split_ids(split_file):
        if image_key in seen:
            problems.append(DatasetProblem(str(split_file), line, "duplicate_image",
                                           f"{image_key} listed again; dropped"))
            continue
        seen.add(image_key)
        found = _read_image(root, image_key, split_file, line, label_of, parsed, problems)
        if found is not None:
            image_path, builder = found
            samples.append(builder.build(image_path, len(samples) + 1))
            dropped += builder.dropped
    category_ids = list(range(1, len(names) + 1))
    return DatasetSplit(samples, names, category_ids, source=str(split_file), problems=problems,
                        dropped_boxes=dropped)


def splits_in(root: Path) -> list[str]:
    """Split names under ``ImageSets/Main``, without the per-class lists (``<class>_<split>.txt``)."""
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
    root: Path,
    image_key: str,
    split_file: Path,
    line: int,
    label_of: dict[str, int],
    parsed: dict[Path, VocAnnotation | str],
    problems: list[DatasetProblem],
) -> tuple[Path, SampleBuilder] | None:
    """The image path and its filled builder, or None when the image is dropped (reported)."""
    xml_path = root / "Annotations" / f"{image_key}.xml"
    if not file_exists(xml_path):
        problems.append(DatasetProblem(str(split_file), line, "missing_annotation",
                                       f"{image_key}: no {xml_path.name} in Annotations; dropped"))
        return None
    annotation = parsed[xml_path] if xml_path in parsed else parse_voc_xml(xml_path)
    if isinstance(annotation, str):
        problems.append(DatasetProblem(str(xml_path), None, "bad_xml", annotation))
        return None
    image_path = _find_image(root / "JPEGImages", image_key, annotation.filename)
    if image_path is None:
        problems.append(DatasetProblem(str(split_file), line, "missing_image",
                                       f"{image_key}: no image in JPEGImages; dropped"))
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


def _find_image(folder: Path, image_key: str, filename: str) -> Path | None:
    """``<id>.jpg`` (or another image suffix), else the xml's ``<filename>``, if it exists."""
    for suffix in IMAGE_SUFFIXES:
        if file_exists(folder / f"{image_key}{suffix}"):
            return folder / f"{image_key}{suffix}"
    if filename and file_exists(folder / filename):
        return folder / filename
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
