"""DDP through torchrun: 2 CPU processes (gloo) end with the weights of 1 process at the same global batch.

For the two to compute the same function, three things are fixed here:
* BatchNorm statistics frozen (``--freeze-bn``): in training mode each process would normalise with its own
  half batch (SyncBatchNorm has no CPU implementation);
* one object per image: the heatmap loss is normalised by the number of objects in each process's batch;
* SGD, not Adam: Adam's first steps move every weight by about lr x sign(gradient), so rounding differences
  in near-zero gradients (one batch against two all-reduced halves) flip whole updates.
The images differ, so a process that did not all-reduce its gradients would end with other weights.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from centernet.data.shapes import ShapesConfig, build_shapes
from centernet.engine.checkpoint import load_checkpoint
from centernet.engine.distributed import DistributedContext
from centernet.engine.precision import agree_on_precision

ONE_OBJECT = ShapesConfig(
    image_size=64, num_train=8, num_val=2, min_size=14, max_size_frac=0.6, mean_objects=1.0,
    size_distribution="uniform", seed=5,
)
SETTINGS = [
    "--epochs", "2", "--batch-size", "4", "--input-size", "64", "--workers", "0", "--precision", "fp32",
    "--val-split", "none", "--optimizer", "sgd", "--lr", "0.02", "--augment", "none", "--no-color-aug",
    "--fliplr", "0", "--deterministic", "--no-ema", "--freeze-bn",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one_process(tmp_path):
    data = build_shapes(tmp_path / "cache", ONE_OBJECT, progress=False)
    single = subprocess.run(
        [sys.executable, "-m", "centernet", "train", "--data", str(data), "--out", str(tmp_path / "one"), *SETTINGS],
        capture_output=True, text=True, timeout=600,
    )
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
         "-m", "centernet", "train", "--data", str(data), "--out", str(tmp_path / "two"), *SETTINGS],
        capture_output=True, text=True, timeout=600,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "batch 4 = 2 processes x 2" in ddp.stdout
    assert ddp.stdout.count("training resnet18") == 1  # only rank 0 prints
    one = load_checkpoint(tmp_path / "one" / "last.pt")["train_state"]
    two = load_checkpoint(tmp_path / "two" / "last.pt")["train_state"]
    assert one["step"] == two["step"] == 4  # 8 images / global batch 4 x 2 epochs: each process saw half
    for name, tensor in one["model"].items():
        torch.testing.assert_close(two["model"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def _agree(rank: int, port: int, answers) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        local = ("bf16", "fp32")[rank]  # as if the two processes' probes had timed bf16 differently
        answers[rank] = agree_on_precision(local, DistributedContext(rank, 2, rank))
    finally:
        dist.destroy_process_group()


def test_processes_take_rank_zeros_precision():
    with mp.get_context("spawn").Manager() as manager:
        answers = manager.dict()
        mp.spawn(_agree, args=(_free_port(), answers), nprocs=2)
        assert dict(answers) == {0: "bf16", 1: "bf16"}
    assert agree_on_precision("fp32", DistributedContext()) == "fp32"  # one process: its own choice
