"""``centernet check``: count a dataset's contents and list its problems.

The readers already report label problems (see ``samples.PROBLEM_KINDS``) without
decoding images; :func:`check_split` adds the image checks (readable, not truncated, within
the pixel limit, decodable, displayed size equal to the declared one), which need a full
decode per image.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace

from ..progress import progress_bar
from .images import ImageFileError, read_image_header, read_image_rgb
from .samples import PROBLEM_KINDS, DatasetProblem, DatasetSplit, DetectionSample, instances_per_class

EXAMPLES_PER_KIND = 10


@dataclass
class DatasetReport:
    """What a split contains and what is wrong with it.

    ``boxes`` counts object boxes as they appear in the files (kept ones plus those the
    reader dropped for an unknown class or zero area); ``kept_boxes`` and
    ``boxes_per_class`` count the boxes used for training. Ignore regions (crowd,
    difficult) are counted apart.
    """

    source: str
    images: int = 0
    boxes: int = 0
    kept_boxes: int = 0
    boxes_per_class: dict[str, int] = field(default_factory=dict)
    background_images: int = 0  # images with no (kept) box
    ignore_regions: int = 0
    image_sizes: Counter = field(default_factory=Counter)  # (width, height) -> images, as declared
    problems: list[DatasetProblem] = field(default_factory=list)  # the reader's, then the image checks'
    bad_images: set[str] = field(default_factory=set)  # paths that failed the image check
    images_verified: bool = False
    notes: list[str] = field(default_factory=list)  # the reader's decisions worth a line (see DatasetSplit.notes)
    image_paths: list[str] = field(default_factory=list)  # every image of the split, resolved

    def problem_counts(self) -> Counter:
        """kind -> number of problems."""
        return Counter(p.kind for p in self.problems)


def check_split(
    split: DatasetSplit, verify_images: bool = True, progress: bool = True, max_pixels: int | None = None
) -> DatasetReport:
    """Count ``split``'s images, boxes, classes and sizes; with ``verify_images`` decode every image too.

    ``max_pixels``: the image size limit (default :func:`centernet.data.images.max_image_pixels`).
    """
    counts = instances_per_class([s.labels for s in split.samples], split.num_classes)
    kept = int(counts.sum())
    report = DatasetReport(
        source=split.source,
        images=len(split.samples),
        boxes=kept + split.dropped_boxes,
        kept_boxes=kept,
        boxes_per_class={name: int(counts[i]) for i, name in enumerate(split.class_names)},
        background_images=sum(len(s.boxes) == 0 for s in split.samples),
        ignore_regions=sum(len(s.ignore_boxes) for s in split.samples),
        image_sizes=Counter((s.width, s.height) for s in split.samples),
        problems=list(split.problems),
        images_verified=verify_images,
        notes=list(split.notes),
        image_paths=[os.path.realpath(s.image_path) for s in split.samples],
    )
    if verify_images:
        for sample in progress_bar(split.samples, desc="checking images", disable=not progress):
            problem = check_image(sample, max_pixels)
            if problem is not None:
                report.problems.append(problem)
                report.bad_images.add(str(sample.image_path))
    return report


def check_image(sample: DetectionSample, max_pixels: int | None = None) -> DatasetProblem | None:
    """The first thing wrong with the sample's image file, or None.

    The image is read exactly as training and prediction read it
    (:func:`centernet.data.images.read_image_rgb`: missing, empty, cut short, over the pixel
    limit, not decodable), then its displayed size is compared with the declared
    ``width`` x ``height``.
    """
    where = str(sample.image_path)
    try:
        image = read_image_rgb(sample.image_path, max_pixels)
    except ImageFileError as e:
        return DatasetProblem(where, None, e.kind, e.reason)
    height, width = image.shape[:2]
    if (width, height) == (sample.width, sample.height):
        return None
    message = f"decoded {width}x{height}, annotations say {sample.width}x{sample.height}"
    orientation = read_image_header(sample.image_path).orientation
    if orientation >= 5 and (height, width) == (sample.width, sample.height):
        message += (f" (its EXIF orientation {orientation} turns it by 90 degrees; were the boxes drawn on the "
                    "unturned image?)")
    return DatasetProblem(where, None, "size_mismatch", message)


def summary_line(report: DatasetReport) -> str:
    """One line for a training log: counts, then the problems by kind (or 'no problems')."""
    from .samples import problem_summary

    counts = (
        f"{report.images} images, {report.kept_boxes} boxes, {report.background_images} background, "
        f"{report.ignore_regions} ignore regions"
    )
    notes = "".join(f"\n  note: {note}" for note in report.notes)
    return f"{report.source}: {counts}; {problem_summary(report.problems) or 'no problems found'}{notes}"


def valid_samples(split: DatasetSplit, report: DatasetReport) -> DatasetSplit:
    """``split`` without the images that failed the image check; problems become the report's."""
    kept = [s for s in split.samples if str(s.image_path) not in report.bad_images]
    return replace(split, samples=kept, problems=list(report.problems))


def format_report(report: DatasetReport) -> str:
    """A readable summary: counts, boxes per class, then problems by kind with examples."""
    lines = [f"Dataset {report.source}"]
    verified = (f"yes, {len(report.bad_images)} failed" if report.images_verified
                else "no (labels only)")
    rows = [
        ("images", str(report.images)),
        ("background images", str(report.background_images)),
        ("boxes (in files)", str(report.boxes)),
        ("boxes kept", str(report.kept_boxes)),
        ("ignore regions", str(report.ignore_regions)),
        ("image sizes", _sizes(report.image_sizes)),
        ("images decoded", verified),
    ]
    lines += [f"  {name:<18} {value}" for name, value in rows]
    lines += _class_lines(report.boxes_per_class)
    lines += [f"  note: {note}" for note in report.notes]
    lines += _problem_lines(report.problems)
    return "\n".join(lines)


def _class_lines(per_class: dict[str, int]) -> list[str]:
    """One line per class with boxes, then the classes without any (names cut after 10)."""
    present = {name: n for name, n in per_class.items() if n}
    width = max((len(n) for n in present), default=0)
    lines = [f"Boxes per class (kept, {len(present)} of {len(per_class)} classes present):"]
    lines += [f"  {name:<{width}}  {n:>7}" for name, n in present.items()]
    absent = [name for name, n in per_class.items() if not n]
    if absent:
        shown = ", ".join(absent[:10]) + (f", ... and {len(absent) - 10} more" if len(absent) > 10 else "")
        lines.append(f"  no boxes: {shown}")
    return lines


def _sizes(sizes: Counter) -> str:
    """``640x480 (364 images)`` or ``3 sizes, most common 640x480 (300), min 320x240, max 1280x720``."""
    if not sizes:
        return "-"
    (w, h), n = sizes.most_common(1)[0]
    if len(sizes) == 1:
        return f"{w}x{h} ({n} images)"
    by_area = sorted(sizes, key=lambda s: (s[0] * s[1], s))
    (w0, h0), (w1, h1) = by_area[0], by_area[-1]
    return f"{len(sizes)} sizes, most common {w}x{h} ({n}), smallest {w0}x{h0}, largest {w1}x{h1}"


def _problem_lines(problems: list[DatasetProblem]) -> list[str]:
    """``Problems: N`` then per kind (most frequent first) its count, meaning and up to 10 examples."""
    if not problems:
        return ["Problems: none"]
    by_kind: dict[str, list[DatasetProblem]] = defaultdict(list)
    for p in problems:
        by_kind[p.kind].append(p)
    lines = [f"Problems: {len(problems)}"]
    for kind, items in sorted(by_kind.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        meaning = PROBLEM_KINDS.get(kind)
        lines.append(f"  {kind} ({len(items)})" + (f": {meaning}" if meaning else ""))
        lines += [f"    {p.location()}: {p.message}" for p in items[:EXAMPLES_PER_KIND]]
        if len(items) > EXAMPLES_PER_KIND:
            lines.append(f"    ... and {len(items) - EXAMPLES_PER_KIND} more")
    return lines


def run_check(
    data: str, splits: list[str] | None = None, verify_images: bool = True, progress: bool = True,
    data_format: str | None = None,
) -> int:
    """``centernet check DATA``: print :func:`format_report` for each split; returns 0 (problems are not fatal).

    ``splits`` defaults to those among train/val/test (and their synonyms: valid, ...) the dataset
    has (or all it has, when none of those). A split it does not have, or an unknown layout, raises
    CenterNetError.
    """
    from . import SPLIT_SYNONYMS, available_splits, read_split

    if not splits:
        have = available_splits(data, data_format=data_format)
        splits = [s for names in SPLIT_SYNONYMS for s in have if s.lower() in names] or have
    reports = [check_split(read_split(data, name, data_format=data_format), verify_images=verify_images,
                           progress=progress) for name in splits]
    _mark_shared_images(splits, reports)
    images = boxes = 0
    problems: list[DatasetProblem] = []
    for i, (name, report) in enumerate(zip(splits, reports)):
        print(("\n" if i else "") + f"== split {name} ==\n" + format_report(report), flush=True)
        images, boxes = images + report.images, boxes + report.boxes
        problems += report.problems
    if len(splits) > 1:
        from .samples import problem_summary

        print(f"\n== all splits ({', '.join(splits)}): {images} images, {boxes} boxes (in files); "
              f"{problem_summary(problems) or 'no problems found'} ==")
    return 0


def _mark_shared_images(splits: list[str], reports: list[DatasetReport]) -> None:
    """A ``duplicate_image`` problem in a split's report for each image an earlier split lists too (validation
    would then see training images). A split with exactly an earlier one's images is that split under another
    name (a KITTI folder without ImageSets gives every frame as train and val) and is not marked."""
    first_seen: dict[str, str] = {}
    seen_sets: list[set[str]] = []
    for name, report in zip(splits, reports):
        images = set(report.image_paths)
        if images in seen_sets:
            continue
        seen_sets.append(images)
        for image in report.image_paths:
            if image in first_seen:
                report.problems.append(DatasetProblem(image, None, "duplicate_image",
                                                      f"also in split {first_seen[image]!r}"))
            else:
                first_seen[image] = name


__all__ = ["DatasetReport", "check_image", "check_split", "format_report", "run_check", "summary_line", "valid_samples"]
