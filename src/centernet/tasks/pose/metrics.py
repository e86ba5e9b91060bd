"""COCO keypoint AP (OKS) through pycocotools.

:func:`evaluate_coco_keypoints` takes a COCO ground-truth dict whose annotations carry
``keypoints`` (``[x, y, v] * J``) and a list of COCO keypoint results, runs ``COCOeval`` with
``iouType="keypoints"`` in memory and returns the headline numbers as fractions.

The OKS sigmas are per joint: COCO's 17 person values by default when J = 17; for any
other J they are a required argument (they describe how precisely each joint can be
placed, so they belong to the dataset).

As pycocotools: a ground-truth person with no labelled joint (``num_keypoints == 0``) or
``iscrowd`` is ignored; a result's third value per joint is not used by OKS; a result's
area (which decides whether it counts in the medium or large range when unmatched) is the
extent of its joints, as ``COCO.loadRes`` computes it. ``kp_map``, ``kp_map50``, ``kp_map75``
are 0.0 when undefined, ``kp_map_medium`` and ``kp_map_large`` NaN (no person in the range).

Shapes: N persons per image, J joints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from centernet.errors import CenterNetError
from centernet.data.coco import COCO_KEYPOINT_SIGMAS
from centernet.eval.coco import _prepare_ground_truth, _to_numpy, read_stats, run_cocoeval

__all__ = ["COCO_KEYPOINT_SIGMAS", "coco_keypoint_results_from_predictions", "evaluate_coco_keypoints"]


# Index of each headline metric in ``COCOeval.stats`` for keypoints (summarize()'s order).
_STAT_INDEX = {"kp_map": 0, "kp_map50": 1, "kp_map75": 2, "kp_map_medium": 3, "kp_map_large": 4}
_ALWAYS_DEFINED = ("kp_map", "kp_map50", "kp_map75")


def evaluate_coco_keypoints(
    gt: dict,
    results: list[dict],
    sigmas: Sequence[float] | None = None,
    verbose: bool = False,
) -> dict[str, float]:
    """OKS keypoint AP of ``results`` against ``gt``.

    Args:
        gt: COCO-format dict with ``images``, ``annotations`` (``bbox`` xywh, ``keypoints``
            ``[x, y, v] * J``, optional ``area``, ``iscrowd``, ``num_keypoints``) and
            ``categories``. Not modified. An annotation without ``keypoints`` gets J unlabelled
            joints (so it is ignored), a missing ``num_keypoints`` is counted from ``v > 0``.
        results: COCO keypoint results ``{"image_id", "category_id", "keypoints": [x, y, s] * J,
            "score"}``. May be empty. Not modified.
        sigmas: J per-joint OKS sigmas; COCO's when None and J = 17, required otherwise.
        verbose: print pycocotools' messages and summary table.

    Returns:
        ``{"kp_map", "kp_map50", "kp_map75", "kp_map_medium", "kp_map_large"}`` as fractions.
    """
    gt_prepared = _prepare_ground_truth(gt)
    num_joints = _num_joints(gt_prepared, sigmas)
    oks_sigmas = _sigmas(sigmas, num_joints)
    gt_prepared["annotations"] = [_prepare_gt_keypoints(ann, num_joints) for ann in gt_prepared["annotations"]]
    prepared_results = _prepare_results(results, gt_prepared, num_joints)
    evaluator = run_cocoeval(gt_prepared, prepared_results, "keypoints", verbose, kpt_oks_sigmas=oks_sigmas)
    return read_stats(evaluator, _STAT_INDEX, _ALWAYS_DEFINED)


def _num_joints(gt: Mapping[str, Any], sigmas: Sequence[float] | None) -> int:
    """J from the annotations' keypoints (all must agree), else the categories' joint names, else the sigmas."""
    lengths = {len(ann["keypoints"]) for ann in gt["annotations"] if ann.get("keypoints") is not None}
    if len(lengths) > 1 or any(n % 3 for n in lengths):
        raise CenterNetError(f"ground truth: keypoints of lengths {sorted(lengths)}; expected one length 3 * J")
    if lengths:
        return lengths.pop() // 3
    named = [len(c["keypoints"]) for c in gt["categories"] if c.get("keypoints")]
    if named:
        return named[0]
    if sigmas is not None:
        return len(sigmas)
    raise CenterNetError("ground truth: no annotation has keypoints and no category names its joints; "
                         "cannot tell the number of joints (give sigmas)")


def _sigmas(sigmas: Sequence[float] | None, num_joints: int) -> np.ndarray:
    """The (J,) OKS sigmas: the given ones, or COCO's for J = 17."""
    if sigmas is None:
        if num_joints != len(COCO_KEYPOINT_SIGMAS):
            raise CenterNetError(f"keypoint evaluation: {num_joints} joints and no sigmas; COCO's sigmas are for "
                                 f"{len(COCO_KEYPOINT_SIGMAS)} joints, so give one OKS sigma per joint")
        return np.array(COCO_KEYPOINT_SIGMAS, np.float64)
    values = np.asarray(sigmas, np.float64).reshape(-1)
    if len(values) != num_joints or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise CenterNetError(f"keypoint evaluation: sigmas {values.tolist()}; expected {num_joints} positive values "
                             "(one per joint)")
    return values


def _prepare_gt_keypoints(ann: dict[str, Any], num_joints: int) -> dict[str, Any]:
    """A copy of a ground-truth annotation with ``keypoints`` and ``num_keypoints`` filled in."""
    ann = dict(ann)
    if ann.get("keypoints") is None:
        ann["keypoints"] = [0.0] * (3 * num_joints)
    ann["keypoints"] = [float(v) for v in ann["keypoints"]]
    if "num_keypoints" not in ann:
        ann["num_keypoints"] = int(sum(v > 0 for v in ann["keypoints"][2::3]))
    return ann


def _prepare_results(
    results: Sequence[Mapping[str, Any]], gt: Mapping[str, Any], num_joints: int
) -> list[dict[str, Any]]:
    """Validate keypoint results and return fresh result annotations (ids 1..N, bbox and area from the joints)."""
    image_ids = {img["id"] for img in gt["images"]}
    category_ids = {c["id"] for c in gt["categories"]}
    prepared: list[dict[str, Any]] = []
    for index, result in enumerate(results):
        try:
            image_id, category_id = result["image_id"], result["category_id"]
            keypoints = [float(v) for v in result["keypoints"]]
            score = float(result["score"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CenterNetError(f"keypoint result #{index}: malformed ({exc}), expected {{'image_id', "
                                 "'category_id', 'keypoints': [x, y, s] * J, 'score'}") from exc
        if len(keypoints) != 3 * num_joints:
            raise CenterNetError(f"keypoint result #{index}: {len(keypoints)} keypoint values, expected "
                                 f"{3 * num_joints} ([x, y, s] for each of {num_joints} joints)")
        if image_id not in image_ids:
            raise CenterNetError(f"keypoint result #{index}: image_id {image_id!r} is not in the ground truth images")
        if category_id not in category_ids:
            raise CenterNetError(f"keypoint result #{index}: category_id {category_id!r} is not in the ground truth "
                                 f"categories {sorted(category_ids)}")
        xs, ys = keypoints[0::3], keypoints[1::3]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        prepared.append({
            "id": index + 1,
            "image_id": image_id,
            "category_id": category_id,
            "keypoints": keypoints,
            "score": score,
            "bbox": [x0, y0, x1 - x0, y1 - y0],
            "area": (x1 - x0) * (y1 - y0),
            "iscrowd": 0,
        })
    return prepared


def coco_keypoint_results_from_predictions(
    predictions: Sequence[Mapping[str, Any]],
    image_ids: Sequence[int],
    label_to_category_id: Sequence[int] | Mapping[int, int] = (1,),
) -> list[dict]:
    """Turn per-image decoded persons into COCO keypoint results.

    Args:
        predictions: one dict per image with ``keypoints`` (N, J, 3) as (x, y, score) in
            original pixels, ``scores`` (N,), optional ``labels`` (N,) (default 0) and optional
            ``boxes`` (N, 4) xyxy (written as ``bbox`` xywh). Torch tensors or numpy arrays.
        image_ids: the COCO image id of each prediction, same length.
        label_to_category_id: COCO category id per label (COCO's person is 1).

    Returns:
        ``{"image_id", "category_id", "keypoints": [x, y, score] * J, "score"}`` (plus ``bbox``)
        with plain Python numbers; coordinates rounded to 2 decimals, scores to 5.
    """
    if len(predictions) != len(image_ids):
        raise CenterNetError(f"predictions: got {len(predictions)} predictions for {len(image_ids)} image ids, "
                             "expected one per image")
    results: list[dict] = []
    for pred, image_id in zip(predictions, image_ids):
        keypoints = _to_numpy(pred["keypoints"], "keypoints").astype(np.float64)
        scores = _to_numpy(pred["scores"], "scores").astype(np.float64).reshape(-1)
        if len(scores) == 0:  # no person in this image (numpy cannot infer J from an empty array)
            continue
        keypoints = keypoints.reshape(len(scores), -1, 3)  # (N, J, 3)
        labels = _to_numpy(pred["labels"], "labels").reshape(-1) if "labels" in pred else np.zeros(len(scores), int)
        boxes = _to_numpy(pred["boxes"], "boxes").astype(np.float64).reshape(-1, 4) if "boxes" in pred else None
        if len(labels) != len(scores) or (boxes is not None and len(boxes) != len(scores)):
            raise CenterNetError(f"predictions for image {image_id}: {len(scores)} scores, {len(labels)} labels"
                                 f"{'' if boxes is None else f', {len(boxes)} boxes'}; expected equal counts")
        for n, (person, score, label) in enumerate(zip(keypoints, scores.tolist(), labels.tolist())):
            category_id = _category_id(int(label), label_to_category_id, image_id)
            flat = [round(float(v), 2) if i % 3 < 2 else round(float(v), 5) for i, v in enumerate(person.reshape(-1))]
            result = {"image_id": int(image_id), "category_id": int(category_id), "keypoints": flat,
                      "score": round(score, 5)}
            if boxes is not None:
                x1, y1, x2, y2 = boxes[n].tolist()
                result["bbox"] = [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)]
            results.append(result)
    return results


def _category_id(label: int, label_to_category_id: Sequence[int] | Mapping[int, int], image_id: int) -> int:
    try:
        if isinstance(label_to_category_id, Mapping):
            return int(label_to_category_id[label])
        if label < 0:
            raise IndexError(label)
        return int(label_to_category_id[label])
    except (KeyError, IndexError):
        raise CenterNetError(f"label {label} in image {image_id} has no category id, expected a label in "
                             f"0..{len(label_to_category_id) - 1}") from None


def per_joint_oks_ap(gt: dict, results: list[dict], sigmas: Sequence[float] | None = None) -> np.ndarray:
    """(J,) OKS AP (.50:.95, pycocotools) of each joint alone: the ground truth keeps only that joint (a person
    without it is ignored), so each person's OKS is the joint's own similarity. NaN for a joint never labelled.
    Where a model places the hard joints (wrists, ankles) is what this shows."""
    gt_prepared = _prepare_ground_truth(gt)
    num_joints = _num_joints(gt_prepared, sigmas)
    oks_sigmas = _sigmas(sigmas, num_joints)
    annotations = [_prepare_gt_keypoints(ann, num_joints) for ann in gt_prepared["annotations"]]
    prepared_results = _prepare_results(results, gt_prepared, num_joints)
    aps = []
    for j in range(num_joints):
        only_j = []
        for ann in annotations:
            keypoints = [0.0] * (3 * num_joints)
            keypoints[3 * j : 3 * j + 3] = ann["keypoints"][3 * j : 3 * j + 3]
            only_j.append(ann | {"keypoints": keypoints, "num_keypoints": int(keypoints[3 * j + 2] > 0)})
        if not any(ann["num_keypoints"] for ann in only_j):
            aps.append(float("nan"))
            continue
        evaluator = run_cocoeval(gt_prepared | {"annotations": only_j}, [dict(r) for r in prepared_results],
                                 "keypoints", kpt_oks_sigmas=oks_sigmas)
        aps.append(read_stats(evaluator, {"ap": 0}, ("ap",))["ap"])
    return np.asarray(aps, np.float64)
