"""The fast decode (pool on logits, top-K through per-pixel maxima) against the straightforward one."""

import pytest
import torch

from centernet.tasks.detection.decode import boxes_at_peaks, decode_detections
from centernet.ops.peaks import heatmap_peaks, top_peaks_from_logits, topk_peaks


def reference_decode(outputs, k):
    """Sigmoid of the whole map in float32, 3x3 max-pool, top-K over all C*h*w scores."""
    scores, labels, pixel, xs, ys = topk_peaks(heatmap_peaks(outputs["heatmap"].float()), k)
    return {"boxes": boxes_at_peaks(outputs, pixel, xs, ys), "scores": scores, "labels": labels, "pixel": pixel}


def random_outputs(b, c, h, w, dtype, seed, channels_last=False):
    g = torch.Generator().manual_seed(seed)
    heat = (torch.randn(b, c, h, w, generator=g) * 3 - 2).to(dtype)  # distinct values: no ties at the K-th
    outputs = {"heatmap": heat, "size": torch.rand(b, 2, h, w, generator=g) * 20,
               "offset": torch.rand(b, 2, h, w, generator=g)}
    if channels_last:
        outputs = {name: v.contiguous(memory_format=torch.channels_last) for name, v in outputs.items()}
    return outputs


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape, k", [((2, 80, 32, 40), 100), ((1, 3, 16, 16), 100), ((2, 5, 4, 6), 7),
                                      ((1, 2, 3, 3), 100), ((3, 1, 20, 20), 50)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_decode_equals_reference(shape, k, dtype, channels_last):
    b, c, h, w = shape
    outputs = random_outputs(b, c, h, w, dtype, seed=sum(shape) + k, channels_last=channels_last)
    ours, ref = decode_detections(outputs, k), reference_decode(outputs, k)
    assert ours["scores"].dtype == torch.float32 and ours["labels"].dtype == torch.int64
    kept = min(k, c * h * w)
    assert ours["scores"].shape == (b, kept) and ours["boxes"].shape == (b, kept, 4)
    # the bf16 logits are the same numbers in both, so the scores are equal exactly, sorted the same way
    torch.testing.assert_close(ours["scores"], ref["scores"], rtol=0, atol=0)
    _, labels, pixel, _, _ = top_peaks_from_logits(outputs["heatmap"], k)
    ours["pixel"] = pixel
    for i in range(b):
        # ties aside: scores equal to the K-th may be any of the tied peaks; score-0 fillers (non-peaks) anywhere
        last = ref["scores"][i, -1]
        assert (ours["scores"][i] >= last).all()

        def by_peak(d):
            keep = (d["scores"][i] > last) & (d["scores"][i] > 0)
            keys = (d["labels"][i] * h * w + d["pixel"][i])[keep].tolist()
            return dict(zip(keys, zip(d["scores"][i][keep].tolist(), d["boxes"][i][keep].tolist())))

        mine, theirs = by_peak(ours), by_peak(ref)
        assert mine.keys() == theirs.keys()
        for key, (score, box) in theirs.items():
            assert mine[key][0] == score
            assert mine[key][1] == pytest.approx(box, abs=1e-5)


def test_fewer_peaks_than_k_give_zero_scores():
    ramp = torch.arange(25.0).view(5, 5)
    heat = torch.stack([ramp - 40, -(ramp - 12).abs() - 30])[None]  # one peak per class: (4, 4) and (2, 2)
    heat[0, 1, 2, 2] = 4.0
    outputs = {"heatmap": heat, "size": torch.ones(1, 2, 5, 5), "offset": torch.zeros(1, 2, 5, 5)}
    dets = decode_detections(outputs, 10)
    assert dets["labels"][0, :2].tolist() == [1, 0]
    assert dets["scores"][0, 0] == torch.sigmoid(torch.tensor(4.0))
    assert (dets["scores"][0, 2:] == 0).all()
    assert dets["boxes"][0, 0].tolist() == [1.5, 1.5, 2.5, 2.5]


def test_decode_on_bf16_equals_decode_on_its_float32_copy():
    outputs = random_outputs(2, 10, 24, 24, torch.bfloat16, seed=3, channels_last=True)
    as_float = {name: v.float() for name, v in outputs.items()}
    a, b = decode_detections(outputs, 60), decode_detections(as_float, 60)
    for name in ("scores", "labels", "boxes"):
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
