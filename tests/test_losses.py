import math

import pytest
import torch

from centernet.losses import focal_loss_from_logits, masked_l1_loss, owned_pixels, weighted_l1_loss
from centernet.ops.peaks import gather_at_index
from centernet.ops.sparse import object_pixels


def direct_focal(logits, target):
    """The paper's formula written out on probabilities."""
    p = torch.sigmoid(logits.double())
    t = target.double()
    pos = t == 1
    pos_term = ((1 - p) ** 2 * torch.log(p))[pos].sum()
    neg_term = ((1 - t) ** 4 * p**2 * torch.log(1 - p))[~pos].sum()
    n = pos.sum()
    return -(pos_term + neg_term) / n if n > 0 else -neg_term


def test_focal_matches_direct_formula():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, generator=g) * 3
    target = torch.rand(2, 3, 8, 8, generator=g) * 0.9
    target[0, 1, 2, 3] = 1
    target[1, 2, 5, 5] = 1
    target[1, 0, 0, 0] = 1
    got = focal_loss_from_logits(logits, target)
    assert got.item() == pytest.approx(direct_focal(logits, target).item(), rel=1e-5)


def test_focal_zero_objects_is_negative_term_only():
    logits = torch.randn(1, 2, 4, 4)
    target = torch.rand(1, 2, 4, 4) * 0.5
    got = focal_loss_from_logits(logits, target)
    assert got.item() == pytest.approx(direct_focal(logits, target).item(), rel=1e-5)
    assert got.item() > 0


@pytest.mark.parametrize("value", [100.0, -100.0, 1e4, -1e4])
def test_focal_finite_at_extreme_logits(value):
    logits = torch.full((1, 1, 4, 4), value, requires_grad=True)
    target = torch.zeros(1, 1, 4, 4)
    target[0, 0, 1, 1] = 1
    loss = focal_loss_from_logits(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_focal_finite_under_bf16():
    logits = (torch.randn(1, 2, 8, 8) * 50).bfloat16().requires_grad_()
    target = torch.zeros(1, 2, 8, 8)
    target[0, 0, 3, 3] = 1
    loss = focal_loss_from_logits(logits, target)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and torch.isfinite(logits.grad.float()).all()


def test_focal_ignore_removes_negative_loss_only_there():
    logits = torch.zeros(1, 1, 4, 4)
    target = torch.zeros(1, 1, 4, 4)
    ignore = torch.zeros(1, 4, 4)
    full = focal_loss_from_logits(logits, target)
    ignore[0, :2] = 1
    half = focal_loss_from_logits(logits, target, ignore)
    assert half.item() == pytest.approx(full.item() / 2)


def test_gather_and_masked_l1():
    pred = torch.arange(2 * 2 * 3 * 4, dtype=torch.float32).reshape(2, 2, 3, 4)
    index = torch.tensor([[0, 5], [11, 0]])
    got = gather_at_index(pred, index)  # (2, 2, 2)
    assert got[0, 1].tolist() == [pred[0, 0, 1, 1].item(), pred[0, 1, 1, 1].item()]
    assert got[1, 0].tolist() == [pred[1, 0, 2, 3].item(), pred[1, 1, 2, 3].item()]
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    target = got.clone()
    target[0, 0] += torch.tensor([1.0, 3.0])   # |err| = 1, 3
    target[1, 1] += 100                        # masked out
    # (1 + 3) / (3 objects x 2 coordinates)
    assert masked_l1_loss(pred, index, mask, target).item() == pytest.approx(4 / 6, rel=1e-4)


def region_l1(pred, index, mask, radius, target, size=(3, 4)):
    """weighted_l1_loss at owned_pixels of the objects' Gaussians, with each object's (B, M, D) target."""
    index, mask = torch.tensor(index), torch.tensor(mask)
    pixels = object_pixels(index, mask, torch.tensor(radius), size)
    samples = owned_pixels(pixels, tuple(mask.shape), size)
    b, m = samples[:2]
    return weighted_l1_loss(pred, samples, target[b, m], mask.sum())


def test_region_l1_with_radius_zero_is_the_centre_l1():
    pred = torch.randn(2, 2, 3, 4)
    index, mask = [[0, 5], [11, 0]], [[1.0, 1.0], [1.0, 0.0]]
    target = torch.randn(2, 2, 2) * 3
    want = masked_l1_loss(pred, torch.tensor(index), torch.tensor(mask), target)
    assert region_l1(pred, index, mask, [[0, 0], [0, 0]], target).item() == pytest.approx(want.item())


def test_region_l1_hand_computed():
    # One object at (x=1, y=1) of radius 1: sigma = 3 / 6, so the 3x3 Gaussian is 1 at the centre, e^-2 at the
    # four edge pixels, e^-4 at the four corners. Prediction 5 at the centre and 9 elsewhere, target 4:
    # errors 1 and 5 in each of the 2 coordinates.
    pred = torch.full((1, 2, 3, 4), 9.0)
    pred[0, :, 1, 1] = 5.0
    target = torch.full((1, 1, 2), 4.0)
    edge, corner = math.exp(-2), math.exp(-4)
    total = 1 + 4 * edge + 4 * corner
    want = (1 * 1 + 5 * (4 * edge + 4 * corner)) / total   # the same in both coordinates; averaged over them
    got = region_l1(pred, [[5]], [[1.0]], [[1]], target)
    assert got.item() == pytest.approx(want, rel=1e-4)  # the denominator has 1e-4 added, as masked_l1_loss
    # A prediction that is right at every pixel of the Gaussian costs nothing.
    assert region_l1(torch.full((1, 2, 3, 4), 4.0), [[5]], [[1.0]], [[1]], target) == 0


def test_region_l1_gives_a_shared_pixel_to_the_nearer_centre():
    # Objects at x=1 (radius 1) and x=2 (radius 0) on row 1: pixel (1, 2) is on the first one's Gaussian (e^-2)
    # and is the second one's centre (1), so it belongs to the second only; the first keeps 8 pixels.
    pred = torch.zeros(1, 2, 3, 4)
    target = torch.tensor([[[1.0, 1.0], [10.0, 10.0]]])
    # each object's weights sum to 1 over its own pixels, where the error is its own target: (1 + 10) / 2
    assert region_l1(pred, [[5, 6]], [[1.0, 1.0]], [[1, 0]], target).item() == pytest.approx(5.5, rel=1e-4)
    pred[0, :, 1, 2] = 10.0   # the second object's centre is now right; the first object's pixels are not there
    assert region_l1(pred, [[5, 6]], [[1.0, 1.0]], [[1, 0]], target).item() == pytest.approx(0.5, rel=1e-4)


def test_regress_at_gaussian_trains_boxes_that_decode_right_one_pixel_off_the_peak():
    """With regress_at="gaussian", maps that give the true box from every pixel of the Gaussian cost nothing,
    and a peak a pixel off decodes the true box; the paper's centre-only loss trains the centre pixel alone."""
    import numpy as np

    from centernet.tasks.detection.decode import decode_detections
    from centernet.tasks import DetectionTask

    box = np.array([[4.0, 6.0, 36.0, 27.0]])                     # output pixels: centre (20, 16.5), radius 7
    targets = {k: torch.as_tensor(v)[None] for k, v in DetectionTask(2).encoder()(box, np.array([1]), (48, 48)).items()}
    ys, xs = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    ideal = {"size": torch.tensor([32.0, 21.0]).view(1, 2, 1, 1).expand(1, 2, 48, 48).clone(),
             "offset": torch.stack([20.0 - xs, 16.5 - ys])[None]}   # true centre minus each pixel
    parts = DetectionTask(2, regress_at="gaussian", box_loss="giou").loss(
        {"heatmap": torch.zeros(1, 2, 48, 48), **ideal}, targets)
    for name in ("size_loss", "offset_loss", "giou_loss"):
        assert parts[name].item() == pytest.approx(0, abs=1e-6), name
    heatmap = torch.full((1, 2, 48, 48), -9.0)
    heatmap[0, 1, 17, 21] = 9.0                                   # the peak one pixel right of and below the centre (16, 20)
    boxes = decode_detections({"heatmap": heatmap, **ideal}, k=1)["boxes"][0, 0]
    assert torch.allclose(boxes, torch.tensor([4.0, 6.0, 36.0, 27.0]))

    grads = {}
    for where in ("centre", "gaussian"):
        size = torch.zeros(1, 2, 48, 48, requires_grad=True)
        offset = torch.zeros(1, 2, 48, 48, requires_grad=True)
        parts = DetectionTask(2, regress_at=where).loss({"heatmap": torch.zeros(1, 2, 48, 48), "size": size,
                                                         "offset": offset}, targets)
        (parts["size_loss"] + parts["offset_loss"]).backward()
        grads[where] = size.grad[0, 0].abs(), offset.grad[0, 0]
    assert torch.count_nonzero(grads["centre"][0]) == 1 and grads["centre"][0][16, 20] > 0
    size_grad, offset_grad = grads["gaussian"]
    assert size_grad[16, 21] > 0 and size_grad[16, 20] > size_grad[16, 21] and size_grad[16, 30] == 0  # radius 7
    # the x offset is pulled up left of the centre (target > 0) and down right of it (target < 0)
    assert offset_grad[16, 18] < 0 < offset_grad[16, 22]
    # the GIoU term follows the same samples: at the centre alone, or around it too
    for where, around in (("centre", False), ("gaussian", True)):
        size = torch.full((1, 2, 48, 48), 5.0, requires_grad=True)
        DetectionTask(2, regress_at=where, box_loss="giou").loss(
            {"heatmap": torch.zeros(1, 2, 48, 48), "size": size, "offset": torch.zeros(1, 2, 48, 48)},
            targets)["giou_loss"].backward()
        assert size.grad[0, 0, 16, 20] < 0 and (size.grad[0, 0, 16, 21] < 0) == around


def test_detection_task_options():
    from types import SimpleNamespace

    from centernet.errors import CenterNetError
    from centernet.tasks import DetectionTask, build_task, task_from_split

    split = SimpleNamespace(num_classes=2)
    task = task_from_split("detect", split, {"regress_at": "gaussian"})
    assert task.regress_at == "gaussian" and build_task("detect", 2, task.config()).regress_at == "gaussian"
    assert DetectionTask(2).config() == {}
    with pytest.raises(CenterNetError, match="regress_at='box' is out of range"):
        task_from_split("detect", split, {"regress_at": "box"})
    with pytest.raises(CenterNetError, match="unknown detect task option"):
        task_from_split("detect", split, {"centre": "box"})
    with pytest.raises(ValueError, match="needs sparse_targets=True"):
        DetectionTask(2, regress_at="gaussian", sparse_targets=False)


def test_paired_giou_hand_computed():
    from centernet.ops.boxes import paired_giou

    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0], [2.0, 0.0, 3.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    # equal: 1; overlap 1 of union 7 in a 3x3 hull: 1/7 - 2/9; disjoint unit boxes in a 3x1 hull: 0 - 1/3;
    # a point inside: IoU 0, hull = a, so 0
    want = torch.tensor([1.0, 1 / 7 - 2 / 9, -1 / 3, 0.0])
    assert torch.allclose(paired_giou(a, b), want, atol=1e-6)
    assert paired_giou(torch.zeros(4), torch.zeros(4)).item() == 0          # empty hull: no NaN


def test_giou_loss_at_centres_is_zero_for_the_true_box_and_grows_with_a_relative_error():
    from centernet.losses import centre_samples, weighted_giou_loss

    index, mask = torch.tensor([[5, 0]]), torch.tensor([[1.0, 0.0]])
    samples = centre_samples(index, mask, 4)
    assert [t.tolist() for t in samples] == [[0], [0], [1], [1], [1.0]]      # batch, slot, y, x, weight
    size_t, offset_t = torch.tensor([[4.0, 2.0]]), torch.tensor([[0.25, 0.5]])

    def loss(wh, off, grad=False):  # (2,) each, written at flat position 5 of a 3x4 map
        size, offset = torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4)
        size[0, :, 1, 1], offset[0, :, 1, 1] = torch.tensor(wh), torch.tensor(off)
        size.requires_grad_(grad)
        return weighted_giou_loss(size, offset, samples, size_t, offset_t, mask.sum()), size

    assert loss([4.0, 2.0], [0.25, 0.5])[0].item() == pytest.approx(0, abs=1e-6)
    # width 2 instead of 4, same centre: IoU 1/2, the hull is the true box
    assert loss([2.0, 2.0], [0.25, 0.5])[0].item() == pytest.approx(0.5, rel=1e-3)
    # the box shifted by 1 in x: overlap 3 of union 10, hull 5 x 2
    assert loss([4.0, 2.0], [1.25, 0.5])[0].item() == pytest.approx(1 - 3 / 5, rel=1e-3)
    value, size = loss([2.0, 2.0], [0.25, 0.5], grad=True)
    value.backward()
    assert size.grad[0, 0, 1, 1] < 0 and torch.count_nonzero(size.grad) <= 2   # widen; only the centre


def test_detection_task_giou_option_adds_a_part_and_round_trips():
    from types import SimpleNamespace

    import numpy as np

    from centernet.errors import CenterNetError
    from centernet.tasks import DetectionTask, build_task, task_from_split

    boxes, labels = np.array([[4.0, 4.0, 36.0, 28.0]]), np.array([1])
    targets = {k: torch.as_tensor(v)[None] for k, v in DetectionTask(2).encoder()(boxes, labels, (48, 48)).items()}
    outputs = {"heatmap": torch.zeros(1, 2, 48, 48), "size": torch.zeros(1, 2, 48, 48),
               "offset": torch.zeros(1, 2, 48, 48)}
    plain = DetectionTask(2).loss(outputs, targets)
    parts = DetectionTask(2, box_loss="giou").loss(outputs, targets)
    # a zero-size box at a point inside the true box: IoU 0 and the hull is the true box, so GIoU 0
    assert "giou_loss" not in plain and parts["giou_loss"].item() == pytest.approx(1.0, abs=1e-3)
    # the L1 terms, read at the centre samples, are the paper's masked L1
    outputs = {name: torch.randn(1, c, 48, 48) for name, c in (("heatmap", 2), ("size", 2), ("offset", 2))}
    plain = DetectionTask(2).loss(outputs, targets)
    parts = DetectionTask(2, box_loss="giou").loss(outputs, targets)
    for name in ("heatmap_loss", "size_loss", "offset_loss"):
        assert parts[name].item() == pytest.approx(plain[name].item(), rel=1e-6)
    assert parts["loss"].item() == pytest.approx(plain["loss"].item() + parts["giou_loss"].item(), rel=1e-5)
    split = SimpleNamespace(num_classes=2)
    task = task_from_split("detect", split, {"box_loss": "giou", "regress_at": "gaussian"})
    assert task.config() == {"regress_at": "gaussian", "box_loss": "giou"}
    rebuilt = build_task("detect", 2, task.config())
    assert (rebuilt.box_loss, rebuilt.regress_at) == ("giou", "gaussian")
    with pytest.raises(CenterNetError, match="box_loss='iou' is out of range; expected 'l1' or 'giou'"):
        task_from_split("detect", split, {"box_loss": "iou"})
    with pytest.raises(ValueError, match="box_loss='iou'"):
        DetectionTask(2, box_loss="iou")
