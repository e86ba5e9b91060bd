"""The ``centernet`` command: demo, train, val, predict. A thin layer over :class:`centernet.CenterNet`."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from .config import TrainConfig
from .engine.device import describe_device
from .errors import CenterNetError
from .tasks import all_options, list_tasks, task_class
from .tasks.recipes import DEMO_SCHEDULE


def _scales(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _add_task_option_args(p: argparse.ArgumentParser, note: str = "") -> None:
    """Every registered task's options as flags (``--box-loss giou``), with the help each task gives them (an
    option two tasks share, such as ``regress_at``, is one flag)."""
    helps: dict[str, list[str]] = {}
    for name in list_tasks():
        cls = task_class(name)
        for option in cls.OPTIONS:
            helps.setdefault(option, []).append(f"{cls.name}: {cls.OPTION_HELP.get(option, '')}")
    for option, choices in all_options().items():
        p.add_argument(f"--{option.replace('_', '-')}", dest=option, choices=choices, default=None,
                       help="; ".join(helps[option]) + note)


def _add_format_arg(p: argparse.ArgumentParser) -> None:
    from .data.mixed import DATA_FORMATS

    p.add_argument("--format", dest="data_format", choices=DATA_FORMATS, default=None,
                   help="read the data as this layout (for a folder that matches several)")


def _task_options(args, defaults: dict | None = None) -> dict:
    """The task options given on the command line, over ``defaults``."""
    given = {name: value for name in sorted(all_options()) if (value := getattr(args, name)) is not None}
    return {**(defaults or {}), **given}


# TrainConfig fields on the command line: (field, flag, help). Each flag's type, choices and default come from the
# field, so the command line cannot drift from the settings; a flag not given leaves the field to TrainConfig's
# default or the task's (3D trains without flips). A bool field's flag sets it: --no-X to False, else to True.
TRAIN_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("epochs", "--epochs", "passes over the training split"),
    ("batch_size", "--batch-size", "images per optimiser step"),
    ("input_size", "--input-size", "square input side, a multiple of 32"),
    ("input_height", "--input-height",
     "a rectangular input --input-size wide and this high (wide images such as KITTI); 0: square"),
    ("start_input_size", "--start-input-size",
     "progressive resizing: train at this square side first, then at --input-size (0: off); several (96 128): one "
     "after the other"),
    ("resize_at", "--resize-at",
     "fraction of training (of the clock with --time-limit) where --start-input-size ends; one per start size, "
     "increasing (by default the start sizes share the first half equally: 0.5 for one, 0.25 0.5 for two)"),
    ("optimizer", "--optimizer", "the optimiser"),
    ("lr", "--lr", "peak learning rate (by default 5e-4 x batch / 128, the original's rule)"),
    ("weight_decay", "--weight-decay", "decoupled for adamw, L2 for adam and sgd; biases and norm scales never"),
    ("schedule", "--schedule", "learning-rate schedule"),
    ("warmup_iters", "--warmup-iters", "linear warm-up steps"),
    ("val_interval", "--val-interval", "validate every N epochs (and after the last)"),
    ("workers", "--workers", "data loader processes"),
    ("cache_images", "--cache", "decode every training image once and keep it in RAM"),
    ("precision", "--precision", "arithmetic: auto measures bf16 against fp32 on this machine"),
    ("time_limit", "--time-limit", "minutes; the lr schedule follows the clock and training stops there (0: off)"),
    ("augment_mode", "--augment",
     "geometric augmentation: the original's random crop, its shift/scale variant, or none"),
    ("color_aug", "--no-color-aug", "no brightness/contrast/saturation/PCA-lighting jitter"),
    ("flip", "--fliplr", "horizontal flip probability in training (3D: 0)"),
    ("ema", "--no-ema", "validate and save the raw weights, not their moving average"),
    ("plots", "--no-plots", "no pictures in the run folder (labels, the first training batches, the last "
                            "validation's predictions, PR and F1 curves, confusion matrix)"),
    ("ema_decay", "--ema-decay", "the moving average's final decay per step"),
    ("ema_tau", "--ema-tau", "steps over which the EMA decay ramps up"),
    ("seed", "--seed", "seeds the weights, shuffling and augmentation"),
    ("deterministic", "--deterministic", "deterministic algorithms (reproducible CPU runs)"),
    ("patience", "--patience", "early stopping: validations without a better best metric (0: off)"),
    ("grad_clip", "--grad-clip", "max gradient norm (0: off)"),
    ("compile", "--compile", "torch.compile the model for training"),
    ("sync_bn", "--sync-bn", "SyncBatchNorm across torchrun processes (GPUs only)"),
    ("freeze_bn", "--freeze-bn", "BatchNorm statistics frozen (small batches, fine-tuning)"),
)


STAGED_SETTINGS = ("start_input_size", "resize_at")  # one value, or one per progressive-resizing stage


def _add_settings_args(p: argparse.ArgumentParser, settings: type, flags: tuple[tuple[str, str, str], ...]) -> None:
    """One flag per ``(field, flag, help)`` of the ``settings`` dataclass, typed, with choices and its default said
    from the dataclass; every flag's own default is None (not given)."""
    defaults, choices = settings(), getattr(settings, "CHOICES", {})
    for name, flag, text in flags:
        default = getattr(defaults, name)
        if isinstance(default, bool):
            action = "store_false" if flag.startswith("--no-") else "store_true"
            p.add_argument(flag, dest=name, action=action, default=None, help=text)
            continue
        kind = int if isinstance(default, int) else float if isinstance(default, float) or default is None else str
        many = name in STAGED_SETTINGS
        said = "" if "default" in text or default is None else f" (default {default})"
        p.add_argument(flag, dest=name, type=kind, choices=choices.get(name), nargs="+" if many else None,
                       metavar="N" if many else None, default=None, help=text + said)


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="shapes",
                   help="dataset: a YOLO data.yaml or folder, a VOC folder, a COCO folder or .json, or 'shapes' (built-in)")
    p.add_argument("--model", default="resnet18", help="architecture (see `centernet train --list-models`) or a .pt to fine-tune")
    p.add_argument("--task", choices=list_tasks(), default=None,
                   help="detect (boxes, default), pose (persons + keypoints from the data's joints), 3d (KITTI boxes)")
    _add_task_option_args(p)
    p.add_argument("--out", default="runs/train", help="run folder for checkpoints, results.csv, plots, metrics.json")
    p.add_argument("--train-split", default="train", help="split to train on")
    p.add_argument("--val-split", default="val", help="split to validate on ('none' to skip validation)")
    _add_format_arg(p)
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="when the data has no --val-split: the share of training images held out for it (seeded)")
    _add_settings_args(p, TrainConfig, TRAIN_FLAGS)
    p.add_argument("--resume", default=None, metavar="RUN",
                   help="continue a run exactly (RUN folder or its last.pt); only --epochs and --workers may change")
    _add_device_arg(p)
    p.add_argument("--head-conv", type=int, default=None, help="head hidden channels (default: the model's own)")
    p.add_argument("--pretrained", default=None, help="local ImageNet backbone weights (torchvision layout)")


def _train_settings(args) -> dict:
    """The TrainConfig settings given on the command line (the others keep their defaults, or the task's)."""
    return {name: value for name, *_ in TRAIN_FLAGS if (value := getattr(args, name)) is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="centernet", description="CenterNet: objects as points.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_demo_parser(sub)
    p = sub.add_parser("train", help="train a detector")
    _add_train_args(p)
    p.add_argument("--config", default=None, metavar="YAML",
                   help="replay a run: its args.yaml (or any YAML of the same keys); flags given too override it")
    p.add_argument("--list-models", action="store_true", help="print the registered architectures and exit")
    p.set_defaults(shapes_config=None, config_train={})
    parser.train_parser = p  # --config sets its defaults (see main)
    p = sub.add_parser("check", help="count a dataset's images, boxes and classes and list every problem")
    p.add_argument("data", help="a dataset: YOLO data.yaml or folder, VOC folder, COCO folder or .json, or 'shapes'")
    p.add_argument("--split", action="append", default=None, help="split(s) to check (default: train, val, test)")
    p.add_argument("--no-verify-images", action="store_true", help="skip decoding every image")
    _add_format_arg(p)
    _add_val_parser(sub)
    _add_predict_parser(sub)
    _add_convert_parser(sub)
    _add_export_parser(sub)
    return parser


def _add_demo_parser(sub) -> None:
    p = sub.add_parser("demo", help="build the shapes set, train, evaluate, draw predictions (~10 min on 2 cores)")
    p.add_argument("--task", choices=list_tasks(), default="detect",
                   help="detect (shapes), pose (articulated figures, keypoints), 3d (cuboids on a road, KITTI format)")
    p.add_argument("--out", default=None, help="run folder (default runs/demo, runs/demo_pose, runs/demo_3d)")
    _add_device_arg(p)
    _add_task_option_args(p, " (the demo's own: see its recipe, e.g. giou for detect)")
    p.add_argument("--minutes", type=float, default=None,
                   help="training time budget (default: the task's demo, 7.5 minutes; 3d 8)")
    p.add_argument("--model", default=None,
                   help="architecture (default: the task's demo model, resnet18_shortcut)")
    p.add_argument("--workers", type=int, default=DEMO_SCHEDULE["workers"])
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


def _add_inference_args(p: argparse.ArgumentParser, weights: str) -> None:
    """What val and predict share: the weights, the backend, the input, precision and test-time augmentation."""
    p.add_argument("--weights", required=True, help=weights)
    _add_device_arg(p)
    p.add_argument("--backend", default=None,
                   help="torch or onnxruntime (default: from --weights; a .onnx written by `centernet export` runs in onnxruntime)")
    p.add_argument("--input-size", type=int, default=None, help="default: the training input size")
    p.add_argument("--precision", choices=TrainConfig.CHOICES["precision"], default="auto")
    p.add_argument("--keep-resolution", action="store_true", default=None,
                   help="no resize: pad each image to multiples of 32 (default for models trained with --input-height)")
    p.add_argument("--flip", action="store_true", help="test-time flip augmentation")
    p.add_argument("--scales", type=_scales, default=(1.0,),
                   help="test-time scales, comma-separated (e.g. 0.5,0.75,1,1.25,1.5); merged by soft-NMS")


def _add_device_arg(p) -> None:
    p.add_argument("--device", default="auto",
                   help="auto (default: a CUDA GPU when there is one, else Apple's MPS, else the CPU), cpu, cuda, "
                        "cuda:N or mps")


def _add_val_parser(sub) -> None:
    p = sub.add_parser("val", help="evaluate weights on a dataset split (COCO AP)")
    _add_inference_args(p, "a checkpoint written by train (best.pt / last.pt), or an exported .onnx")
    p.add_argument("--data", default="shapes")
    p.add_argument("--split", default="val")
    _add_format_arg(p)
    p.add_argument("--out", default="runs/val")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--voc07", action="store_true",
                   help="also PASCAL VOC2007 11-point mAP at IoU 0.5 (difficult / ignored boxes neither TP nor FP)")
    p.add_argument("--no-plots", dest="plots", action="store_false",
                   help="no pictures in --out (val_batch0_labels/pred.jpg, PR and F1 curves, confusion matrix)")


def _add_predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="detect objects in images: drawn images + COCO-results JSON")
    p.add_argument("source", help="an image, a folder, or a glob (quote it)")
    _add_inference_args(p, "a checkpoint (.pt), or an exported .onnx")
    p.add_argument("--out", default="runs/predict")
    p.add_argument("--conf", type=float, default=0.3, help="score threshold")
    p.add_argument("--heatmap", action="store_true", help="also save the heatmap overlaid on each image (JET)")
    p.add_argument("--calib", default=None,
                   help="3D models: a KITTI calib file for every image (default: calib/<name>.txt beside image_2/)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first unreadable image (default: skip it, name it, list it in skipped.txt)")


def _add_convert_parser(sub) -> None:
    p = sub.add_parser(
        "convert", help="convert a checkpoint of the original CenterNet (its model zoo .pth) to this package's format"
    )
    p.add_argument("checkpoint", help="the original's .pth (ctdet_coco_dla_2x.pth, ctdet_pascal_resdcn18_384.pth, ...)")
    p.add_argument("--out", default=None, help="output .pt (default: next to the input, same name)")
    p.add_argument("--dataset", choices=("coco", "pascal"), default=None,
                   help="class names, ids and mean/std (default: 80 classes = coco, 20 = pascal)")
    p.add_argument("--names", default=None, help="comma-separated class names, for other class counts")


def _add_export_parser(sub) -> None:
    p = sub.add_parser("export", help="write ONNX or TorchScript with normalisation and decode inside (no NMS), or safetensors weights")
    p.add_argument("--weights", required=True, help="a checkpoint written by train (best.pt / last.pt)")
    p.add_argument("--format", default="onnx", help="onnx, torchscript, or safetensors (the weights and metadata only)")
    p.add_argument("--out", default=None, help="output file (default: next to the weights, .onnx / .torchscript)")
    p.add_argument("--input-size", type=int, default=None,
                   help="side traced at and letterboxed to by default (default: the training input size); H, W stay dynamic")
    p.add_argument("--max-detections", type=int, default=100, help="K, the fixed number of output rows per image")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not _is_main_process():  # under torchrun only rank 0 prints
        sys.stdout = open(os.devnull, "w")
    try:
        if args.command == "train" and args.config:
            parser.train_parser.set_defaults(**_config_defaults(args.config))
            args = parser.parse_args(argv)  # the flags given override the file
        commands = {"demo": cmd_demo, "train": cmd_train, "check": cmd_check, "val": cmd_val, "predict": cmd_predict,
                    "convert": cmd_convert, "export": cmd_export}
        return commands[args.command](args)
    except CenterNetError as e:
        print(f"centernet {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _config_defaults(path: str) -> dict:
    """The train command's defaults from a run's settings file (see :func:`~centernet.runs.read_run_config`)."""
    from .runs import BUILTIN_CONFIGS, builtin_config, read_run_config

    config = read_run_config(path)
    defaults = {key: config[key] for key in ("model", "task", "data", "data_format", "train_split") if key in config}
    if "val_split" in config:
        defaults["val_split"] = config["val_split"] or "none"
    for name, value in (config.get("task_options") or {}).items():
        if name not in all_options():
            raise CenterNetError(f"{path}: unknown task option {name!r}; expected one of {', '.join(sorted(all_options()))}")
        defaults[name] = value
    train = dict(config["train"])
    if "device" in train:
        defaults["device"] = train.pop("device")
    defaults["config_train"] = train
    if config.get("shapes_config") and config.get("data") in BUILTIN_CONFIGS:
        defaults["shapes_config"] = builtin_config(config["data"], config["shapes_config"])
    return defaults


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
        overrides = {name: value for name in ("epochs", "workers") if (value := getattr(args, name)) is not None}
        metrics = model.train(resume=True, progress=_is_main_process(), **overrides)
        _print_final(metrics, weights.parent, model.task)
        return 0
    model = CenterNet(args.model, task=args.task, head_conv=args.head_conv, pretrained=args.pretrained,
                      device=args.device, task_options=_task_options(args))
    val_split = None if args.val_split.lower() == "none" else args.val_split
    metrics = model.train(data=args.data, out=args.out, train_split=args.train_split, val_split=val_split,
                          val_fraction=args.val_fraction, data_format=args.data_format, progress=_is_main_process(),
                          shapes_config=args.shapes_config, **{**args.config_train, **_train_settings(args)})
    _print_final(metrics, Path(args.out), model.task)
    return 0


def cmd_check(args) -> int:
    from .data.check import run_check

    return run_check(args.data, args.split, verify_images=not args.no_verify_images, data_format=args.data_format)


def cmd_val(args) -> int:
    from . import CenterNet

    model = CenterNet.load(args.weights, device=args.device, backend=args.backend)
    print(f"device {describe_device(model.device)}")
    metrics = model.val(args.data, split=args.split, out=args.out, input_size=args.input_size,
                        batch_size=args.batch_size, precision=args.precision, keep_resolution=args.keep_resolution,
                        flip=args.flip, scales=args.scales, voc07=args.voc07, data_format=args.data_format,
                        plots=args.plots)
    print(model.format_metrics(metrics))
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

    columns = output_layout(model.task).split(",")
    shown = ", ".join(columns) if len(columns) <= 16 else ", ".join(columns[:9]) + f", ... ({len(columns)} columns)"
    print(f"wrote {path}: (B, 3, H, W) float32 RGB in [0, 255] -> (B, {args.max_detections}, {len(columns)}) "
          f"[{shown}] in input pixels")
    return 0


def cmd_predict(args) -> int:
    from . import CenterNet
    from .data.kitti import write_label_file
    from .eval.coco import coco_results_from_predictions
    from .visualize import save_image

    model = CenterNet.load(args.weights, device=args.device, backend=args.backend)
    print(f"device {describe_device(model.device)}")
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

    recipe = task_class(args.task).demo()
    out = Path(args.out or recipe.out)
    start = time.perf_counter()
    data, data_config = recipe.data, recipe.data_config()
    task_options = _task_options(args, recipe.task_options)
    model = CenterNet(args.model or recipe.model, task=args.task, task_options=task_options, device=args.device)
    settings = {**recipe.train, "workers": args.workers}
    if args.minutes is not None:
        settings["time_limit"] = args.minutes
    settings.update(demo_batch_settings(settings, args.batch_size, args.lr, args.warmup_iters))
    if args.input_size is not None:
        settings["input_size"] = args.input_size
    if args.start_input_size is not None:  # its own fractions, or by default the first half shared equally
        settings["start_input_size"], settings["resize_at"] = args.start_input_size, args.resize_at
    elif args.resize_at is not None:
        settings["resize_at"] = args.resize_at
    metrics = model.train(data=data, out=out, shapes_config=data_config, **settings)
    # Draw predictions of the trained model on a few validation images.
    val = load_split(data, "val", data_config, model.task.needs)
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
    _print_final(metrics, out, model.task)
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


def _jsonable(metrics: dict) -> dict:
    from .eval.coco import metrics_to_jsonable

    return metrics_to_jsonable(metrics)


def _print_final(metrics: dict, out: Path, task) -> None:
    if set(task.headline) <= set(metrics):  # validated (not with --val-split none)
        print(f"final: {task.metrics_line(metrics)}")
    print(f"run folder: {out} (best.pt, last.pt, results.csv, results.png, metrics.json)")


if __name__ == "__main__":
    sys.exit(main())
