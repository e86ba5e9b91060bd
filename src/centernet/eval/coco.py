"""COCO-style box evaluation through pycocotools.

The main entry point is :func:`evaluate_coco_boxes`, which takes a COCO ground-truth
dict and a list of COCO result dicts, runs pycocotools' ``COCOeval`` entirely in
memory and returns the usual headline numbers plus per-class AP.

Conventions for undefined values (pycocotools reports ``-1`` when a metric has no
ground truth to be measured against):

* ``map``, ``map50``, ``map75`` and ``mar100`` are always defined: ``-1`` (only
  possible when the ground truth holds no non-crowd box at all) becomes ``0.0``.
* ``map_small``, ``map_medium`` and ``map_large`` become ``float("nan")`` when the
  ground truth has no box in that size bucket.
* ``per_class`` / ``per_class50`` hold an entry for every category; a category with
  no (non-crowd) ground truth box gets ``float("nan")``. A category that has ground
  truth but no matching detections gets ``0.0``.

JSON cannot hold NaN; use :func:`metrics_to_jsonable` before ``json.dump``.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from centernet.errors import CenterNetError

__all__ = [
    "PRCurves",
    "coco_results_from_predictions",
    "evaluate_coco_boxes",
    "format_per_class_table",
    "metrics_to_jsonable",
]

# Index of each headline metric in ``COCOeval.stats`` (the order summarize() uses).
_STAT_INDEX = {
    "map": 0,
    "map50": 1,
    "map75": 2,
    "map_small": 3,
    "map_medium": 4,
    "map_large": 5,
    "mar100": 8,
}
# Headline metrics that are reported as 0.0 rather than NaN when undefined.
_ALWAYS_DEFINED = ("map", "map50", "map75", "mar100")


@dataclass
class PRCurves:
    """Precision and recall at one IoU threshold, per class, from pycocotools' COCOeval (all areas, 100
    detections per image) and its matching of detections to objects.

    ``precision`` against ``recall`` is the interpolated curve COCOeval averages into the AP, so ``ap`` is the
    mean of each row. ``precision_by_score`` and ``recall_by_score`` are the plain figures of the detections
    scoring at least each of ``thresholds``, and ``f1`` theirs. A class without ground truth has rows of NaN.
    """

    class_names: list[str]
    iou: float
    recall: np.ndarray              # (R,) the recall points, 0 to 1
    precision: np.ndarray           # (C, R) interpolated precision at each recall point
    thresholds: np.ndarray          # (T,) score thresholds, 0 to 1
    precision_by_score: np.ndarray  # (C, T)
    recall_by_score: np.ndarray     # (C, T)

    @property
    def ap(self) -> np.ndarray:
        """(C,) AP of each class at ``iou`` (NaN without ground truth)."""
        return self.precision.mean(axis=1)

    @property
    def f1(self) -> np.ndarray:
        """(C, T) F1 at each score threshold (0 where nothing is detected)."""
        p, r = self.precision_by_score, self.recall_by_score
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(p + r > 0, 2 * p * r / (p + r), np.where(np.isnan(p), np.nan, 0.0))


def _to_numpy(value: Any, name: str) -> np.ndarray:
    """Return ``value`` (a torch tensor, numpy array or sequence) as a numpy array."""
    if hasattr(value, "detach"):  # torch.Tensor without importing torch here
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise CenterNetError(f"{name}: cannot convert {type(value).__name__} to an array ({exc})") from exc


def _prepare_ground_truth(gt: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``gt`` and return a copy that pycocotools can index.

    The input dict is not modified. Missing ``area`` (w*h) and ``iscrowd`` (0) fields
    are filled in, an ``info`` entry is added, and annotation ids are renumbered
    1..N if any is missing, non-positive or duplicated (pycocotools' matcher treats
    an id of 0 as "unmatched", so such ids would silently corrupt the result).
    """
    if not isinstance(gt, Mapping):
        raise CenterNetError(f"ground truth: got {type(gt).__name__}, expected a COCO-format dict")
    for key in ("images", "annotations", "categories"):
        if key not in gt or not isinstance(gt[key], list):
            raise CenterNetError(f"ground truth: missing list {key!r}, expected a COCO-format dict with "
                                 "'images', 'annotations' and 'categories'")
    if not gt["categories"]:
        raise CenterNetError("ground truth: 'categories' is empty, expected at least one category")

    category_ids = {c["id"] for c in gt["categories"]}
    image_ids = {img["id"] for img in gt["images"]}
    annotations: list[dict[str, Any]] = []
    for ann in gt["annotations"]:
        ann = dict(ann)
        bbox = ann.get("bbox")
        if bbox is None or len(bbox) != 4:
            raise CenterNetError(f"ground truth annotation {ann.get('id')!r}: bbox {bbox!r}, expected [x, y, w, h]")
        if ann.get("image_id") not in image_ids:
            raise CenterNetError(f"ground truth annotation {ann.get('id')!r}: image_id {ann.get('image_id')!r} "
                                 "is not in 'images'")
        if ann.get("category_id") not in category_ids:
            raise CenterNetError(f"ground truth annotation {ann.get('id')!r}: category_id "
                                 f"{ann.get('category_id')!r} is not in 'categories'")
        ann["bbox"] = [float(v) for v in bbox]
        if "area" not in ann:
            ann["area"] = ann["bbox"][2] * ann["bbox"][3]
        ann.setdefault("iscrowd", 0)
        annotations.append(ann)

    ids = [ann.get("id") for ann in annotations]
    ids_ok = all(isinstance(i, (int, np.integer)) and i > 0 for i in ids) and len(set(ids)) == len(ids)
    if not ids_ok:
        for new_id, ann in enumerate(annotations, start=1):
            ann["id"] = new_id

    prepared = dict(gt)
    prepared["annotations"] = annotations
    prepared.setdefault("info", {})
    prepared.setdefault("licenses", [])
    return prepared


def _prepare_detections(detections: Sequence[Mapping[str, Any]], gt: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Validate detections and return fresh result annotations (ids 1..N, area, iscrowd)."""
    image_ids = {img["id"] for img in gt["images"]}
    category_ids = {c["id"] for c in gt["categories"]}
    prepared: list[dict[str, Any]] = []
    for index, det in enumerate(detections):
        try:
            image_id, category_id = det["image_id"], det["category_id"]
            x, y, w, h = (float(v) for v in det["bbox"])
            score = float(det["score"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CenterNetError(f"detection #{index}: {det!r} is malformed ({exc}), expected "
                                 "{'image_id', 'category_id', 'bbox': [x, y, w, h], 'score'}") from exc
        if image_id not in image_ids:
            raise CenterNetError(f"detection #{index}: image_id {image_id!r} is not in the ground truth images")
        if category_id not in category_ids:
            raise CenterNetError(f"detection #{index}: category_id {category_id!r} is not in the ground truth "
                                 f"categories {sorted(category_ids)}")
        prepared.append({
            "id": index + 1,
            "image_id": image_id,
            "category_id": category_id,
            "bbox": [x, y, w, h],
            "area": w * h,
            "score": score,
            "iscrowd": 0,
        })
    return prepared


def _mean_valid(values: np.ndarray) -> float:
    """Mean over entries > -1 (pycocotools' "defined" marker), NaN if there are none."""
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else float("nan")


def evaluate_coco_boxes(
    gt: dict,
    detections: list[dict],
    class_names: list[str] | None = None,
    verbose: bool = False,
    keep_curves: bool = False,
) -> dict:
    """Evaluate box detections against COCO ground truth with pycocotools.

    Args:
        gt: COCO-format dict with ``images``, ``annotations`` (``bbox`` as xywh,
            optional ``iscrowd`` and ``area``) and ``categories``. Not modified.
        detections: COCO results, each ``{"image_id", "category_id",
            "bbox": [x, y, w, h], "score"}``. May be empty. Not modified.
        class_names: one name per category, in ascending category-id order.
            Defaults to the categories' ``name`` fields (or the id as a string).
        verbose: print pycocotools' progress messages and summary table.
        keep_curves: also return ``"pr_curves"``, the :class:`PRCurves` at IoU 0.5 behind ``per_class50``.

    Returns:
        ``{"map", "map50", "map75", "map_small", "map_medium", "map_large",
        "mar100", "per_class", "per_class50", "ap_by_iou"}`` (``ap_by_iou``: AP at each
        IoU threshold, keyed "0.50" ... "0.95"); all values are fractions in [0, 1].
        See the module docstring for when a value is ``0.0`` versus NaN.

    Raises:
        CenterNetError: malformed ground truth or detections, a detection whose
            image or category is not in the ground truth, or a ``class_names`` list
            of the wrong length.
    """
    gt_prepared = _prepare_ground_truth(gt)
    categories = sorted(gt_prepared["categories"], key=lambda c: c["id"])
    if class_names is None:
        class_names = [str(c.get("name", c["id"])) for c in categories]
    elif len(class_names) != len(categories):
        raise CenterNetError(f"class_names: got {len(class_names)} names, expected {len(categories)} "
                             "(one per ground truth category)")
    evaluator = run_cocoeval(gt_prepared, _prepare_detections(detections, gt_prepared), "bbox", verbose)
    metrics = read_stats(evaluator, _STAT_INDEX, _ALWAYS_DEFINED) | _precision_tables(evaluator, class_names, categories)
    if keep_curves:
        metrics["pr_curves"] = pr_curves(evaluator, class_names, categories, iou=0.5)
    return metrics


def pr_curves(evaluator, class_names: list[str], categories: list[dict], iou: float = 0.5,
              thresholds: np.ndarray = np.linspace(0, 1, 101)) -> PRCurves:
    """The :class:`PRCurves` at ``iou`` of an evaluated and accumulated bbox COCOeval."""
    params = evaluator.params
    t = int(np.argmin(np.abs(np.asarray(params.iouThrs) - iou)))
    area_all, max_dets = list(params.areaRngLbl).index("all"), list(params.maxDets).index(100)
    cat_index = {cat_id: k for k, cat_id in enumerate(params.catIds)}
    rows = [cat_index[c["id"]] for c in categories]
    precision = np.asarray(evaluator.eval["precision"])[t, :, rows, area_all, max_dets].astype(np.float64)  # (C, R)
    precision[(precision < 0).all(axis=1)] = np.nan  # pycocotools' -1: no ground truth of the class
    by_score = [_by_score(evaluator, k, area_all, t, params.maxDets[max_dets], thresholds) for k in rows]
    return PRCurves(list(class_names), float(params.iouThrs[t]), np.asarray(params.recThrs, np.float64), precision,
                    thresholds, np.stack([p for p, _ in by_score]), np.stack([r for _, r in by_score]))


def _by_score(evaluator, k: int, area: int, t: int, max_det: int, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall (T,) of category index ``k``'s detections scoring at least each threshold, counted
    from COCOeval's per-image matches as its ``accumulate`` counts them (NaN without ground truth)."""
    images = len(evaluator.params.imgIds)
    first = (k * len(evaluator.params.areaRng) + area) * images
    entries = [e for e in evaluator.evalImgs[first : first + images] if e is not None]
    objects = sum(int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0)) for e in entries)
    if not objects:
        return np.full(len(thresholds), np.nan), np.full(len(thresholds), np.nan)
    scores = np.concatenate([np.asarray(e["dtScores"][:max_det], np.float64) for e in entries])
    order = np.argsort(-scores, kind="mergesort")  # COCOeval's order
    matched = np.concatenate([np.asarray(e["dtMatches"])[t, :max_det] for e in entries])[order] != 0
    ignored = np.concatenate([np.asarray(e["dtIgnore"])[t, :max_det] for e in entries])[order].astype(bool)
    true_pos = np.concatenate([[0], np.cumsum(matched & ~ignored)])
    false_pos = np.concatenate([[0], np.cumsum(~matched & ~ignored)])
    kept = np.searchsorted(-scores[order], -(thresholds - 1e-9), side="right")  # detections scoring >= each
    tp, fp = true_pos[kept], false_pos[kept]
    return np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0), tp / objects


def read_stats(evaluator, index: Mapping[str, int], always_defined: Sequence[str]) -> dict[str, float]:
    """Named entries of a summarised COCOeval's ``stats``: pycocotools' -1 (nothing to measure) becomes 0.0 for
    the names in ``always_defined`` and NaN for the others."""
    metrics = {}
    for key, i in index.items():
        value = float(evaluator.stats[i])
        metrics[key] = value if value >= 0 else 0.0 if key in always_defined else float("nan")
    return metrics


def run_cocoeval(gt_prepared: dict, results: list[dict], iou_type: str, verbose: bool = False, **params):
    """pycocotools' COCOeval (``iou_type`` 'bbox' or 'keypoints', ``params`` set on its parameters, e.g.
    ``kpt_oks_sigmas``) of ``results`` against ``gt_prepared``: evaluated, accumulated and summarised."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    sink: contextlib.AbstractContextManager = (
        contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    )
    with sink:
        coco_gt = COCO()
        coco_gt.dataset = gt_prepared
        coco_gt.createIndex()
        # Build the results object directly instead of through COCO.loadRes: loadRes
        # mutates its input, rejects an empty list and needs nothing we lack here.
        coco_dt = COCO()
        coco_dt.dataset = {
            "info": gt_prepared["info"],
            "images": list(gt_prepared["images"]),
            "categories": list(gt_prepared["categories"]),
            "annotations": results,
        }
        coco_dt.createIndex()

        evaluator = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        for name, value in params.items():
            setattr(evaluator.params, name, value)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _precision_tables(evaluator, class_names: list[str], categories: list[dict]) -> dict[str, Any]:
    """``per_class`` and ``per_class50`` AP by class name, and ``ap_by_iou``, from an accumulated COCOeval."""
    metrics: dict[str, Any] = {}
    params = evaluator.params
    # precision has shape [iou thresholds, recall thresholds, categories, areas, max dets]
    precision = np.asarray(evaluator.eval["precision"])
    area_all = list(params.areaRngLbl).index("all")
    max_dets = list(params.maxDets).index(100)
    iou50 = int(np.argmin(np.abs(np.asarray(params.iouThrs) - 0.5)))
    cat_index = {cat_id: k for k, cat_id in enumerate(params.catIds)}
    per_class: dict[str, float] = {}
    per_class50: dict[str, float] = {}
    for name, category in zip(class_names, categories):
        k = cat_index[category["id"]]
        per_class[name] = _mean_valid(precision[:, :, k, area_all, max_dets])
        per_class50[name] = _mean_valid(precision[iou50, :, k, area_all, max_dets])
    metrics["per_class"] = per_class
    metrics["per_class50"] = per_class50
    # AP at each IoU threshold (all classes and areas): where along .50:.95 a detector's boxes stop fitting
    # (0.0 where undefined, as map)
    by_iou = [_mean_valid(precision[i, :, :, area_all, max_dets]) for i in range(len(params.iouThrs))]
    metrics["ap_by_iou"] = {f"{t:.2f}": 0.0 if math.isnan(ap) else ap for t, ap in zip(params.iouThrs, by_iou)}
    return metrics


def box_metrics_line(metrics: Mapping[str, float]) -> str:
    """One line of the COCO box metrics: mAP, AP50, AP75 and AP by object size."""
    return (
        f"mAP {metrics['map']:.3f}  AP50 {metrics['map50']:.3f}  AP75 {metrics['map75']:.3f}  "
        f"(small {metrics['map_small']:.3f} medium {metrics['map_medium']:.3f} large {metrics['map_large']:.3f})"
    )


def metrics_to_jsonable(d: Any) -> Any:
    """Return a copy of ``d`` that ``json.dump`` accepts with ``allow_nan=False``.

    Recurses into dicts, lists and tuples; NaN and infinite floats become ``None``,
    numpy scalars and arrays become plain Python numbers and lists.
    """
    if isinstance(d, Mapping):
        return {str(k): metrics_to_jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [metrics_to_jsonable(v) for v in d]
    if isinstance(d, np.ndarray):
        return metrics_to_jsonable(d.tolist())
    if isinstance(d, np.generic):
        d = d.item()
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d


def format_per_class_table(per_class: dict, per_class50: dict) -> str:
    """Format per-class AP and AP50 as an aligned text table (percentages, one decimal).

    Classes are listed in the order of ``per_class``; an undefined value (NaN or a
    class missing from ``per_class50``) is shown as ``-``.
    """

    def cell(value: float | None) -> str:
        if value is None or not math.isfinite(value):
            return "-"
        return f"{100.0 * value:.1f}"

    header = ("class", "AP", "AP50")
    rows = [(str(name), cell(ap), cell(per_class50.get(name))) for name, ap in per_class.items()]
    name_width = max(len(header[0]), *(len(r[0]) for r in rows)) if rows else len(header[0])
    num_width = max(6, *(max(len(r[1]), len(r[2])) for r in rows)) if rows else 6

    def line(row: tuple[str, str, str]) -> str:
        return f"{row[0]:<{name_width}}  {row[1]:>{num_width}}  {row[2]:>{num_width}}"

    lines = [line(header), "-" * (name_width + 2 * num_width + 4)]
    lines.extend(line(r) for r in rows)
    return "\n".join(lines)


def coco_results_from_predictions(
    predictions: Sequence[Mapping[str, Any]],
    image_ids: Sequence[int],
    label_to_category_id: Sequence[int] | Mapping[int, int],
) -> list[dict]:
    """Turn per-image predictions into COCO result dicts.

    Args:
        predictions: one dict per image with ``boxes`` (N, 4) xyxy in pixels,
            ``scores`` (N,) and ``labels`` (N,) contiguous class indices 0..C-1.
            Torch tensors or numpy arrays.
        image_ids: the COCO image id of each prediction, same length.
        label_to_category_id: COCO category id for each contiguous label, as a list
            (indexed by label) or a dict ``{label: category_id}``.

    Returns:
        A list of ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``
        with plain Python numbers; bbox values rounded to 2 decimals, scores to 5.
    """
    if len(predictions) != len(image_ids):
        raise CenterNetError(f"predictions: got {len(predictions)} predictions for {len(image_ids)} image ids, "
                             "expected one per image")
    results: list[dict] = []
    for pred, image_id in zip(predictions, image_ids):
        boxes = _to_numpy(pred["boxes"], "boxes").astype(np.float64).reshape(-1, 4)
        scores = _to_numpy(pred["scores"], "scores").astype(np.float64).reshape(-1)
        labels = _to_numpy(pred["labels"], "labels").reshape(-1)
        if not len(boxes) == len(scores) == len(labels):
            raise CenterNetError(f"predictions for image {image_id}: {len(boxes)} boxes, {len(scores)} scores and "
                                 f"{len(labels)} labels, expected equal counts")
        for (x1, y1, x2, y2), score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist()):
            label = int(label)
            try:
                if isinstance(label_to_category_id, Mapping):
                    category_id = label_to_category_id[label]
                else:
                    if label < 0:
                        raise IndexError(label)
                    category_id = label_to_category_id[label]
            except (KeyError, IndexError):
                raise CenterNetError(f"label {label} in image {image_id} has no category id, expected a label in "
                                     f"0..{len(label_to_category_id) - 1}") from None
            results.append({
                "image_id": int(image_id),
                "category_id": int(category_id),
                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                "score": round(score, 5),
            })
    return results
