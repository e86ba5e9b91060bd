import torch
import pytest

from centernet.losses import focal_loss_from_logits, gather_at_index, masked_l1_loss


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
