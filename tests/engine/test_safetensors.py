"""The safetensors writer/reader: byte layout written out by hand, round trip, bad files."""

from __future__ import annotations

import json
import struct

import pytest
import torch

from centernet import CenterNetError
from centernet.engine.checkpoint import load_safetensors, save_safetensors


def test_byte_layout_of_a_small_file(tmp_path):
    save_safetensors({"w": torch.tensor([1.0, -2.0]), "n": torch.tensor([7], dtype=torch.int64)}, tmp_path / "a.st",
                     {"model_name": "resnet18"})
    raw = (tmp_path / "a.st").read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    assert size % 8 == 0  # data starts 8-byte aligned
    header = json.loads(raw[8 : 8 + size])
    assert header == {
        "__metadata__": {"model_name": "resnet18"},
        "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "n": {"dtype": "I64", "shape": [1], "data_offsets": [8, 16]},
    }
    assert raw[8 + size :] == struct.pack("<ff", 1.0, -2.0) + struct.pack("<q", 7)


def test_round_trip_of_a_model_state_dict(tmp_path):
    from centernet import create_model

    state = create_model("resnet18", num_classes=3).state_dict()
    state["half"] = torch.randn(4, 3).bfloat16()
    save_safetensors(state, tmp_path / "m.safetensors", {"classes": json.dumps(["a", "b", "c"])})
    tensors, metadata = load_safetensors(tmp_path / "m.safetensors")
    assert json.loads(metadata["classes"]) == ["a", "b", "c"]
    assert list(tensors) == list(state)
    for name, tensor in state.items():
        assert tensors[name].dtype == tensor.dtype and torch.equal(tensors[name], tensor), name


def test_bad_files(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(CenterNetError, match="junk.safetensors.*not a valid safetensors file"):
        load_safetensors(tmp_path / "junk.safetensors")
    with pytest.raises(CenterNetError, match="complex64"):
        save_safetensors({"z": torch.zeros(2, dtype=torch.complex64)}, tmp_path / "z.safetensors")


def test_export_command_writes_safetensors_weights(tmp_path, trained_run):
    import subprocess
    import sys

    from centernet import CenterNet

    weights = trained_run["out"] / "best.pt"
    run = subprocess.run(
        [sys.executable, "-m", "centernet", "export", "--weights", str(weights), "--format", "safetensors",
         "--out", str(tmp_path / "w.safetensors")], capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    tensors, metadata = load_safetensors(tmp_path / "w.safetensors")
    model = CenterNet(weights).model
    assert metadata["model_name"] == "resnet18" and json.loads(metadata["class_names"]) == CenterNet(weights).class_names
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensors[name], tensor), name
    model.load_state_dict(tensors)  # loads strictly into the architecture it names
