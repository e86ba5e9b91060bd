"""End-to-end inference latency, stage by stage, and the model time of every registered model.

    python bench/inference.py [--quick]    # prints markdown for BENCHMARKS.md
    python bench/inference.py --models dla34,resnet18_dcn    # only the every-model table, for these

One 640x480 image (the first BCCD JPEG when ../shared/data/bccd is there, else a synthetic one;
reading the file is not timed), ResNet-18 CenterNet with 80 classes and random weights, input
512 x 512, batch 1. Each run is split into the stages of ``centernet.engine.inference``:

- pre-process: ``preprocess`` (letterbox warp into 512 x 512, normalise, to a tensor)
- model: ``run_model`` (the forward pass in the variant's precision, outputs to float32)
- decode: ``task.decode`` (3x3 max-pool peaks, top-100, boxes, mapped back to image pixels)
- post-process: clip to the image, to numpy, one ``Detections`` per image, as ``CenterNet.predict``
  (all 100 detections kept, conf 0: the most this stage can cost)

Every stage is timed inside the same runs (perf_counter around each); the table gives the median
(min-max) over the runs, per stage and end to end. Variants, side by side in one run: eager fp32,
eager bf16 + channels_last, ``torch.compile``d bf16 + channels_last, and ONNX Runtime (fp32; the
export has peak extraction and top-K inside the graph, so its model column includes them and its
decode column is only the map back to image pixels; run as the project's ``OnnxRuntimeBackend``
is, and again with onnxruntime's intra-op spinning off, whose spin-waiting threads otherwise
slow the torch operations that follow each run).

GFLOPs come from ``model_size.measure`` (FlopCounterMode); achieved GFLOP/s is GFLOPs / median
model time, shown against the 2048 x 2048 matmul peak of the variant's precision measured in
this run. A second table gives the model time of every registered model, fp32 and bf16 +
channels_last side by side.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_header, matmul_tflops, time_it  # noqa: E402
from model_size import measure  # noqa: E402

from centernet import create_model, list_models  # noqa: E402
from centernet.api import Detections  # noqa: E402
from centernet.data.dataset import COCO_MEAN_RGB, COCO_STD_RGB, Normalize, read_image_rgb  # noqa: E402
from centernet.ops.affine import transform_boxes  # noqa: E402
from centernet.engine.inference import (  # noqa: E402
    InferenceSettings,
    clip_to_images,
    place_images,
    preprocess,
    run_model,
)
from centernet.engine.precision import resolve_precision  # noqa: E402
from centernet.tasks import DetectionTask, ImageMeta  # noqa: E402

BCCD_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "bccd" / "JPEGImages"
NUM_CLASSES = 80
INPUT_SIZE = 512
MAX_DETECTIONS = 100
CLASS_NAMES = [f"class{i}" for i in range(NUM_CLASSES)]

Stage = tuple[str, Callable[[object], object]]  # (name, fn: the previous stage's output -> this one's)


def test_image() -> tuple[np.ndarray, str]:
    """(480, 640, 3) uint8 RGB and where it came from."""
    jpegs = sorted(BCCD_IMAGES.glob("*.jpg")) if BCCD_IMAGES.is_dir() else []
    if jpegs:
        return read_image_rgb(jpegs[0]), f"{jpegs[0].name} (BCCD)"
    rng = np.random.default_rng(0)
    image = np.full((480, 640, 3), 200, np.uint8)
    for _ in range(20):
        x, y = rng.integers(0, 600), rng.integers(0, 440)
        image[y : y + 40, x : x + 40] = rng.integers(0, 255, 3)
    return image, "synthetic (BCCD not found)"


def time_stages(stages: list[Stage], repeats: int, warmup: int = 2) -> dict[str, tuple[float, float, float]]:
    """Run the chained stages ``repeats`` times; (median, min, max) seconds per stage and for 'total'."""
    for _ in range(warmup):
        value = None
        for _, fn in stages:
            value = fn(value)
    times: dict[str, list[float]] = {name: [] for name, _ in stages}
    times["total"] = []
    for _ in range(repeats):
        value, total = None, 0.0
        for name, fn in stages:
            start = time.perf_counter()
            value = fn(value)
            elapsed = time.perf_counter() - start
            times[name].append(elapsed)
            total += elapsed
        times["total"].append(total)
    return {name: (statistics.median(t), min(t), max(t)) for name, t in times.items()}


def to_results(dets: dict[str, torch.Tensor], images: list[np.ndarray]) -> list[Detections]:
    """Post-process: clip to each image, to numpy, one Detections per image (as ``CenterNet.predict``, conf 0)."""
    sizes = torch.tensor([[image.shape[1], image.shape[0]] for image in images])
    boxes = clip_to_images(dets["boxes"], sizes).cpu()
    scores, labels = dets["scores"].cpu(), dets["labels"].cpu()
    return [
        Detections(boxes[b].numpy(), scores[b].numpy(), labels[b].numpy(), CLASS_NAMES, image)
        for b, image in enumerate(images)
    ]


def torch_stages(model: torch.nn.Module, task: DetectionTask, image: np.ndarray, precision: str) -> list[Stage]:
    settings = InferenceSettings(INPUT_SIZE, MAX_DETECTIONS, precision)
    normalize = Normalize()
    state: dict[str, torch.Tensor] = {}

    def pre(_):
        batch, state["to_original"] = preprocess([image], settings, normalize)
        return batch

    return [
        ("pre", pre),
        ("model", lambda batch: run_model(model, batch, settings)),
        ("decode", lambda outputs: task.decode(outputs, ImageMeta(state["to_original"]), MAX_DETECTIONS)),
        ("post", lambda dets: to_results(dets, [image])),
    ]


def onnx_backends(model: torch.nn.Module, folder: str) -> list[tuple[str, object]]:
    """(name, backend) for an ONNX export of ``model`` in onnxruntime: the project's backend as it is, and the same
    with intra-op spinning off (raises if the export or onnxruntime is not available)."""
    import onnxruntime

    from centernet.engine.onnx_backend import OnnxRuntimeBackend
    from centernet.export import ExportMetadata, export_module, export_onnx

    metadata = ExportMetadata(
        model_name="resnet18", class_names=CLASS_NAMES, category_ids=list(range(1, NUM_CLASSES + 1)),
        input_size=INPUT_SIZE, max_detections=MAX_DETECTIONS, mean=list(COCO_MEAN_RGB), std=list(COCO_STD_RGB),
    )
    module = export_module(model, COCO_MEAN_RGB, COCO_STD_RGB, MAX_DETECTIONS)
    path = export_onnx(module, Path(folder) / "resnet18.onnx", metadata)
    backend, quiet = OnnxRuntimeBackend(path), OnnxRuntimeBackend(path)
    # onnxruntime's intra-op threads spin-wait after each run by default, which slows the torch ops that follow.
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    quiet.session = onnxruntime.InferenceSession(str(path), options, providers=backend.session.get_providers())
    return [
        (f"ONNX Runtime {onnxruntime.__version__} fp32 (decode in graph)", backend),
        ("the same, intra-op spinning off", quiet),
    ]


def onnx_stages(backend, image: np.ndarray) -> list[Stage]:
    """The stages through an :class:`OnnxRuntimeBackend` (peaks and top-K inside its graph)."""
    settings = InferenceSettings(INPUT_SIZE, MAX_DETECTIONS, "fp32")
    state: dict[str, torch.Tensor] = {}

    def pre(_):
        canvases, state["to_original"] = place_images([image], settings)
        return canvases

    def map_back(dets):
        dets["boxes"] = transform_boxes(dets["boxes"], state["to_original"])
        return dets

    return [
        ("pre", pre),
        ("model", lambda canvases: backend.decode_batch(canvases, settings)[0]),
        ("decode", map_back),
        ("post", lambda dets: to_results(dets, [image])),
    ]


def fmt(t: tuple[float, float, float]) -> str:
    """Seconds (median, min, max) as 'median (min-max)' in ms."""
    return f"{t[0] * 1e3:.1f} ({t[1] * 1e3:.1f}-{t[2] * 1e3:.1f})"


def pipeline_table(image: np.ndarray, peaks: dict, gflops: float, repeats: int) -> None:
    torch.manual_seed(0)
    task = DetectionTask(NUM_CLASSES)
    fp32_model = create_model("resnet18", num_classes=NUM_CLASSES).eval()
    bf16_model = create_model("resnet18", num_classes=NUM_CLASSES).eval().to(memory_format=torch.channels_last)
    bf16_model.load_state_dict(fp32_model.state_dict())
    print(
        "| variant | pre-process ms | model ms | decode ms | post-process ms | end-to-end ms "
        "| model GFLOP/s | of matmul peak | decode + post of end-to-end |"
    )
    print("|---|---|---|---|---|---|---|---|---|")

    def row(name: str, precision: str, stages: list[Stage]) -> None:
        t = time_stages(stages, repeats)
        rate = gflops / t["model"][0]
        peak = peaks["bf16" if precision == "bf16" else "fp32"][0] * 1e3
        tail = (t["decode"][0] + t["post"][0]) / t["total"][0]
        print(
            f"| {name} | {fmt(t['pre'])} | {fmt(t['model'])} | {fmt(t['decode'])} | {fmt(t['post'])} "
            f"| {fmt(t['total'])} | {rate:.0f} | {rate / peak:.0%} of {peak:.0f} ({precision}) | {tail:.1%} |",
            flush=True,
        )

    notes = []
    row("eager fp32", "fp32", torch_stages(fp32_model, task, image, "fp32"))
    row("eager bf16 + channels_last", "bf16", torch_stages(bf16_model, task, image, "bf16"))
    try:
        compiled = torch.compile(bf16_model)
        stages = torch_stages(compiled, task, image, "bf16")
        start = time.perf_counter()
        stages[1][1](stages[0][1](None))  # the first call compiles
        notes.append(f"torch.compile: first call (compilation) {time.perf_counter() - start:.1f} s")
        row("torch.compile bf16 + channels_last", "bf16", stages)
    except Exception as e:  # noqa: BLE001 - any failure of the compiler is a result to report
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"| torch.compile bf16 + channels_last | failed: {type(e).__name__}: {reason[:200]} |||||||", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        try:
            backends = onnx_backends(fp32_model, folder)
        except Exception as e:  # noqa: BLE001 - export or onnxruntime missing: skip the rows, say why
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"| ONNX Runtime fp32 | skipped: {type(e).__name__}: {reason[:200]} |||||||", flush=True)
        else:
            notes.append("ONNX Runtime: the model column includes peak extraction and top-K (in the graph); decode is "
                         "only the map back to image pixels")
            for name, backend in backends:
                row(name, "fp32", onnx_stages(backend, image))
    for note in notes:
        print(f"\n{note}")


def all_models_table(names: list[str], peaks: dict, repeats: int) -> None:
    """Model time only (``run_model``) of every model in fp32 and in bf16 + channels_last, side by side."""
    images = torch.randn(1, 3, INPUT_SIZE, INPUT_SIZE)
    print(f"\nevery registered model, {INPUT_SIZE}x{INPUT_SIZE}, batch 1, {NUM_CLASSES} classes, model only "
          f"(``run_model``), ms median (min-max) of {repeats}; GFLOP/s and fraction of the matmul peak of the faster "
          f"precision ('auto' resolves to {resolve_precision('auto', torch.device('cpu'))} here):\n")
    print("| model | GFLOPs | fp32 ms | bf16 + channels_last ms | faster | GFLOP/s | of matmul peak |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        _, gflops = measure(name, INPUT_SIZE, NUM_CLASSES)
        torch.manual_seed(0)
        model = create_model(name, num_classes=NUM_CLASSES).eval()
        timings = {}
        for precision in ("fp32", "bf16"):
            if precision == "bf16":
                model = model.to(memory_format=torch.channels_last)
            settings = InferenceSettings(INPUT_SIZE, MAX_DETECTIONS, precision)
            timings[precision] = time_it(lambda: run_model(model, images, settings), repeats=repeats, warmup=1)
        best = min(timings, key=lambda p: timings[p][0])
        rate = gflops / timings[best][0]
        print(
            f"| `{name}` | {gflops:.1f} | {fmt(timings['fp32'])} | {fmt(timings['bf16'])} | {best} | {rate:.0f} "
            f"| {rate / (peaks[best][0] * 1e3):.0%} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="two models, few repeats: proves the script runs")
    parser.add_argument("--models", help="comma-separated names: only the second table, for these models")
    args = parser.parse_args()
    repeats, model_repeats, matmul_repeats = (2, 2, 3) if args.quick else (20, 5, 9)
    names = ["dla34", "resnet18"] if args.quick else list_models()
    if args.models:
        names = args.models.split(",")
        if unknown := [n for n in names if n not in list_models()]:
            sys.exit(f"unknown model {unknown[0]!r}; expected one of {', '.join(list_models())}")
    peaks = {"bf16": matmul_tflops(torch.bfloat16, repeats=matmul_repeats),
             "fp32": matmul_tflops(torch.float32, repeats=matmul_repeats)}
    print(machine_header(peaks))
    if args.models:
        all_models_table(names, peaks, model_repeats)
        return
    image, source = test_image()
    _, gflops = measure("resnet18", INPUT_SIZE, NUM_CLASSES)
    print(
        f"\nResNet-18, {NUM_CLASSES} classes, random weights, one {image.shape[1]}x{image.shape[0]} image ({source}) "
        f"letterboxed into {INPUT_SIZE}x{INPUT_SIZE}, batch 1, K = {MAX_DETECTIONS}; {gflops:.1f} GFLOPs; "
        f"median (min-max) of {repeats} runs; matmul peak in GFLOP/s\n"
    )
    pipeline_table(image, peaks, gflops, repeats)
    all_models_table(names, peaks, model_repeats)


if __name__ == "__main__":
    main()
