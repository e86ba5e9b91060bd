"""The ``centernet`` command: demo, train, val, predict. A thin layer over :class:`centernet.CenterNet`."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from .errors import CenterNetError
from .tasks import TASK_OPTIONS
from .tasks import TASKS as TASK_CHOICES

# The demo: a shapes set and a schedule sized to finish within 10 minutes on 2 CPU cores, set-up included.
# The schedule follows the clock (time_limit), so a faster machine simply trains more steps.
# Chosen by measurement (BENCHMARKS.md): a 192 px step costs about half a 256 px one (a set drawn at 128 px, six
# objects an image, was no better in 7 minutes with the plain resnet18); AdamW at 6e-3 beat 2e-3 and 5e-4 in
# equal-time runs. The demo sees each synthetic image only a few times, so the original's random crop and
# colour jitter only slow it down: without them, 3 minutes gave mAP 0.067 against 0.005, and the full 7.5
# minutes 0.143 against 0.062.
DEMO_SHAPES = dict(image_size=192, num_train=4000, num_val=300, size_distribution="uniform")
DEMO_TRAIN = dict(
    epochs=100, batch_size=16, optimizer="adamw", lr=6e-3, weight_decay=1e-4, schedule="cosine",
    warmup_iters=100, input_size=192, val_interval=1000, workers=2, time_limit=7.5,
    ema_decay=0.998, ema_tau=100.0, augment_mode="none", color_aug=False,
)
# The detection demo validates and keeps the raw weights: at 192 px its ~800 steps were too few for an average
# over the last ~500 (the same 7.5-minute run gave mAP 0.166 raw against 0.142 averaged; at 30 minutes, 0.558 and
# 0.554). Re-measured with 128 then 192 px and the GIoU term (session 12): 0.665 raw against 0.609 averaged
# after 780 and 760 steps.
# It trains its 192 px images at 96 px for the first quarter of the clock, at 128 px for the second and at their own
# size for the second half (objects of 3-48 px, then 4-64, then 6-96; a step of batch 16 in about 0.33 s, 0.5 s,
# then 0.8 s), and validates at 192. In equal 7.5-minute runs (session 14, one after the other): mAP 0.712 against
# 0.651 for 128 then 192 px; over 30 minutes 0.817-0.820 against 0.777-0.806 (BENCHMARKS.md). Session 9 measured
# 128 then 192 px at 0.695 against 0.636 at 128 px throughout and 0.507 at 192.
DEMO_DETECT_TRAIN = {
    **DEMO_TRAIN, "ema": False, "start_input_size": (96, 128), "resize_at": (0.25, 0.5), "cache_images": True,
}
# Its 4,000 images are decoded once before the clock starts (4 s, 422 MiB), so the two loader processes
# only crop, flip and encode: in paired one-epoch runs at 96 px (session 17, batch 8, fp32) 500 steps took 86 and 89 s
# against 92 and 113 s decoding each PNG every time (BENCHMARKS.md).
# Its boxes are learnt with a GIoU term beside the paper's L1 (DetectionTask(box_loss="giou")): in equal
# 30-minute runs mAP 0.806 against 0.765 (AP at IoU 0.9: 0.590 against 0.422), level at 7.5 minutes (0.676 both).
DEMO_TASK_OPTIONS = {"detect": {"box_loss": "giou"}}


# The pose and 3D demos: the built-in sets of those tasks, same budget. The 3D set's 640x192 images are trained
# at their own size (a rectangular input) with no flip (a mirrored image would need a mirrored camera).
# The pose demo trains as the detection demo does: resnet18_shortcut, its 256 px images at 128 px for the first
# quarter of the clock, 192 for the second and 256 after, decoded once, validating the raw weights. Each of these
# was chosen in equal 7.5-minute runs (BENCHMARKS.md, "Human pose").
DEMO_POSE_TRAIN = {
    **DEMO_TRAIN, "input_size": 256, "ema": False, "start_input_size": (128, 192), "resize_at": (0.25, 0.5),
    "cache_images": True,
}
# Every demo figure faces the viewer, so a person's left is always on the image's right. With half of them
# turning their back (the set's default), left and right are told apart only by the small face, which a model
# from scratch has not learned in 10 minutes: it regresses both arms to the middle. In equal 4-minute runs the
# joint-offset loss ended at 2.88 facing against 3.73 with backs (BENCHMARKS.md).
DEMO_POSE_SHAPES = dict(back_fraction=0.0)
DEMO_3D_TRAIN = {**DEMO_TRAIN, "input_size": 640, "input_height": 192, "batch_size": 8, "flip": 0.0}
DEMO_DATA = {"detect": "shapes", "pose": "shapes_pose", "3d": "shapes3d"}
# The detection and pose demos' model adds a shortcut from each backbone stage into the upsampling neck: from
# random weights it forms heatmap peaks much sooner than the paper's plain ResNet-18 (BENCHMARKS.md). The 3D demo
# keeps the paper's model.
DEMO_MODEL = {"detect": "resnet18_shortcut", "pose": "resnet18_shortcut", "3d": "resnet18"}


def _scales(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _task_option_choices() -> dict[str, tuple[str, ...]]:
    """Every task option's name (``tasks.TASK_OPTIONS``, over all tasks) and its allowed values."""
    return {name: values for options in TASK_OPTIONS.values() for name, values in options.items()}


def _add_task_option_args(p: argparse.ArgumentParser, defaults: str) -> None:
    """The task options as flags; ``defaults`` says what an absent flag means."""
    choices = _task_option_choices()
    p.add_argument("--centre", choices=choices["centre"], default=None,
                   help="3d: the peak at the 2D box centre (default, the original) or at the projected 3D centre")
    p.add_argument("--regress-at", choices=choices["regress_at"], default=None,
                   help="detect: learn size and offset at each centre (the paper) or at every pixel of its heatmap "
                        "Gaussian, weighted by it (TTFNet), so a peak a pixel off still gives the right box")
    p.add_argument("--box-loss", choices=choices["box_loss"], default=None,
                   help="detect: L1 on size and offset (the paper), or those plus 1 - GIoU of the box decoded where "
                        f"they are learnt (each centre, or each Gaussian pixel with --regress-at gaussian; default: "
                        f"{defaults})")
    p.add_argument("--joint-peak", choices=choices["joint_peak"], default=None,
                   help="pose: the joint-heatmap peak a regressed joint moves onto: the best by score and distance "
                        "(default) or the nearest (the original)")
    p.add_argument("--joint-offsets-at", choices=choices["joint_offsets_at"], default=None,
                   help="pose: learn the joint offsets at each person's centre (the original) or at every pixel of its "
                        "heatmap Gaussian, weighted by it")


def _add_format_arg(p: argparse.ArgumentParser) -> None:
    from .data.mixed import DATA_FORMATS

    p.add_argument("--format", dest="data_format", choices=DATA_FORMATS, default=None,
                   help="read the data as this layout (for a folder that matches several)")


def _task_options(args, defaults: dict | None = None) -> dict:
    """The task options given on the command line, over ``defaults``."""
    given = {name: value for name in sorted(_task_option_choices()) if (value := getattr(args, name)) is not None}
    return {**(defaults or {}), **given}


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="shapes",
                   help="dataset: a YOLO data.yaml or folder, a VOC folder, a COCO folder or .json, or 'shapes' (built-in)")
    p.add_argument("--model", default="resnet18", help="architecture (see `centernet train --list-models`) or a .pt to fine-tune")
    p.add_argument("--task", choices=TASK_CHOICES, default=None,
                   help="detect (boxes, default), pose (persons + keypoints from the data's joints), 3d (KITTI boxes)")
    _add_task_option_args(p, "the paper's")
    p.add_argument("--out", default="runs/train", help="run folder for checkpoints, results.csv, plots, metrics.json")
    p.add_argument("--train-split", default="train", help="split to train on")
    p.add_argument("--val-split", default="val", help="split to validate on ('none' to skip validation)")
    _add_format_arg(p)
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="when the data has no --val-split: the share of training images held out for it (seeded)")
    p.add_argument("--epochs", type=int, default=None, help="passes over the training split (default 70)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--input-size", type=int, default=512, help="square input side, a multiple of 32")
    p.add_argument("--input-height", type=int, default=0,
                   help="a rectangular input --input-size wide and this high (wide images such as KITTI); 0: square")
    p.add_argument("--start-input-size", type=int, nargs="+", default=[0], metavar="SIDE",
                   help="progressive resizing: train at this square side first, then at --input-size (0: off); "
                        "several (96 128): one after the other")
    p.add_argument("--resize-at", type=float, nargs="+", default=None, metavar="FRACTION",
                   help="fraction of training (of the clock with --time-limit) where --start-input-size ends; "
                        "one per start size, increasing (default: the start sizes share the first half "
                        "equally: 0.5 for one, 0.25 0.5 for two)")
    p.add_argument("--optimizer", choices=("adam", "adamw", "sgd"), default="adam")
    p.add_argument("--lr", type=float, default=None, help="default: 5e-4 x batch / 128 (the original's rule)")
    p.add_argument("--weight-decay", type=float, default=0.0,
                   help="decoupled for adamw, L2 for adam and sgd; biases and norm scales are never decayed")
    p.add_argument("--schedule", choices=("step", "cosine"), default="step")
    p.add_argument("--warmup-iters", type=int, default=0)
    p.add_argument("--val-interval", type=int, default=5, help="validate every N epochs (and after the last)")
    p.add_argument("--workers", type=int, default=2, help="data loader processes")
    p.add_argument("--cache", action="store_true", help="decode every training image once and keep it in RAM")
    p.add_argument("--precision", choices=("auto", "bf16", "fp16", "fp32"), default="auto")
    p.add_argument("--time-limit", type=float, default=0.0, help="minutes; the lr schedule follows the clock and training stops there")
    p.add_argument("--augment", choices=("crop", "shift_scale", "none"), default="crop",
                   help="geometric augmentation: the original's random crop (default), its shift/scale variant, or none")
    p.add_argument("--no-color-aug", action="store_true", help="no brightness/contrast/saturation/PCA-lighting jitter")
    p.add_argument("--fliplr", type=float, default=None, help="horizontal flip probability in training (default 0.5; 0 for 3D)")
    p.add_argument("--no-ema", action="store_true", help="validate and save the raw weights, not their moving average")
    p.add_argument("--ema-decay", type=float, default=0.9998)
    p.add_argument("--ema-tau", type=float, default=2000.0, help="steps over which the EMA decay ramps up")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deterministic", action="store_true", help="deterministic algorithms (reproducible CPU runs)")
    p.add_argument("--patience", type=int, default=0, help="early stopping: validations without a better mAP (0: off)")
    p.add_argument("--grad-clip", type=float, default=0.0, help="max gradient norm (0: off)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model for training")
    p.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across torchrun processes (GPUs only)")
    p.add_argument("--freeze-bn", action="store_true", help="BatchNorm statistics frozen (small batches, fine-tuning)")
    p.add_argument("--resume", default=None, metavar="RUN",
                   help="continue a run exactly (RUN folder or its last.pt); only --epochs and --workers may change")
    p.add_argument("--device", default="cpu")
    p.add_argument("--head-conv", type=int, default=None, help="head hidden channels (default: the model's own)")
    p.add_argument("--pretrained", default=None, help="local ImageNet backbone weights (torchvision layout)")


def _train_settings(args) -> dict:
    return dict(
        epochs=70 if args.epochs is None else args.epochs, batch_size=args.batch_size, input_size=args.input_size,
        input_height=args.input_height, start_input_size=args.start_input_size, resize_at=args.resize_at,
        optimizer=args.optimizer,
        lr=args.lr, weight_decay=args.weight_decay, schedule=args.schedule, warmup_iters=args.warmup_iters,
        val_interval=args.val_interval, workers=args.workers, precision=args.precision,
        time_limit=args.time_limit, seed=args.seed, ema=not args.no_ema, ema_decay=args.ema_decay,
        ema_tau=args.ema_tau, device=args.device, cache_images=args.cache, augment_mode=args.augment,
        color_aug=not args.no_color_aug, deterministic=args.deterministic, patience=args.patience,
        grad_clip=args.grad_clip, compile=args.compile, sync_bn=args.sync_bn, freeze_bn=args.freeze_bn,
    ) | ({} if args.fliplr is None else {"flip": args.fliplr})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="centernet", description="CenterNet: objects as points.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="build the shapes set, train, evaluate, draw predictions (~10 min on 2 cores)")
    p.add_argument("--task", choices=TASK_CHOICES, default="detect",
                   help="detect (shapes), pose (articulated figures, keypoints), 3d (cuboids on a road, KITTI format)")
    p.add_argument("--out", default=None, help="run folder (default runs/demo, runs/demo_pose, runs/demo_3d)")
    _add_task_option_args(p, "the paper's, but giou for the detect demo")
    p.add_argument("--minutes", type=float, default=DEMO_TRAIN["time_limit"], help="training time budget")
    p.add_argument("--model", default=None,
                   help="architecture (default: resnet18_shortcut for detect and pose, resnet18 for 3d)")
    p.add_argument("--workers", type=int, default=DEMO_TRAIN["workers"])
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per step (default: detect and pose 16, 3d 8); a 30-minute run gains from batch 8")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default: the demo's 6e-3, times sqrt(batch / the demo's batch))")
    p.add_argument("--warmup-iters", type=int, default=None,
                   help="warm-up steps (default: the demo's 100, times the demo's batch / batch: the same images)")
    p.add_argument("--input-size", type=int, default=None,
                   help="training and validation input side, a multiple of 32 (default: detect 192, pose 256, "
                        "3d 640 wide)")
    p.add_argument("--start-input-size", type=int, nargs="+", default=None, metavar="SIDE",
                   help="progressive resizing: the first half of training at these sides, one after the other, "
                        "then at --input-size (default: detect 96 128, pose 128 192, 3d off; 0: off)")
    p.add_argument("--resize-at", type=float, nargs="+", default=None, metavar="FRACTION",
                   help="fraction of the clock where each --start-input-size ends (default: detect and pose 0.25 0.5; "
                        "the start sizes share the first half equally)")

    p = sub.add_parser("train", help="train a detector")
    _add_train_args(p)
    p.add_argument("--list-models", action="store_true", help="print the registered architectures and exit")

    p = sub.add_parser("check", help="count a dataset's images, boxes and classes and list every problem")
    p.add_argument("data", help="a dataset: YOLO data.yaml or folder, VOC folder, COCO folder or .json, or 'shapes'")
    p.add_argument("--split", action="append", default=None, help="split(s) to check (default: train, val, test)")
    p.add_argument("--no-verify-images", action="store_true", help="skip decoding every image")
    _add_format_arg(p)

    p = sub.add_parser("val", help="evaluate weights on a dataset split (COCO AP)")
    p.add_argument("--weights", required=True, help="a checkpoint written by train (best.pt / last.pt), or an exported .onnx")
    p.add_argument("--backend", default=None,
                   help="torch or onnxruntime (default: from --weights; a .onnx written by `centernet export` runs in onnxruntime)")
    p.add_argument("--data", default="shapes")
    p.add_argument("--split", default="val")
    _add_format_arg(p)
    p.add_argument("--out", default="runs/val")
    p.add_argument("--input-size", type=int, default=None, help="default: the training input size")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--precision", choices=("auto", "bf16", "fp16", "fp32"), default="auto")
    p.add_argument("--keep-resolution", action="store_true", default=None,
                   help="no resize: pad each image to multiples of 32 (default for models trained with --input-height)")
    p.add_argument("--voc07", action="store_true",
                   help="also PASCAL VOC2007 11-point mAP at IoU 0.5 (difficult / ignored boxes neither TP nor FP)")
    p.add_argument("--flip", action="store_true", help="test-time flip augmentation")
    p.add_argument("--scales", type=_scales, default=(1.0,),
                   help="test-time scales, comma-separated (e.g. 0.5,0.75,1,1.25,1.5); merged by soft-NMS")

    p = sub.add_parser("predict", help="detect objects in images: drawn images + COCO-results JSON")
    p.add_argument("source", help="an image, a folder, or a glob (quote it)")
    p.add_argument("--weights", required=True, help="a checkpoint (.pt), or an exported .onnx")
    p.add_argument("--backend", default=None,
                   help="torch or onnxruntime (default: from --weights; a .onnx written by `centernet export` runs in onnxruntime)")
    p.add_argument("--out", default="runs/predict")
    p.add_argument("--conf", type=float, default=0.3, help="score threshold")
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument("--heatmap", action="store_true", help="also save the heatmap overlaid on each image (JET)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp16", "fp32"), default="auto")
    p.add_argument("--keep-resolution", action="store_true", default=None,
                   help="no resize: pad each image to multiples of 32 (default for models trained with --input-height)")
    p.add_argument("--flip", action="store_true", help="test-time flip augmentation")
    p.add_argument("--scales", type=_scales, default=(1.0,),
                   help="test-time scales, comma-separated (e.g. 0.5,0.75,1,1.25,1.5); merged by soft-NMS")
    p.add_argument("--calib", default=None,
                   help="3D models: a KITTI calib file for every image (default: calib/<name>.txt beside image_2/)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first unreadable image (default: skip it, name it, list it in skipped.txt)")

    p = sub.add_parser(
        "convert", help="convert a checkpoint of the original CenterNet (its model zoo .pth) to this package's format"
    )
    p.add_argument("checkpoint", help="the original's .pth (ctdet_coco_dla_2x.pth, ctdet_pascal_resdcn18_384.pth, ...)")
    p.add_argument("--out", default=None, help="output .pt (default: next to the input, same name)")
    p.add_argument("--dataset", choices=("coco", "pascal"), default=None,
                   help="class names, ids and mean/std (default: 80 classes = coco, 20 = pascal)")
    p.add_argument("--names", default=None, help="comma-separated class names, for other class counts")

    p = sub.add_parser("export", help="write ONNX or TorchScript with normalisation and decode inside (no NMS), or safetensors weights")
    p.add_argument("--weights", required=True, help="a checkpoint written by train (best.pt / last.pt)")
    p.add_argument("--format", default="onnx", help="onnx, torchscript, or safetensors (the weights and metadata only)")
    p.add_argument("--out", default=None, help="output file (default: next to the weights, .onnx / .torchscript)")
    p.add_argument("--input-size", type=int, default=None,
                   help="side traced at and letterboxed to by default (default: the training input size); H, W stay dynamic")
    p.add_argument("--max-detections", type=int, default=100, help="K, the fixed number of output rows per image")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not _is_main_process():  # under torchrun only rank 0 prints
        sys.stdout = open(os.devnull, "w")
    try:
        commands = {"demo": cmd_demo, "train": cmd_train, "check": cmd_check, "val": cmd_val, "predict": cmd_predict,
                    "convert": cmd_convert, "export": cmd_export}
        return commands[args.command](args)
    except CenterNetError as e:
        print(f"centernet {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def one_line(error: CenterNetError) -> str:
    """The message of an error; one raised in a DataLoader worker carries that worker's traceback, so keep its last line."""
    text = str(error).strip()
    if "Traceback" in text:
        text = text.splitlines()[-1].removeprefix(f"{CenterNetError.__module__}.{CenterNetError.__name__}: ")
    return text


def cmd_train(args) -> int:
    from . import CenterNet, list_models

    if args.list_models:
        print("\n".join(list_models()))
        return 0
    if args.resume:
        weights = Path(args.resume) / "last.pt" if Path(args.resume).is_dir() else Path(args.resume)
        model = CenterNet(weights, device=args.device)
        overrides = {} if args.epochs is None else {"epochs": args.epochs}
        metrics = model.train(resume=True, workers=args.workers, progress=_is_main_process(), **overrides)
        _print_final(metrics, weights.parent)
        return 0
    model = CenterNet(args.model, task=args.task, head_conv=args.head_conv, pretrained=args.pretrained,
                      device=args.device, task_options=_task_options(args))
    val_split = None if args.val_split.lower() == "none" else args.val_split
    metrics = model.train(data=args.data, out=args.out, train_split=args.train_split, val_split=val_split,
                          val_fraction=args.val_fraction, data_format=args.data_format, progress=_is_main_process(),
                          **_train_settings(args))
    _print_final(metrics, Path(args.out))
    return 0


def cmd_check(args) -> int:
    from .data.check import run_check

    return run_check(args.data, args.split, verify_images=not args.no_verify_images, data_format=args.data_format)


def cmd_val(args) -> int:
    from . import CenterNet

    model = CenterNet.load(args.weights, backend=args.backend)
    metrics = model.val(args.data, split=args.split, out=args.out, input_size=args.input_size,
                        batch_size=args.batch_size, precision=args.precision, keep_resolution=args.keep_resolution,
                        flip=args.flip, scales=args.scales, voc07=args.voc07, data_format=args.data_format)
    print(CenterNet.format_metrics(metrics))
    if args.voc07:
        per_class = ", ".join(f"{name} {ap:.3f}" for name, ap in metrics["per_class_voc07"].items())
        print(f"VOC07 11-point mAP@0.5: {metrics['map50_voc07']:.3f} ({per_class})")
    print(f"wrote {Path(args.out) / 'metrics.json'}")
    return 0


def cmd_convert(args) -> int:
    from .engine.checkpoint import save_checkpoint
    from .models.original import convert_original_checkpoint

    names = [n.strip() for n in args.names.split(",")] if args.names else None
    converted = convert_original_checkpoint(args.checkpoint, class_names=names, dataset=args.dataset)
    out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(".pt")
    save_checkpoint(converted, out)
    print(
        f"{converted['model_name']}: {len(converted['class_names'])} classes, head_conv {converted['head_conv']}; "
        f"wrote {out}\n  use it as any checkpoint: centernet val --weights {out} --data ... --keep-resolution"
    )
    return 0


def cmd_export(args) -> int:
    from . import CenterNet

    model = CenterNet.load(args.weights)
    path = model.export(args.format, out=args.out, input_size=args.input_size, max_detections=args.max_detections)
    from .export import output_layout

    columns = output_layout(model.task.name, getattr(model.task, "num_joints", 0)).split(",")
    shown = ", ".join(columns[:6])
    if model.task.name == "pose":
        shown += f", then {model.task.num_joints} x (kx, ky, ks)"
    elif len(columns) > 6:
        shown = ", ".join(columns)
    print(f"wrote {path}: (B, 3, H, W) float32 RGB in [0, 255] -> (B, {args.max_detections}, {len(columns)}) "
          f"[{shown}] in input pixels")
    return 0


def cmd_predict(args) -> int:
    from . import CenterNet
    from .data.kitti import write_label_file
    from .eval.coco import coco_results_from_predictions
    from .visualize import save_image

    model = CenterNet.load(args.weights, backend=args.backend)
    results = model.predict(args.source, conf=args.conf, input_size=args.input_size, heatmap=args.heatmap,
                            precision=args.precision, keep_resolution=args.keep_resolution,
                            flip=args.flip, scales=args.scales, calib=args.calib, strict=args.strict)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if model.skipped:
        (out / "skipped.txt").write_text("".join(f"{path}\t{reason}\n" for path, reason in model.skipped))
    records = []
    for i, r in enumerate(results):
        name = r.path.stem if r.path else f"image{i}"
        r.save(out / f"{name}.jpg")
        if args.heatmap:
            r.save(out / f"{name}_heatmap.jpg", heatmap=True)
        if r.objects3d is not None:  # KITTI result rows (KITTI's tools read them) and a bird's-eye view
            write_label_file(out / "labels" / f"{name}.txt", r.to_kitti())
            save_image(out / f"{name}_bev.jpg", r.bev())
        boxes = coco_results_from_predictions(
            [{"boxes": r.boxes, "scores": r.scores, "labels": r.labels}], [i], model.category_ids
        )
        extra = r.to_dict()
        for n, rec in enumerate(boxes):
            if r.keypoints is not None:  # COCO keypoint results: [x, y, score] * J
                rec["keypoints"] = [round(float(v), 2) for v in r.keypoints[n].reshape(-1)]
            if r.objects3d is not None:
                rec.update({key: extra[key][n] for key in r.objects3d})
            records.append({**rec, "file_name": str(r.path) if r.path else name})
        print(f"{r.path or name}: {len(r)} objects")
    (out / "predictions.json").write_text(json.dumps(records))
    kitti = " and KITTI labels/" if any(r.objects3d is not None for r in results) else ""
    skipped = f"; skipped {len(model.skipped)} unreadable (listed in skipped.txt)" if model.skipped else ""
    print(f"wrote {len(results)} images, predictions.json{kitti} to {out}{skipped}")
    return 0


def cmd_demo(args) -> int:
    from . import CenterNet
    from .data import load_split

    task = args.task
    out = Path(args.out or {"detect": "runs/demo", "pose": "runs/demo_pose", "3d": "runs/demo_3d"}[task])
    start = time.perf_counter()
    data, data_config, settings = demo_setup(task)
    task_options = _task_options(args, DEMO_TASK_OPTIONS.get(task))
    model = CenterNet(args.model or DEMO_MODEL[task], task=task, task_options=task_options)
    settings = {**settings, "time_limit": args.minutes, "workers": args.workers}
    settings.update(demo_batch_settings(settings, args.batch_size, args.lr, args.warmup_iters))
    if args.input_size is not None:
        settings["input_size"] = args.input_size
    if args.start_input_size is not None:  # its own fractions, or by default the first half shared equally
        settings["start_input_size"], settings["resize_at"] = args.start_input_size, args.resize_at
    elif args.resize_at is not None:
        settings["resize_at"] = args.resize_at
    metrics = model.train(data=data, out=out, shapes_config=data_config, **settings)
    # Draw predictions of the trained model on a few validation images.
    val = load_split(data, "val", data_config, task=task)
    paths = [s.image_path for s in val.samples[:8]]
    results = model.predict(paths, conf=0.3, heatmap=True)
    for r in results:
        r.save(out / "predictions" / f"{r.path.stem}.jpg")
        r.save(out / "predictions" / f"{r.path.stem}_heatmap.jpg", heatmap=True)
        if r.objects3d is not None:
            from .visualize import save_image

            save_image(out / "predictions" / f"{r.path.stem}_bev.jpg", r.bev())
    metrics["total_time_s"] = round(time.perf_counter() - start, 1)
    (out / "metrics.json").write_text(json.dumps(_jsonable(metrics), indent=2))
    _print_final(metrics, out)
    print(f"predictions drawn in {out / 'predictions'}")
    return 0


def demo_batch_settings(
    settings: dict, batch_size: int | None, lr: float | None = None, warmup_iters: int | None = None
) -> dict:
    """A demo's batch size, peak lr and warm-up, from its ``settings`` and what the command line gave.

    A batch other than the demo's own scales the lr with the square root of the ratio (batch 8: 6e-3 -> 4.2e-3,
    near the 4e-3 measured in BENCHMARKS.md) and keeps the warm-up's number of images (batch 8: 200 steps).
    """
    batch = settings["batch_size"] if batch_size is None else batch_size
    if batch < 1:
        raise CenterNetError(f"batch_size={batch!r} is out of range; expected >= 1")
    ratio = batch / settings["batch_size"]
    return {
        "batch_size": batch,
        "lr": settings["lr"] * math.sqrt(ratio) if lr is None else lr,
        "warmup_iters": round(settings["warmup_iters"] / ratio) if warmup_iters is None else warmup_iters,
    }


def demo_setup(task: str):
    """(data name, its settings, training settings) of a task's demo."""
    if task == "pose":
        from .data.shapes_pose import ShapesPoseConfig

        return DEMO_DATA[task], ShapesPoseConfig(**DEMO_POSE_SHAPES), DEMO_POSE_TRAIN
    if task == "3d":
        from .data.shapes3d import Shapes3DConfig

        return DEMO_DATA[task], Shapes3DConfig(), DEMO_3D_TRAIN
    from .data.shapes import ShapesConfig

    return DEMO_DATA[task], ShapesConfig(**DEMO_SHAPES), DEMO_DETECT_TRAIN


def _jsonable(metrics: dict) -> dict:
    from .eval.coco import metrics_to_jsonable

    return metrics_to_jsonable(metrics)


def _print_final(metrics: dict, out: Path) -> None:
    from .engine.trainer import validation_line

    if "map" in metrics:
        print(f"final: {validation_line(metrics)}")
    print(f"run folder: {out} (best.pt, last.pt, results.csv, results.png, metrics.json)")


if __name__ == "__main__":
    sys.exit(main())
