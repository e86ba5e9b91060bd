"""Export with decode inside (ONNX, TorchScript) and the onnxruntime backend against the PyTorch path.

Tolerances between ONNX Runtime and PyTorch (float32 both; convolutions differ in summation
order): scores 1e-4 absolute, boxes 1e-3 input pixels. Detections are compared as sets per image
(rows ordered by score may swap where scores nearly tie). Random weights give a near-constant
heatmap whose peaks hinge on the last bit, so the random models here have their heads' output
layers rescaled until logits, sizes and offsets spread (:func:`random_detector`).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from centernet import CenterNet, CenterNetError
from centernet.cli import main
from centernet.data import load_split
from centernet.tasks.detection.decode import decode_detections
from centernet.export import ExportModule, export_module
from centernet.ops.peaks import topk_peaks_fixed
from centernet.models import create_model

from conftest import TINY_SHAPES

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

SCORE_ATOL = 1e-4   # ONNX Runtime vs PyTorch, absolute, on scores in [0, 1]
BOX_ATOL = 1e-3     # ONNX Runtime vs PyTorch, input (or original) pixels
MEAN, STD = (0.47, 0.45, 0.41), (0.28, 0.27, 0.29)


def random_detector(num_classes: int = 3, seed: int = 0, arch: str = "resnet18") -> torch.nn.Module:
    """A random model whose heads spread (heatmap logits std 2 around -2, sizes 8 +- 3, offsets 0.5 +- 0.3)."""
    torch.manual_seed(seed)
    model = create_model(arch, num_classes=num_classes).eval()
    with torch.no_grad():
        outputs = model(torch.randn(2, 3, 64, 64))
        for name, (std, mean) in {"heatmap": (2.0, -2.0), "size": (3.0, 8.0), "offset": (0.3, 0.5)}.items():
            layer = model.heads[name].out
            layer.weight.mul_(std / outputs[name].std())
            layer.bias.fill_(mean)
    return model


def random_pixels(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 255


def reference_rows(model: torch.nn.Module, images: torch.Tensor, k: int = 100) -> np.ndarray:
    """(B, K', 6) from the PyTorch path: Normalize's arithmetic, the model, decode_detections, boxes x 4."""
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        dets = decode_detections(model((images / 255 - mean) / std), k)
    return torch.cat([dets["boxes"] * 4, dets["scores"][..., None], dets["labels"][..., None].float()], -1).numpy()


def assert_same_rows(expected: np.ndarray, actual: np.ndarray, score_atol: float = SCORE_ATOL, box_atol: float = BOX_ATOL):
    """Per image, every detection of one has a counterpart in the other: same class, score and box within tolerance.

    Rows scoring within ``score_atol`` of either side's lowest kept score (which may swap with the
    next peak past K) or of 0 (padding, non-peaks) are not required to have one.
    """
    for b, (e, a) in enumerate(zip(expected, actual)):
        floor = max([0.0] + [float(x[:, 4].min()) for x in (e, a) if len(x)]) + score_atol
        for src, dst, what in ((e, a, "expected"), (a, e, "actual")):
            for row in src[src[:, 4] > floor]:
                same_class = dst[dst[:, 5] == row[5]]
                assert len(same_class), f"image {b}: {what} row {row} has no row of its class"
                box_error = np.abs(same_class[:, :4] - row[:4]).max(1)
                best = same_class[box_error.argmin()]
                assert box_error.min() <= box_atol, f"image {b}: {what} row {row}, nearest {best}"
                assert abs(best[4] - row[4]) <= score_atol, f"image {b}: {what} row {row}, nearest {best}"


# --------------------------------------------------------------------------- the export module
@pytest.mark.parametrize("batch", [1, 3])
def test_export_module_equals_decode_detections(batch):
    model = random_detector()
    module = ExportModule(model, MEAN, STD, max_detections=100)
    images = random_pixels(batch, 3, 64, 64)
    with torch.no_grad():
        rows = module(images)
    assert rows.shape == (batch, 100, 6) and rows.dtype == torch.float32
    assert torch.all(rows[..., 4].diff(dim=1) <= 0)
    expected = reference_rows(model, images)
    assert (expected[..., 4] > 0).sum() > 10 * batch  # real peaks, not only padding
    assert_same_rows(expected, rows.numpy(), score_atol=1e-6, box_atol=1e-5)


def test_export_module_gives_k_rows_on_maps_smaller_than_k():
    """32 x 32 input, 1 class: an 8 x 8 map has 64 positions < K = 100; the rest are score-0 rows."""
    model = random_detector(num_classes=1)
    images = random_pixels(2, 3, 32, 32)
    with torch.no_grad():
        rows = ExportModule(model, MEAN, STD, 100)(images)
    assert rows.shape == (2, 100, 6)
    assert torch.all(rows[:, 64:, 4] == 0) and torch.all(rows[..., 5] == 0)
    assert_same_rows(reference_rows(model, images), rows.numpy(), score_atol=1e-6, box_atol=1e-5)


def test_topk_fixed_equals_topk_peaks_values():
    scores = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    top, classes, pixel, xs, ys = topk_peaks_fixed(scores, 10)
    flat = scores.reshape(2, -1)
    assert torch.equal(top, flat.topk(10).values)
    assert torch.equal(flat.gather(1, classes * 35 + pixel), top)
    assert torch.equal(pixel.float(), ys * 7 + xs)


# --------------------------------------------------------------------------- ONNX, ONNX Runtime
@pytest.fixture(scope="module")
def random_onnx(tmp_path_factory):
    """A 3-class random detector (CenterNet API object) exported to ONNX at 64 x 64."""
    detector = CenterNet("resnet18", num_classes=3)
    detector.model = random_detector()
    detector.mean, detector.std, detector.input_size = MEAN, STD, 64
    path = detector.export("onnx", out=tmp_path_factory.mktemp("onnx") / "random.onnx")
    return detector, path


def test_onnx_passes_checker_with_dynamic_axes_and_metadata(random_onnx):
    detector, path = random_onnx
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph, full_check=True)
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    (image_input,) = graph.graph.input
    dims = [d.dim_param or d.dim_value for d in image_input.type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    out_dims = [d.dim_param or d.dim_value for d in graph.graph.output[0].type.tensor_type.shape.dim]
    assert out_dims == ["batch", 100, 6]
    props = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(props["class_names"]) == ["class0", "class1", "class2"]
    assert json.loads(props["category_ids"]) == [1, 2, 3]
    assert props["input_size"] == "64" and props["max_detections"] == "100" and props["size_divisor"] == "32"
    assert props["model_name"] == "resnet18" and props["output_layout"] == "x1,y1,x2,y2,score,class"
    assert props["keep_resolution"] == "False" and props["input_height"] == "0"


def test_export_metadata_round_trips_and_names_a_damaged_field():
    from centernet.export import ExportMetadata

    metadata = ExportMetadata("resnet18", ["Car"], [1], 640, keep_resolution=True, input_height=192, task="3d")
    assert ExportMetadata.from_props(metadata.to_props(), "m.onnx") == metadata
    damaged = metadata.to_props() | {"keep_resolution": "yes"}
    with pytest.raises(CenterNetError, match="'m.onnx' has damaged centernet metadata: keep_resolution='yes'"):
        ExportMetadata.from_props(damaged, "m.onnx")


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (3, 3, 64, 64), (2, 3, 96, 128)])
def test_onnxruntime_equals_pytorch_on_random_input(random_onnx, shape):
    """Batch 1 and 3 at the traced size, and batch 2 at another (non-square) size: dynamic axes."""
    detector, path = random_onnx
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = random_pixels(*shape, seed=shape[0])
    (rows,) = session.run(None, {"images": images.numpy()})
    assert rows.shape == (shape[0], 100, 6) and rows.dtype == np.float32
    assert_same_rows(reference_rows(detector.model, images), rows)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_shortcut_model_exports_and_matches_pytorch(tmp_path, fmt):
    """resnet18_shortcut (the demo's model; its neck takes a list of four stage maps) through ONNX Runtime and TorchScript."""
    detector = CenterNet("resnet18_shortcut", num_classes=3)
    detector.model = random_detector(arch="resnet18_shortcut")
    detector.mean, detector.std, detector.input_size = MEAN, STD, 64
    path = detector.export(fmt, out=tmp_path / f"model.{fmt}")
    images = random_pixels(2, 3, 96, 128, seed=5)
    if fmt == "onnx":
        (rows,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": images.numpy()})
    else:
        with torch.no_grad():
            rows = torch.jit.load(str(path))(images).numpy()
    assert rows.shape == (2, 100, 6)
    assert_same_rows(reference_rows(detector.model, images), rows)


def test_torchscript_round_trip_in_a_fresh_process(tmp_path):
    detector = CenterNet("resnet18", num_classes=3)
    detector.model = random_detector()
    detector.mean, detector.std, detector.input_size = MEAN, STD, 64
    path = detector.export("torchscript", out=tmp_path / "model.torchscript")
    inputs = {"square": random_pixels(2, 3, 64, 64), "wide": random_pixels(1, 3, 64, 96)}
    torch.save(inputs, tmp_path / "inputs.pt")
    script = (
        "import json, sys, torch; extra = {'centernet.json': ''}; "
        "m = torch.jit.load(sys.argv[1], _extra_files=extra); x = torch.load(sys.argv[2]); "
        "torch.save({k: m(v) for k, v in x.items()}, sys.argv[3]); "
        "print(json.loads(extra['centernet.json'])['model_name'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "inputs.pt"), str(tmp_path / "out.pt")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "resnet18"
    loaded = torch.load(tmp_path / "out.pt")
    module = export_module(detector.model, MEAN, STD)
    for name, images in inputs.items():
        with torch.no_grad():
            eager = module(images)
        assert loaded[name].shape == eager.shape == (images.shape[0], 100, 6)
        assert_same_rows(eager.numpy(), loaded[name].numpy(), score_atol=1e-6, box_atol=1e-4)


def test_api_onnxruntime_predict_equals_torch_with_keep_resolution_and_scales(random_onnx):
    """The same pre-processing both ways: letterbox, keep_resolution (a 128 x 160 canvas), two scales."""
    detector, path = random_onnx
    runtime = CenterNet(path)
    assert runtime.backend == "onnxruntime" and runtime.class_names == detector.class_names
    image = np.random.default_rng(0).integers(0, 255, (100, 150, 3), dtype=np.uint8)
    for options in ({}, {"keep_resolution": True}, {"scales": (0.5, 1.0)}):
        (ours,) = runtime.predict(image, conf=0.0, **options)
        (torch_result,) = detector.predict(image, conf=0.0, precision="fp32", **options)
        expected = np.concatenate([torch_result.boxes, torch_result.scores[:, None], torch_result.labels[:, None]], 1)
        actual = np.concatenate([ours.boxes, ours.scores[:, None], ours.labels[:, None]], 1)
        assert ours.labels.dtype == np.int64 and ours.boxes.dtype == np.float32
        assert_same_rows(expected[None], actual[None])


def test_api_onnxruntime_refuses_what_the_graph_cannot_do(random_onnx):
    _, path = random_onnx
    runtime = CenterNet.load(path)
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(CenterNetError, match="flip=True"):
        runtime.predict(image, flip=True)
    with pytest.raises(CenterNetError, match="heatmap=True"):
        runtime.predict(image, heatmap=True)
    with pytest.raises(CenterNetError, match="max_detections=200"):
        runtime.predict(image, max_detections=200)
    with pytest.raises(CenterNetError, match="precision='bf16'"):
        runtime.predict(image, precision="bf16")
    with pytest.raises(CenterNetError, match="export runs inference only"):
        runtime.export("onnx")
    with pytest.raises(CenterNetError, match="backend='onnxruntime'"):
        CenterNet(path, backend="torch")


def test_missing_onnxruntime_gives_install_hint(random_onnx, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(CenterNetError, match=r'pip install "centernet\[onnx\]"'):
        CenterNet(random_onnx[1])


# --------------------------------------------------------------------------- the trained model, the CLI
def _rows_by_image(records: list[dict]) -> dict[str, np.ndarray]:
    """COCO-results records -> per file, (N, 6) rows [x1, y1, x2, y2, score, category]."""
    rows: dict[str, list] = {}
    for r in records:
        x, y, w, h = r["bbox"]
        rows.setdefault(r["file_name"], []).append([x, y, x + w, y + h, r["score"], r["category_id"]])
    return {k: np.array(v, np.float32) for k, v in rows.items()}


def _above(rows: np.ndarray, score: float) -> np.ndarray:
    return rows[rows[:, 4] > score]


def test_cli_export_then_predict_with_onnxruntime_matches_torch(trained_run, tmp_path, capsys):
    weights = str(trained_run["out"] / "best.pt")
    model_path = tmp_path / "model.onnx"
    assert main(["export", "--weights", weights, "--format", "onnx", "--out", str(model_path)]) == 0
    assert model_path.is_file() and "(B, 100, 6)" in capsys.readouterr().out
    images = str(load_split("shapes", "val", TINY_SHAPES).samples[0].image_path.parent)
    common = [images, "--conf", "0.05"]
    assert main(["predict", *common, "--weights", str(model_path), "--backend", "onnxruntime", "--out", str(tmp_path / "ort")]) == 0
    assert main(["predict", *common, "--weights", weights, "--precision", "fp32", "--out", str(tmp_path / "pt")]) == 0
    drawn = sorted(p.name for p in (tmp_path / "ort").glob("*.jpg"))
    assert drawn == sorted(p.name for p in (tmp_path / "pt").glob("*.jpg")) and drawn
    ours = _rows_by_image(json.loads((tmp_path / "ort" / "predictions.json").read_text()))
    theirs = _rows_by_image(json.loads((tmp_path / "pt" / "predictions.json").read_text()))
    assert ours.keys() == theirs.keys() and sum(len(v) for v in ours.values()) > 0
    for name in ours:  # rows within the tolerance of the 0.05 threshold may fall either side of it
        # predictions.json rounds coordinates to 0.01 px: a value at a rounding boundary may land either side
        assert_same_rows(_above(theirs[name], 0.05 + SCORE_ATOL)[None], _above(ours[name], 0.05 + SCORE_ATOL)[None],
                         box_atol=0.01 + BOX_ATOL)


def test_onnxruntime_equals_pytorch_on_real_images(trained_run, tmp_path):
    """The trained model on shapes images (batch 1 and 3): ONNX Runtime's rows against the PyTorch module's."""
    detector = CenterNet.load(trained_run["out"] / "best.pt")
    path = detector.export("onnx", out=tmp_path / "trained.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    module = export_module(detector.model, detector.mean, detector.std)
    from centernet.data.dataset import read_image_rgb

    pictures = [read_image_rgb(s.image_path) for s in load_split("shapes", "val", TINY_SHAPES).samples[:3]]
    batch = torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2).float()  # (3, 3, 64, 64) in [0, 255]
    for images in (batch[:1], batch):
        (rows,) = session.run(None, {"images": images.numpy()})
        with torch.no_grad():
            eager = module(images).numpy()
        assert (eager[..., 4] > 0.2).any()  # it sees the objects (an untrained model's scores stay near its 0.1 prior)
        assert_same_rows(eager, rows)


def test_cli_val_with_onnxruntime_gives_the_torch_ap(trained_run, tmp_path):
    weights = trained_run["out"] / "best.pt"
    model_path = CenterNet.load(weights).export("onnx", out=tmp_path / "model.onnx")
    data_dir = str(load_split("shapes", "train", TINY_SHAPES).samples[0].image_path.parents[2])
    common = ["--data", data_dir, "--split", "train"]
    assert main(["val", "--weights", str(model_path), "--backend", "onnxruntime", *common, "--out", str(tmp_path / "ort")]) == 0
    assert main(["val", "--weights", str(weights), "--precision", "fp32", *common, "--out", str(tmp_path / "pt")]) == 0
    ours = json.loads((tmp_path / "ort" / "metrics.json").read_text())
    theirs = json.loads((tmp_path / "pt" / "metrics.json").read_text())
    assert theirs["map"] > 0.1  # a model that finds things, so the comparison means something
    for key in ("map", "map50", "map75"):
        assert abs(ours[key] - theirs[key]) <= 0.001, (key, ours[key], theirs[key])


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_cli_export_and_backend_errors_are_one_line(trained_run, tmp_path, capsys):
    weights = str(trained_run["out"] / "best.pt")
    image = str(load_split("shapes", "val", TINY_SHAPES).samples[0].image_path)
    assert main(["export", "--weights", weights, "--format", "tflite", "--out", str(tmp_path / "m")]) == 2
    assert "'tflite'" in _one_error_line(capsys)
    assert main(["export", "--weights", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt" in _one_error_line(capsys)
    assert main(["export", "--weights", weights, "--input-size", "48", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "input_size=48" in _one_error_line(capsys)
    assert main(["predict", image, "--weights", str(tmp_path / "missing.onnx"), "--backend", "onnxruntime"]) == 2
    assert "missing.onnx" in _one_error_line(capsys)
    assert main(["predict", image, "--weights", weights, "--backend", "onnxruntime"]) == 2
    assert "centernet export --weights" in _one_error_line(capsys)
    assert main(["predict", image, "--weights", weights, "--backend", "tensorrt"]) == 2
    assert "'tensorrt'" in _one_error_line(capsys)
    # A valid ONNX model that is not ours: no centernet metadata.
    identity = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "foreign",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    ))
    onnx.save(identity, str(tmp_path / "foreign.onnx"))
    assert main(["predict", image, "--weights", str(tmp_path / "foreign.onnx"), "--backend", "onnxruntime"]) == 2
    assert "not a centernet export" in _one_error_line(capsys)
    (tmp_path / "garbage.onnx").write_bytes(b"not a protobuf at all")
    assert main(["val", "--weights", str(tmp_path / "garbage.onnx"), "--data", "shapes"]) == 2
    assert "cannot read ONNX model" in _one_error_line(capsys)
    assert main(["predict", image, "--weights", str(tmp_path / "foreign.onnx"), "--flip"]) == 2
    _one_error_line(capsys)  # the metadata is read first; either way one line
