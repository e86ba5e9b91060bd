"""A short real training run: the loss falls, the mAP rises, the run folder is complete."""

import json

import pytest


@pytest.mark.slow
def test_loss_falls_and_map_rises(trained_run):
    rows = trained_run["rows"]
    first = sum(float(r["loss"]) for r in rows[:3]) / 3
    last = sum(float(r["loss"]) for r in rows[-3:]) / 3
    assert last < 0.5 * first, (first, last)
    before, after = trained_run["before"]["map"], trained_run["after"]["map"]
    assert before < 0.05
    assert after > before + 0.2, (before, after)


def test_run_folder_contents(trained_run):
    out = trained_run["out"]
    for name in ("best.pt", "last.pt", "results.csv", "results.png", "metrics.json", "labels.jpg", "train_batch0.jpg",
                 "val_batch0_labels.jpg", "val_batch0_pred.jpg", "PR_curve.png", "F1_curve.png", "confusion_matrix.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["speed_ms"]) == {"pre-process", "model", "decode", "post-process"}
    assert metrics["speed_ms"]["model"] > 0
    for key in ("map", "map50", "map75"):
        assert 0.0 <= metrics[key] <= 1.0
    assert set(metrics["per_class"]) == {"circle", "square", "triangle", "star"}
    header = trained_run["rows"][0].keys()
    assert {"epoch", "loss", "heatmap_loss", "size_loss", "offset_loss", "lr"} <= set(header)


def test_fp16_needs_a_gpu_and_its_scaler_is_a_pass_through_elsewhere(tmp_path):
    import torch

    from centernet import CenterNet, CenterNetError
    from centernet.engine.precision import grad_scaler, resolve_precision
    from conftest import TINY_SHAPES

    with pytest.raises(CenterNetError, match="'fp16' needs a GPU"):
        resolve_precision("fp16", torch.device("cpu"))
    with pytest.raises(CenterNetError, match="'fp16' needs a GPU"):
        CenterNet("resnet18").train(data="shapes", shapes_config=TINY_SHAPES, out=tmp_path, precision="fp16",
                                    epochs=1, batch_size=4, input_size=64, workers=0, progress=False)
    scaler = grad_scaler(torch.device("cpu"), "bf16")
    loss = torch.tensor(2.0, requires_grad=True)
    assert not scaler.is_enabled() and scaler.scale(loss) is loss


def test_auto_precision_takes_bf16_only_where_the_probe_finds_it_faster(monkeypatch):
    import torch

    from centernet.engine import precision

    cpu = torch.device("cpu")
    for speedup, expected in ((2.5, "bf16"), (1.1, "bf16"), (1.05, "fp32"), (0.72, "fp32"), (None, "fp32")):
        monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda speedup=speedup: speedup)
        assert precision.resolve_precision("auto", cpu) == expected, speedup
        assert precision.resolve_precision("bf16", cpu) == "bf16"  # a given precision is never second-guessed
        assert precision.resolve_precision("fp32", cpu) == "fp32"
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: 0.72)
    assert precision.auto_precision_note("auto", cpu) == (
        " (auto: in a probe bf16 + channels_last ran at 0.72x fp32's speed on this CPU)"
    )
    assert precision.auto_precision_note("fp32", cpu) == ""


def test_the_bf16_probe_measures_without_touching_the_random_state(monkeypatch):
    import torch

    from centernet.engine import precision

    probe = precision.cpu_bf16_speedup.__wrapped__  # past the cache
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    with torch.no_grad():  # as in prediction: the probe still gets its gradients
        speedup = probe(repeats=1)
    assert torch.equal(torch.rand(3), expected)
    if precision.cpu_has_native_bf16():
        assert isinstance(speedup, float) and speedup > 0
    else:
        assert speedup is None
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert probe(repeats=1) is None


def test_progressive_resizing_switches_the_training_input(tmp_path, monkeypatch, capsys):
    """start_input_size before resize_at of training, input_size after: in the batches themselves."""
    import csv

    import torch

    from centernet import CenterNet
    from centernet.config import TrainConfig
    from centernet.engine.trainer import Trainer, train_input_size
    from conftest import TINY_SHAPES

    cfg = TrainConfig(input_size=192, start_input_size=128, resize_at=0.5)
    assert [train_input_size(p, cfg) for p in (0.0, 0.49, 0.5, 1.0)] == [128, 128, 192, 192]
    assert train_input_size(0.0, TrainConfig(input_size=192)) == 192  # off by default

    sides: list[tuple[int, int]] = []
    real_step = Trainer._train_step

    def spy(self, batch):
        sides.append(tuple(batch["image"].shape[-2:]))
        return real_step(self, batch)

    monkeypatch.setattr(Trainer, "_train_step", spy)
    out = tmp_path / "run"
    # 16 images, batch 4: 4 steps an epoch, 12 in all. Step 6 is at 6/12 of training: from then on the batches
    # drawn are at 64 px, which with no workers (nothing drawn ahead) is from the next step, in mid-epoch.
    CenterNet("resnet18", num_classes=4).train(
        data="shapes", shapes_config=TINY_SHAPES, out=out, val_split=None, epochs=3, batch_size=4, input_size=64,
        start_input_size=32, resize_at=0.5, workers=0, progress=False,
    )
    assert sides == [(32, 32)] * 7 + [(64, 64)] * 5
    assert "epoch 2, step 6: training input 32 -> 64" in capsys.readouterr().out
    with open(out / "results.csv", newline="") as f:  # the size at each epoch's end
        assert [row["input_size"] for row in csv.DictReader(f)] == ["32", "64", "64"]
    checkpoint = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert checkpoint["input_size"] == 64  # what val and predict default to: the final size

    # A run that never reaches resize_at: said in one line, not left for the user to find in the metrics.
    sides.clear()
    CenterNet("resnet18", num_classes=4).train(
        data="shapes", shapes_config=TINY_SHAPES, out=tmp_path / "short", val_split=None, epochs=1, batch_size=4,
        input_size=64, start_input_size=32, resize_at=0.9, workers=0, progress=False,
    )
    assert sides == [(32, 32)] * 4  # its last step starts at 3/4 of training
    assert "training ended before resize_at=0.9: every step was at 32 px" in capsys.readouterr().out

    # With workers, the sizes reach the steps a few batches late, but they do.
    sides.clear()
    CenterNet("resnet18", num_classes=4).train(
        data="shapes", shapes_config=TINY_SHAPES, out=tmp_path / "workers", val_split=None, epochs=3, batch_size=4,
        input_size=64, start_input_size=32, resize_at=0.25, workers=2, progress=False,
    )
    assert sides[0] == (32, 32) and sides[-1] == (64, 64) and sorted(sides) == sides


def test_progressive_resizing_through_several_sizes():
    """96 until 0.25, 128 until 0.5, then input_size; lists (yaml, checkpoints) read as tuples; bad stages refused."""
    from centernet.config import TrainConfig
    from centernet.engine.trainer import train_input_size
    from centernet.errors import CenterNetError

    cfg = TrainConfig(input_size=192, start_input_size=(96, 128), resize_at=(0.25, 0.5)).validate()
    assert cfg.resize_stages() == [(96, 0.25), (128, 0.5)]
    assert [train_input_size(p, cfg) for p in (0.0, 0.24, 0.25, 0.49, 0.5, 1.0)] == [96, 96, 128, 128, 192, 192]
    from_yaml = TrainConfig.from_dict({**cfg.to_dict(), "start_input_size": [96, 128], "resize_at": [0.25, 0.5]})
    assert from_yaml == cfg
    one = TrainConfig(input_size=192, start_input_size=[128], resize_at=[0.4]).validate()  # the CLI's nargs lists
    assert (one.start_input_size, one.resize_at, one.resize_stages()) == (128, 0.4, [(128, 0.4)])
    assert TrainConfig(input_size=192).resize_stages() == []
    assert TrainConfig(input_size=192, start_input_size=128).resize_stages() == [(128, 0.5)]  # the default
    assert TrainConfig(input_size=192, start_input_size=(96, 128)).resize_stages() == [(96, 0.25), (128, 0.5)]
    for sizes, fractions, message in [
        ((96, 128), 0.5, "one fraction per start_input_size"),
        ((96, 128), (0.5, 0.25), "increasing fractions"),
        ((96, 100), (0.25, 0.5), "multiples of 32"),
        ((96, 128), (0.25, 1.0), "fractions in"),
        ((96.0, 128), (0.25, 0.5), "multiples of 32"),  # a float side would reach OpenCV and fail there
    ]:
        with pytest.raises(CenterNetError, match=message):
            TrainConfig(input_size=192, start_input_size=sizes, resize_at=fractions).validate()
    for name in ("input_size", "input_height"):
        with pytest.raises(CenterNetError, match=rf"{name}=192.0 is out of range"):
            TrainConfig(**{name: 192.0}).validate()


@pytest.mark.parametrize("optimizer", ["adamw", "adam"])
def test_fused_adam_takes_the_same_steps_as_the_reference_loop(optimizer):
    """make_optimizer picks torch's fused Adam(W) on the CPU; three steps match the for-loop implementation's."""
    import torch

    from centernet import create_model
    from centernet.config import TrainConfig
    from centernet.engine.trainer import make_optimizer, parameter_groups

    torch.manual_seed(0)
    fused_model = create_model("resnet18", num_classes=2)
    loop_model = create_model("resnet18", num_classes=2)
    loop_model.load_state_dict(fused_model.state_dict())
    cfg = TrainConfig(optimizer=optimizer, lr=1e-2, weight_decay=0.1)
    fused = make_optimizer(fused_model, cfg)
    assert fused.defaults["fused"] is True
    reference = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}[optimizer]
    loop = reference(parameter_groups(loop_model, cfg.weight_decay), lr=1e-2, foreach=False)
    before = [p.detach().clone() for p in fused_model.parameters()]
    for _ in range(3):  # the same gradients for both (a backward pass is not bit-reproducible across two models)
        for p, q in zip(fused_model.parameters(), loop_model.parameters()):
            p.grad = torch.randn_like(p)
            q.grad = p.grad.clone()
        fused.step()
        loop.step()
    for (name, a), b, start in zip(fused_model.named_parameters(), loop_model.parameters(), before):
        assert not torch.equal(a, start), name  # every parameter moved ...
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), name  # ... as the reference loop moved it


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd"])
def test_weight_decay_leaves_biases_and_norm_scales_alone(optimizer):
    """Conv weights decay; biases and BatchNorm scales (1-D parameters) do not, with every optimizer."""
    import torch

    from centernet import create_model
    from centernet.config import TrainConfig
    from centernet.engine.trainer import make_optimizer

    model = create_model("resnet18", num_classes=2)
    opt = make_optimizer(model, TrainConfig(optimizer=optimizer, lr=0.1, weight_decay=0.5))
    grouped = [p for group in opt.param_groups for p in group["params"]]
    assert len(grouped) == len(list(model.parameters()))
    assert {id(p) for p in grouped} == {id(p) for p in model.parameters()}
    for group in opt.param_groups:
        assert all(p.ndim > 1 for p in group["params"]) == (group["weight_decay"] == 0.5)
    conv, bn_scale, heatmap_bias = model.backbone.conv1.weight, model.backbone.bn1.weight, model.heads.heatmap.out.bias
    before = {name: t.detach().clone() for name, t in (("conv", conv), ("bn", bn_scale), ("bias", heatmap_bias))}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()  # zero gradients: only the decay can move a parameter
    assert not torch.equal(conv, before["conv"])
    assert torch.equal(bn_scale, before["bn"]) and torch.equal(heatmap_bias, before["bias"])
