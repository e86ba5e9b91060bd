"""Encode -> decode round trips: the two halves of the detection task check each other."""

import numpy as np
import torch

from centernet.data.dataset import DetectionDataset
from centernet.data.samples import DatasetSplit, DetectionSample
from centernet.data.transforms import compose, invert_affine, letterbox_matrix, warp_boxes
from centernet.decode import decode_detections, transform_boxes
from centernet.engine.inference import to_original_matrix
from centernet.tasks import DetectionTask


def outputs_from_targets(targets: dict, num_classes: int, out_hw: tuple[int, int]) -> dict:
    """A perfect network: logits of the target heatmap, size and offset written at the centres."""
    h, w = out_hw
    heat = torch.from_numpy(targets["heatmap"]).clamp(1e-6, 1 - 1e-6)
    logits = torch.log(heat / (1 - heat))[None]
    size = torch.zeros(1, 2, h * w)
    offset = torch.zeros(1, 2, h * w)
    for k in np.flatnonzero(targets["mask"]):
        size[0, :, targets["index"][k]] = torch.from_numpy(targets["size"][k])
        offset[0, :, targets["index"][k]] = torch.from_numpy(targets["offset"][k])
    return {"heatmap": logits, "size": size.view(1, 2, h, w), "offset": offset.view(1, 2, h, w)}


def match(decoded_boxes, decoded_labels, boxes, labels):
    for box, label in zip(boxes, labels):
        d = np.abs(decoded_boxes - box).max(1) + 1e6 * (decoded_labels != label)
        yield d.min()


def test_encode_decode_round_trip_output_coordinates():
    task = DetectionTask(num_classes=3)
    boxes = np.array([[3.2, 4.7, 20.9, 30.1], [40.5, 10.25, 60.0, 22.75], [5.0, 40.0, 9.5, 44.5]], np.float32)
    labels = np.array([0, 2, 1])
    targets = task.encoder()(boxes, labels, (64, 64))
    dets = decode_detections(outputs_from_targets(targets, 3, (64, 64)), k=10)
    top = dets["scores"][0] > 0.99
    assert top.sum() == 3
    errors = list(match(dets["boxes"][0][top].numpy(), dets["labels"][0][top].numpy(), boxes, labels))
    assert max(errors) < 1e-4  # size and offset are exact, so boxes come back to float precision


def test_round_trip_through_preprocessing_on_a_rectangular_image():
    """Original pixels -> letterbox -> output map -> encode -> decode -> back to original pixels."""
    width, height, size = 640, 360, 256
    boxes = np.array([[10, 20, 110, 80], [300, 150, 420, 350], [600, 5, 640, 45]], np.float32)
    labels = np.array([1, 0, 1])
    to_output = compose(np.array([[0.25, 0, 0], [0, 0.25, 0]]), letterbox_matrix(width, height, size))
    out_boxes = warp_boxes(boxes, to_output)
    task = DetectionTask(num_classes=2)
    targets = task.encoder()(out_boxes, labels, (size // 4, size // 4))
    outputs = outputs_from_targets(targets, 2, (size // 4, size // 4))
    to_original = torch.from_numpy(to_original_matrix(width, height, size)).float()[None]
    np.testing.assert_allclose(to_original[0].numpy(), invert_affine(to_output), atol=1e-6)
    dets = task.decode(outputs, to_original, k=10)
    top = dets["scores"][0] > 0.99
    errors = list(match(dets["boxes"][0][top].numpy(), dets["labels"][0][top].numpy(), boxes, labels))
    assert max(errors) < 1e-2  # pixels of a 640-wide image, through float32


def test_transform_boxes_batched_matches_numpy():
    rng = np.random.default_rng(0)
    boxes = rng.uniform(0, 50, (2, 5, 4)).astype(np.float32)
    boxes[..., 2:] += boxes[..., :2]
    mats = np.stack([to_original_matrix(300, 200, 128), to_original_matrix(100, 400, 128)])
    got = transform_boxes(torch.from_numpy(boxes), torch.from_numpy(mats).float()).numpy()
    for b in range(2):
        np.testing.assert_allclose(got[b], warp_boxes(boxes[b], mats[b]), rtol=1e-5, atol=1e-4)


def test_dataset_training_item_targets_match_boxes(tmp_path):
    """A training item (random scale, crop, flip) carries targets whose boxes lie on the warped objects."""
    import cv2

    image = np.zeros((120, 200, 3), np.uint8)
    image[30:70, 50:130] = 255  # one white rectangle: box (50, 30, 130, 70)
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), image)
    sample = DetectionSample(path, 1, 200, 120, np.array([[50, 30, 130, 70]], np.float32), np.array([0]))
    split = DatasetSplit([sample], ["rect"], [1])
    task = DetectionTask(num_classes=1)
    ds = DetectionDataset(split, 128, encoder=task.encoder(), train=True)
    for epoch in range(6):
        ds.set_epoch(epoch)
        item = ds[0]
        t = item["targets"]
        if t["mask"][0] == 0:
            continue
        img = item["image"].mean(0).numpy()  # (128, 128), white = high
        x = int(t["index"][0] % 32)
        y = int(t["index"][0] // 32)
        cx, cy = (x + t["offset"][0, 0].item()) * 4, (y + t["offset"][0, 1].item()) * 4
        bw, bh = t["size"][0, 0].item() * 4, t["size"][0, 1].item() * 4
        inside = img[int(cy - bh / 2) + 2 : int(cy + bh / 2) - 2, int(cx - bw / 2) + 2 : int(cx + bw / 2) - 2]
        assert inside.size > 0 and inside.min() > 1.0  # all white inside the encoded box
        ring = img[max(int(cy - bh / 2) - 3, 0), int(cx - bw / 2) + 2 : int(cx + bw / 2) - 2]
        if int(cy - bh / 2) - 3 >= 0:
            assert ring.max() < 1.0  # and not white just outside it
