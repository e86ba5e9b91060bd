"""Evaluation: COCO box metrics through pycocotools; PASCAL VOC AP in numpy."""

from centernet.eval.coco import (
    coco_results_from_predictions,
    evaluate_coco_boxes,
    format_per_class_table,
    metrics_to_jsonable,
)
from centernet.eval.voc import voc_ap

__all__ = [
    "coco_results_from_predictions",
    "evaluate_coco_boxes",
    "format_per_class_table",
    "metrics_to_jsonable",
    "voc_ap",
]
