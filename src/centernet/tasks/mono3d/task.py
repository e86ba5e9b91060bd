"""Monocular 3D detection (the paper's "3D bounding box estimation" on KITTI): a detector whose
centres also regress depth, dimensions and orientation.

Heads (the original's names in brackets): heatmap (C) [hm], depth (1) [dep], dimensions (3) [dim],
orientation (8) [rot], size (2) [wh], offset (2) [reg]; with ``keypoints="corners"`` also corners (16): the 8
projected box corners from the centre point, to which the heading is fitted through the camera.
With ``orientation="crop"`` the orientation map head gives way to an object head (``models/crops.py``): a small
network on each object's image crop that learns its axis and direction.

No flip test-time augmentation: mirroring the image needs the calibration mirrored too and
``alpha -> pi - alpha``, and it is not part of the original's 3D test, so ``flip_merge`` refuses.

Shapes: B batch, C classes, h, w output size, M max objects, K detections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ...errors import CenterNetError
from ...data.shapes3d import Shapes3DConfig
from ...losses import centre_samples, focal_loss_from_logits, masked_l1_loss, owned_pixels, weighted_l1_loss
from ...ops.sparse import object_pixels
from ...ops.affine import transform_points
from ..base import DemoRecipe, ImageMeta, Task, register_task
from ..detection import BOX_HEADLINE
from ..recipes import demo_schedule
from ...models.crops import CropNet
from .decode import alpha_from_crop_values, decode_mono3d, depth_from_logits, detections_to_kitti, lift_to_3d
from ...visualize import image_grid, save_image
from .draw import birds_eye_view, draw_boxes3d
from .metrics import ERROR_METRICS, LOOSE_OVERLAP, KittiEvalSettings, evaluate_kitti, matched_errors
from .targets import (
    CENTRE_MODES, CROP_ORIENTATION_VALUES, NUM_BINS, ORIENTATION_CHANNELS, ORIENTATIONS, Mono3DTargetEncoder,
    projected_centres, projected_corners,
)

# The depth losses: the original's L1 in metres, or the Laplacian likelihood of the log depth.
DEPTH_LOSSES = ("l1", "laplace")

# What a 3D export adds to each row after the box columns.
MONO3D_COLUMNS = ("cx", "cy", "depth", "h", "w", "l", "alpha")
# What a 3D detection adds to its box, in KITTI's camera frame (metres, radians): Detections.objects3d.
OBJECT3D_FIELDS = ("dimensions", "location", "rotation_y", "alpha", "depth")
# What a 3D run reports beside the box metrics: KITTI's AP (moderate difficulty, 40 recall points, class mean),
# Car's at IoU 0.5, and the median errors of the matched objects.
KITTI_HEADLINE = (
    "ap2d_moderate", "aos_moderate", "bev_ap_moderate", "ap3d_moderate", "car_bev_ap50", "car_ap3d50",
    *ERROR_METRICS,
)


@dataclass
class Mono3DLossWeights:
    """The original's hm, dep, dim, rot, wh, off weights."""

    heatmap: float = 1.0
    depth: float = 1.0
    dimensions: float = 1.0
    orientation: float = 1.0
    size: float = 0.1
    offset: float = 1.0
    corners: float = 0.2  # L1 in output pixels, as size; the corners' offsets are larger than the box's half size


@register_task
@dataclass
class Mono3DTask(Task):
    """Everything specific to monocular 3D detection, so the model and trainer stay generic."""

    num_classes: int
    max_objects: int = 50        # the original's max_objs for KITTI
    min_overlap: float = 0.7
    exact_radius: bool = False
    centre: str = "box"          # peak at the 2D box centre ("box", the original) or the projected 3D centre
    depth: str = "l1"            # "l1": L1 in metres (the original); "laplace": log depth with an uncertainty
    orientation: str = "two_bins"  # the original's two overlapping bins, or "multibin": 12 classified bins
    regress_at: str = "centre"   # depth, dimensions, orientation learnt at each centre or over its Gaussian
    keypoints: str = "none"      # "corners": also learn the 8 projected corners and fit the heading to them
    depth_readout: str = "peak"  # "pooled": each depth is the weighted mean of the 3x3 pixels around its peak
    initial_depth: float = 20.0  # metres the depth head starts at (its bias -log(d)); the original starts at 1 m
    weights: Mono3DLossWeights = field(default_factory=Mono3DLossWeights)
    name: ClassVar[str] = "3d"
    aliases: ClassVar[tuple[str, ...]] = ("mono3d",)
    OPTIONS: ClassVar[dict[str, tuple[str, ...]]] = {
        "centre": CENTRE_MODES, "depth": DEPTH_LOSSES, "orientation": ORIENTATIONS,
        "regress_at": ("centre", "gaussian"), "keypoints": ("none", "corners"), "depth_readout": ("peak", "pooled"),
    }
    OPTION_HELP: ClassVar[dict[str, str]] = {
        "centre": "the peak at the 2D box centre (the original's) or at the projected 3D centre",
        "depth": "L1 on the depth in metres (the original's), or a Laplacian negative log-likelihood of the log "
                 "depth with a learnt uncertainty that also scales each detection's score",
        "regress_at": "learn depth, dimensions and orientation at each centre (the original's) or at every pixel "
                      "of its heatmap Gaussian, weighted by it: more samples of each object per step",
        "orientation": "the observation angle as the original's two overlapping bins with sin and cos, as 12 "
                       "bins of 30 degrees, classified, with a residual (MonoDLE), or from a small network on each "
                       "object's image crop, scaled to 32 px, that learns its axis and direction",
        "keypoints": "none (the original's), or also learn the 8 projected corners of each box (RTM3D, MonoCon) and, "
                     "with a camera, take the heading that best reprojects onto them",
        "depth_readout": "each depth read at its peak (the original's), or, for a model that learnt its depth over "
                         "each Gaussian, the mean of the 3x3 pixels around the peak weighted by their heatmap scores "
                         "and the depth's confidence: better at IoU 0.7 once the model is well trained",
    }
    needs: ClassVar[tuple[str, ...]] = ("objects3d", "calib")  # per-object 3D boxes; P2 for the projected centres
    headline: ClassVar[tuple[str, ...]] = BOX_HEADLINE + KITTI_HEADLINE
    best_metric: ClassVar[str] = "ap3d_moderate"

    def __post_init__(self) -> None:
        for name, value in self.options().items():
            if value not in self.OPTIONS[name]:
                raise ValueError(f"Mono3DTask: {name}={value!r}; expected one of {self.OPTIONS[name]}")

    def heads(self) -> dict[str, int]:
        depth = 2 if self.depth == "laplace" else 1  # -log depth (and the log of its Laplacian scale)
        corners = {"corners": 16} if self.keypoints == "corners" else {}
        orientation = {"orientation": ORIENTATION_CHANNELS[self.orientation]} if self.orientation != "crop" else {}
        return {"heatmap": self.num_classes, "depth": depth, "dimensions": 3, **orientation, "size": 2, "offset": 2,
                **corners}

    def object_head(self) -> torch.nn.Module | None:
        """With ``orientation="crop"``: the network that reads each object's heading off its image crop."""
        return CropNet(CROP_ORIENTATION_VALUES) if self.orientation == "crop" else None

    def object_boxes(self, targets: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, M', 4) the labelled 2D boxes (output pixels), M' the most objects any image of the batch has (slots
        fill from the first, so the empty tail is left out)."""
        return targets["object_boxes"][:, : max(int(targets["mask"].sum(1).max()), 1)]

    def decode_objects(self, dets: dict[str, torch.Tensor], objects: torch.Tensor) -> dict[str, torch.Tensor]:
        """alpha (B, K) from the object head's axis and direction at each decoded box."""
        return {**dets, "alpha": alpha_from_crop_values(objects)}

    def initial_biases(self) -> dict[str, float]:
        """Output biases of new heads: depth starts at ``initial_depth`` (1/sigmoid(x) - 1 = exp(-x)).

        The original starts every regression head at 0, i.e. at a depth of 1 m; with depths of 5-60 m the L1
        gradient then moves the bias by about one learning rate per step, so short runs spend hundreds of
        steps only reaching the right range (measured: the depth loss stayed near 30 over the first 100 steps).
        """
        start = -math.log(self.initial_depth)
        return {"depth": [start, 0.0] if self.depth == "laplace" else start}

    @classmethod
    def from_config(cls, num_classes: int, config: dict) -> "Mono3DTask":
        return cls(num_classes, **{name: config[name] for name in cls.OPTIONS if name in config})

    @classmethod
    def demo(cls) -> DemoRecipe:
        # The 640x192 frames train at their own size (progressive resizing would letterbox them into squares). The
        # shortcut model, the Laplacian log depth, the regressions over each Gaussian and the heading read off each
        # object's crop each won an equal-time run (BENCHMARKS.md, "Monocular 3D"). The set is small and quick to
        # validate, so training takes 8 of the 10 minutes.
        return DemoRecipe(
            data="shapes3d", data_config=Shapes3DConfig, model="resnet18_shortcut",
            train=demo_schedule(640, input_height=192, batch_size=8, flip=0.0, time_limit=8.0),
            task_options={"depth": "laplace", "regress_at": "gaussian", "orientation": "crop"}, out="runs/demo_3d",
        )

    @classmethod
    def train_defaults(cls) -> dict:
        return {"flip": 0.0}  # a mirrored image would need a mirrored camera

    def check_train_settings(self, settings) -> None:
        if settings.flip:
            raise CenterNetError(
                f"flip={settings.flip} is out of range for 3D training; expected 0 (a mirrored image needs a mirrored camera)"
            )

    def sample_annotations(self, sample, to_output: np.ndarray, flipped: bool) -> dict[str, np.ndarray]:
        """objects3d (N, 8) as read, and the projected 3D centres (N, 2) warped to output pixels.

        Depth, dimensions and angles are not changed by the warp (as the original: a rescaled crop keeps its
        depth targets), so 3D training uses no flip and mild or no scale augmentation.
        """
        if sample.objects3d is None or sample.calib is None:
            raise CenterNetError(f"{sample.image_path}: the sample has no 3D labels or calib; the 3d task needs KITTI data")
        if flipped:
            raise CenterNetError("3D training cannot flip images (set flip=0)")
        objects3d = np.asarray(sample.objects3d, np.float32).reshape(-1, 8)
        centres = projected_centres(objects3d, sample.calib).astype(np.float64)  # (N, 2) original pixels
        centres = centres @ to_output[:, :2].T + to_output[:, 2]
        annotations = {"objects3d": objects3d, "centres": centres.astype(np.float32)}
        if self.keypoints == "corners":
            corners = projected_corners(objects3d, sample.calib).reshape(-1, 2)  # (N * 8, 2) original pixels
            corners = corners @ to_output[:, :2].T + to_output[:, 2]
            annotations["corners"] = corners.reshape(-1, 8, 2).astype(np.float32)
        return annotations

    def encoder(self) -> Mono3DTargetEncoder:
        return Mono3DTargetEncoder(self.num_classes, self.max_objects, self.min_overlap, self.exact_radius,
                                   self.centre, self.orientation, with_radius=self.regress_at == "gaussian",
                                   with_corners=self.keypoints == "corners")

    def flip_merge(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise CenterNetError("flip test-time augmentation is not available for monocular 3D detection "
                             "(it needs the calibration mirrored and alpha -> pi - alpha)")

    def evaluate(self, split, predictions: list[dict], image_ids: list[int]) -> dict:
        """The box metrics, then KITTI's 2D, AOS, bird's-eye-view and 3D AP (moderate, 40 recall points) of the
        decoded objects against each image's label rows (``labels3d``: DontCare, truncation and occlusion as
        read), at the official overlaps and at the looser ones monocular papers also report, and the median
        errors of the matched objects.

        Adds ``ap2d_moderate``, ``aos_moderate``, ``bev_ap_moderate``, ``ap3d_moderate`` (class means over the
        classes with ground truth; 0 where none has any), ``car_bev_ap50`` and ``car_ap3d50`` (Car at IoU 0.5),
        the errors of :func:`matched_errors` (``depth_error`` ... ``axis_error``, ``matched``), and the
        per-class, per-difficulty tables ``kitti`` (official overlaps) and ``kitti_loose`` (``LOOSE_OVERLAP``).
        """
        by_id = {s.image_id: s for s in split.samples}
        ground_truth, detections = [], []
        for prediction, image_id in zip(predictions, image_ids):
            sample = by_id[image_id]
            if sample.labels3d is None:
                raise CenterNetError(f"{sample.image_path}: no KITTI label rows to evaluate 3D detections against")
            ground_truth.append(list(sample.labels3d))
            detections.append(detections_to_kitti(prediction, split.class_names) if "location" in prediction else [])
        classes = tuple(name for name in split.class_names if name in KittiEvalSettings().min_overlap)
        official = evaluate_kitti(ground_truth, detections, KittiEvalSettings(classes=classes))
        loose = evaluate_kitti(ground_truth, detections, KittiEvalSettings(classes=classes, min_overlap=LOOSE_OVERLAP))
        car = loose["per_class"].get("Car", {}).get("moderate", {})
        summary = {key: official[key] for key in KITTI_HEADLINE[:4]}
        summary |= {"car_bev_ap50": car.get("bev", math.nan), "car_ap3d50": car.get("3d", math.nan)}
        summary = {key: (0.0 if value != value else float(value)) for key, value in summary.items()}  # NaN: no gt
        errors = matched_errors(ground_truth, detections, classes)
        return (super().evaluate(split, predictions, image_ids) | summary | errors
                | {"kitti": official["per_class"], "kitti_loose": loose["per_class"]})

    def metrics_line(self, metrics: dict) -> str:
        return super().metrics_line(metrics) + (
            f"  3D (moderate): AP2D {metrics['ap2d_moderate']:.3f}  AOS {metrics['aos_moderate']:.3f}  "
            f"BEV {metrics['bev_ap_moderate']:.3f}  3D {metrics['ap3d_moderate']:.3f}  "
            f"Car at IoU 0.5: BEV {metrics['car_bev_ap50']:.3f}  3D {metrics['car_ap3d50']:.3f}  "
            f"median errors: depth {100 * metrics['depth_error']:.1f} %  lateral {metrics['lateral_error']:.2f} m  "
            f"dimensions {metrics['dimension_error']:.2f} m  alpha {metrics['alpha_error']:.0f} deg  "
            f"axis {metrics['axis_error']:.0f} deg")

    def result_fields(self, dets: dict[str, np.ndarray]) -> dict:
        return {"objects3d": {name: dets[name] for name in OBJECT3D_FIELDS}}

    def draw_targets(self, image: np.ndarray, targets: dict[str, torch.Tensor], out_w: int, stride: int) -> np.ndarray:
        """Each object's target depth in metres at its centre (the 3D box needs the camera, which targets lack)."""
        canvas = image.copy()
        mask = targets["mask"] > 0
        for at, depth in zip(targets["index"][mask].tolist(), targets["depth"][mask].reshape(-1).tolist()):
            x, y = (at % out_w) * stride, (at // out_w) * stride
            cv2.putText(canvas, f"{depth:.0f}m", (x + 2, y - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1,
                        cv2.LINE_AA)
        return canvas

    def ground_truth_fields(self, sample) -> dict:
        objects = np.zeros((0, 8)) if sample.objects3d is None else np.asarray(sample.objects3d, np.float64)
        return self.result_fields({"dimensions": objects[:, 0:3], "location": objects[:, 3:6],
                                   "rotation_y": objects[:, 6], "alpha": objects[:, 7], "depth": objects[:, 5]})

    def validation_plots(self, split, predictions: list[dict], image_ids: list[int], out_dir: Path,
                         frames: int = 8, score: float = 0.25) -> list[Path]:
        """``val_bev.jpg``: the bird's-eye view of the first val frames, detections scoring at least ``score`` in
        their class colours over the ground truth in white."""
        by_id = {s.image_id: s for s in split.samples}
        views = []
        for prediction, image_id in list(zip(predictions, image_ids))[:frames]:
            sample = by_id[image_id]
            truth = self.ground_truth_fields(sample)["objects3d"]
            keep = np.asarray(prediction["scores"]) >= score
            found = ([np.asarray(prediction[k])[keep] for k in ("dimensions", "location", "rotation_y", "labels")]
                     if "location" in prediction else [np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0)])
            truth_group = (truth["dimensions"], truth["location"], truth["rotation_y"], sample.labels)
            views.append(birds_eye_view([tuple(found), truth_group], size=300))
        if not views:
            return []
        return [save_image(Path(out_dir) / "val_bev.jpg", image_grid(views))]

    def draw(self, image: np.ndarray, result) -> np.ndarray:
        """The 3D boxes projected through the image's camera (2D boxes where it has none)."""
        if result.objects3d is None or result.calib is None:
            return super().draw(image, result)
        o = result.objects3d
        return draw_boxes3d(image, o["dimensions"], o["location"], o["rotation_y"], result.labels, result.calib)

    def stack_loss(self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Focal loss on the heatmap; L1 at the centres on the decoded depth ``1 / sigmoid(x) - 1``, on dimensions,
        size and offset; :func:`orientation_loss` on the 8 orientation channels."""
        index, mask = targets["index"], targets["mask"]
        heatmap = focal_loss_from_logits(outputs["heatmap"], targets["heatmap"], targets.get("ignore"))
        out_h, out_w = outputs["heatmap"].shape[2:]
        if self.regress_at == "gaussian":
            samples = owned_pixels(object_pixels(index, mask, targets["peak_radius"], (out_h, out_w)),
                                   tuple(mask.shape), (out_h, out_w))
        else:
            samples = centre_samples(index, mask, out_w)
        b, m, y, x, weight = samples  # (T,) each
        num_objects = mask.float().sum()
        if self.depth == "laplace":
            depth = laplace_log_depth_loss(outputs["depth"][b, :, y, x], targets["depth"][b, m], weight, num_objects)
        else:
            depth = weighted_l1_loss(depth_from_logits(outputs["depth"]), samples, targets["depth"][b, m], num_objects)
        dimensions = weighted_l1_loss(outputs["dimensions"], samples, targets["dimensions"][b, m], num_objects)
        if self.orientation == "crop":
            orientation = crop_orientation_loss(outputs["objects"], targets["alpha"], mask, num_objects)
        else:
            orientation = (orientation_loss if self.orientation == "two_bins" else multibin_orientation_loss)(
                outputs["orientation"][b, :, y, x], targets["orientation_bin"][b, m],
                targets["orientation_residual"][b, m], weight, num_objects,
            )
        size = masked_l1_loss(outputs["size"], index, mask, targets["size"])
        offset = masked_l1_loss(outputs["offset"], index, mask, targets["offset"])
        corners = {}
        if self.keypoints == "corners":
            loss = weighted_l1_loss(outputs["corners"], samples, targets["corner_offsets"][b, m], num_objects)
            corners = {"corners_loss": self.weights.corners * loss}
        parts = {
            "heatmap_loss": self.weights.heatmap * heatmap,
            "depth_loss": self.weights.depth * depth,
            "dimensions_loss": self.weights.dimensions * dimensions,
            "orientation_loss": self.weights.orientation * orientation,
            "size_loss": self.weights.size * size,
            "offset_loss": self.weights.offset * offset,
            **corners,
        }
        return {"loss": sum(parts.values()), **parts}

    def decode_maps(self, outputs: dict[str, torch.Tensor], k: int, fixed_k: bool = False) -> dict[str, torch.Tensor]:
        """Top-K 3D detections in output-map coordinates (see :func:`decode_mono3d`); with ``depth_readout="pooled"``
        each depth is the mean of the pixels around its peak (:func:`pooled_depth`)."""
        return decode_mono3d(outputs, k, fixed_k, pool_depth=self.depth_readout == "pooled")

    def to_original(self, dets: dict[str, torch.Tensor], meta: ImageMeta) -> dict[str, torch.Tensor]:
        """Boxes and centres in original pixels; with the cameras (``meta.calib``, P2 in original pixels) also
        location (B, K, 3) and rotation_y (B, K) (see :func:`lift_to_3d`)."""
        dets = super().to_original(dets, meta)
        to_original = meta.to_original.to(dets["centres"].device)
        dets["centres"] = transform_points(dets["centres"], to_original)
        if "corners" in dets:
            b, k = dets["corners"].shape[:2]
            dets["corners"] = transform_points(dets["corners"].reshape(b, k * 8, 2), to_original).reshape(b, k, 8, 2)
        if meta.calib is not None:
            dets.update(lift_to_3d(dets["centres"], dets["depth"], dets["dimensions"], dets["alpha"],
                                   meta.calib.to(dets["centres"].device), dets.get("corners")))
        return dets

    def export_columns(self, dets: dict[str, torch.Tensor], stride: int) -> list[torch.Tensor]:
        """The 3D centre's image point (cx, cy, input pixels), depth (m), dimensions h w l (m) and alpha (rad); a
        runtime turns them into a location with the camera's P2. With corners, their 8 image points follow (input
        pixels), to which a runtime fits the heading with the camera (:func:`fit_rotation_y`)."""
        columns = [dets["centres"] * stride, dets["depth"].unsqueeze(-1), dets["dimensions"], dets["alpha"].unsqueeze(-1)]
        if "corners" in dets:
            columns.append(dets["corners"].flatten(2) * stride)
        return columns

    def export_column_names(self) -> list[str]:
        corners = [f"corner{n}_{axis}" for n in range(8) for axis in "xy"] if self.keypoints == "corners" else []
        return [*MONO3D_COLUMNS, *corners]

    def read_export_columns(self, columns: torch.Tensor, stride: int) -> dict[str, torch.Tensor]:
        dets = {"centres": columns[..., 0:2] / stride, "depth": columns[..., 2], "dimensions": columns[..., 3:6],
                "alpha": columns[..., 6]}
        if self.keypoints == "corners":
            dets["corners"] = columns[..., 7:23].unflatten(-1, (8, 2)) / stride
        return dets


def laplace_log_depth_loss(
    prediction: torch.Tensor,  # (T, 2) at the samples: -log depth, log of the Laplacian scale b of log depth
    target: torch.Tensor,      # (T, 1) depth in metres
    weight: torch.Tensor,      # (T,) each object's weights sum to 1
    num_objects: torch.Tensor,
) -> torch.Tensor:
    """The Laplacian negative log-likelihood of the log depth, ``|log d* - log d| / b + log b`` (constants
    dropped), averaged over the objects: a relative error, weighed down where the model says it is unsure
    (MonoFlex, GUPNet). ``log d = -x0``, ``log b = x1``."""
    log_depth, log_scale = -prediction[:, 0].float(), prediction[:, 1].float().clamp(min=-10.0)
    error = (torch.log(target[:, 0].float().clamp(min=0.1)) - log_depth).abs()  # (T,)
    return ((error * torch.exp(-log_scale) + log_scale) * weight).sum() / (num_objects + 1e-4)


def crop_orientation_loss(
    prediction: torch.Tensor,  # (B, M', 4) the object head at the first M' slots
    alpha: torch.Tensor,       # (B, M, 1) each slot's observation angle
    mask: torch.Tensor,        # (B, M) 1 for a real object
    num_objects: torch.Tensor,
) -> torch.Tensor:
    """Squared error of (cos a, sin a, cos 2a, sin 2a), summed over the four and averaged over the objects: the
    axis term rewards a heading known up to a turn by pi, which is all a bird's-eye box needs."""
    kept = prediction.shape[1]
    a = alpha[:, :kept, 0].float()
    target = torch.stack([a.cos(), a.sin(), (2 * a).cos(), (2 * a).sin()], dim=-1)  # (B, M', 4)
    error = ((prediction.float() - target) ** 2).sum(-1) * mask[:, :kept].float()
    return error.sum() / (num_objects + 1e-4)


def multibin_orientation_loss(
    prediction: torch.Tensor,       # (T, 24) at the samples: 12 bin logits, 12 residuals
    target_bin: torch.Tensor,       # (T, 1) the bin of alpha, 0..11
    target_residual: torch.Tensor,  # (T, 1) alpha - the bin's centre (radians)
    weight: torch.Tensor,           # (T,)
    num_objects: torch.Tensor,
) -> torch.Tensor:
    """Cross-entropy over the 12 bins plus L1 on the true bin's residual, each averaged over the objects."""
    prediction = prediction.float()
    bins = target_bin[:, 0].long()  # (T,)
    ce = F.cross_entropy(prediction[:, :NUM_BINS], bins, reduction="none")
    residual = torch.gather(prediction[:, NUM_BINS:], 1, bins[:, None])[:, 0]  # (T,)
    l1 = (residual - target_residual[:, 0].float()).abs()
    return ((ce + l1) * weight).sum() / (num_objects + 1e-4)


def orientation_loss(
    prediction: torch.Tensor,       # (T, 8) at the samples
    target_bin: torch.Tensor,       # (T, 2) 1 where alpha is in bin b
    target_residual: torch.Tensor,  # (T, 2) alpha - bin centre (where the bin is set)
    weight: torch.Tensor,           # (T,) each object's weights sum to 1
    num_objects: torch.Tensor,
) -> torch.Tensor:
    """The original's BinRotLoss: bin classification + residual regression, for both bins.

    ``sum_b [ CE(logits_b, bin_b) over objects + smooth_l1(sin_b, sin r_b) + smooth_l1(cos_b, cos r_b)
    over the objects in bin b ]``, each term a mean (a residual term is 0 when no object is in
    the bin). The cross-entropy over the two logits of each bin counts every real object: the
    original multiplies the logits by the mask instead, so its padding slots add log 2 each.
    """
    pred = prediction.float()
    total = pred.new_zeros(())
    for b in range(2):
        logits, sin, cos = pred[:, 4 * b : 4 * b + 2], pred[:, 4 * b + 2], pred[:, 4 * b + 3]
        in_bin = target_bin[:, b].long()  # (T,)
        ce = F.cross_entropy(logits, in_bin, reduction="none")
        total = total + (ce * weight).sum() / (num_objects + 1e-4)
        in_bin_weight = weight * in_bin.float()
        residual = target_residual[:, b].float()
        res = F.smooth_l1_loss(sin, torch.sin(residual), reduction="none") + F.smooth_l1_loss(
            cos, torch.cos(residual), reduction="none")
        total = total + (res * in_bin_weight).sum() / (in_bin_weight.sum() + 1e-4)
    return total
