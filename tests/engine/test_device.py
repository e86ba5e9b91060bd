"""The device choice: 'auto' takes a GPU when there is one (availability faked here), explicit names are kept,
and a device that is not there is a one-line error."""

from __future__ import annotations

import pytest
import torch

from centernet import CenterNet
from centernet.config import TrainConfig
from centernet.engine import device as device_module
from centernet.engine.device import resolve_device
from centernet.errors import CenterNetError


def fake(monkeypatch, cuda: bool, mps: bool, count: int = 1) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count if cuda else 0)
    monkeypatch.setattr(device_module, "_mps_available", lambda: mps)


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"),
                                                  (False, False, "cpu")])
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    fake(monkeypatch, cuda, mps)
    assert resolve_device("auto") == expected
    assert resolve_device("cpu") == "cpu"  # asked for: kept


def test_explicit_devices_are_kept_or_refused_in_one_line(monkeypatch):
    fake(monkeypatch, cuda=True, mps=False, count=2)
    assert resolve_device("cuda") == "cuda" and resolve_device("cuda:1") == "cuda:1" and resolve_device("CPU") == "cpu"
    for name, message in (("cuda:2", "2 CUDA GPU"), ("mps", "no Apple GPU"), ("tpu", "not one of"),
                          ("cuda:x", "numbered from 0")):
        with pytest.raises(CenterNetError, match=message) as info:
            resolve_device(name)
        assert "\n" not in str(info.value)
    fake(monkeypatch, cuda=False, mps=False)
    with pytest.raises(CenterNetError, match="sees no CUDA GPU"):
        resolve_device("cuda:0")


def test_the_api_and_training_settings_default_to_auto(monkeypatch):
    fake(monkeypatch, cuda=False, mps=False)
    assert TrainConfig().device == "auto" and TrainConfig(device="mps").validate().device == "mps"
    assert CenterNet("resnet18", num_classes=2).device == "cpu"
    with pytest.raises(CenterNetError, match="sees no CUDA GPU"):
        CenterNet("resnet18", num_classes=2, device="cuda")
