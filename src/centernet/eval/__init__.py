"""Evaluation: COCO box metrics through pycocotools."""

from centernet.eval.coco import (
    coco_results_from_predictions,
    evaluate_coco_boxes,
    format_per_class_table,
    metrics_to_jsonable,
)

__all__ = [
    "coco_results_from_predictions",
    "evaluate_coco_boxes",
    "format_per_class_table",
    "metrics_to_jsonable",
]
