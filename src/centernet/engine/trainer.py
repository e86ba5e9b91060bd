"""The training loop: one task, one model, one run folder.

The run folder gets ``last.pt`` and ``best.pt`` checkpoints, ``results.csv`` (one row per
epoch: losses, learning rate, and COCO metrics when validated), ``results.png`` and
``metrics.json`` (the last validation).
"""

from __future__ import annotations

import csv
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from ..config import TrainConfig
from ..errors import CenterNetError
from ..data.dataset import DetectionDataset, Normalize, SizedBatches
from ..data.samples import DatasetSplit
from ..data.transforms import AugmentConfig
from ..eval.coco import format_per_class_table, metrics_to_jsonable
from ..models.crops import with_object_outputs
from ..progress import progress_bar
from ..visualize import plot_labels, plot_training_curves, save_image, training_batch_grid
from .checkpoint import save_checkpoint
from .device import resolve_device
from .summary import data_summary, model_summary
from .distributed import all_finite, barrier, broadcast_flags, broadcast_value, init_distributed
from .ema import ModelEMA
from .inference import InferenceSettings, StageTimes, evaluate_split
from .precision import (
    agree_on_precision, auto_precision_note, autocast, grad_scaler, memory_format, resolve_precision,
)



def open_tensorboard(out_dir: Path):
    """A TensorBoard writer in the run folder when the ``tensorboard`` package is installed, else False."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the optional extra centernet[tensorboard]
        return False
    return SummaryWriter(log_dir=str(out_dir))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# The first training batches drawn to the run folder, as the model sees them (TrainConfig.plots).
TRAIN_BATCH_PICTURES = 3


@dataclass
class ModelInfo:
    """What a checkpoint must carry to rebuild the model and its pre-processing."""

    model_name: str
    head_conv: int
    task: str
    class_names: list[str]
    category_ids: list[int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: every parameter of more than one dimension (conv, transposed-conv and linear weights) with
    ``weight_decay``; the 1-D ones (biases, norm scales and shifts) without.

    Decaying a BatchNorm scale or a bias only pulls it towards zero (the heatmap's prior bias, a norm's gain)
    without regularising anything, so they are left out, as timm and detectron2 do.
    """
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam (the original's), AdamW or SGD with momentum over :func:`parameter_groups`.

    Adam and AdamW use torch's fused kernel where the parameters allow it: the same update in one pass over each
    parameter (on 2 CPU cores, 19 ms instead of 36 for the 15 M parameters of ``resnet18_shortcut``, 6 % of a
    96 px step of batch 8 in bf16; ``bench/optimizer_step.py``).
    """
    lr = cfg.resolved_lr()
    groups = parameter_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9)
    adam = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return adam(groups, lr=lr, fused=fused_adam_supported(model.parameters()))


def fused_adam_supported(parameters) -> bool:
    """Whether torch's fused Adam(W) kernel takes these parameters: floating point, on the CPU or a CUDA device."""
    return all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in parameters)


def lr_factor(progress: float, step: int, cfg: TrainConfig) -> float:
    """Multiplier of the base lr at a point of training (progress in [0, 1], step count)."""
    if cfg.warmup_iters and step < cfg.warmup_iters:
        return 0.1 + 0.9 * step / cfg.warmup_iters
    if cfg.schedule == "cosine":
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return 0.1 ** sum(progress >= s for s in cfg.lr_steps)


def train_input_size(progress: float, cfg: TrainConfig) -> int:
    """The square training input side at a point of training: each start_input_size until its resize_at, then
    input_size."""
    for side, until in cfg.resize_stages():
        if progress < until:
            return side
    return cfg.input_size


class Trainer:
    """Fits ``model`` on ``train_split`` with ``task``'s targets and loss."""

    def __init__(
        self,
        model: torch.nn.Module,
        task,
        train_split: DatasetSplit,
        val_split: DatasetSplit | None,
        cfg: TrainConfig,
        info: ModelInfo,
        out_dir: str | Path,
        progress: bool = True,
        resume: dict | None = None,
        run: dict | None = None,
    ) -> None:
        """``resume``: the ``train_state`` of a ``last.pt`` written by a run with the same settings.
        ``run``: what was trained on (model, data, splits), saved with the settings in ``args.yaml``
        and in the checkpoints, so the run can be repeated or resumed."""
        self.cfg = cfg.validate()
        self.run = dict(run or {})
        resolved_device = resolve_device(cfg.device)
        self.dist = init_distributed(resolved_device)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
        self.task, self.info, self.progress = task, info, progress
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.to_dict().items()}
        if self.dist.is_main:
            (self.out_dir / "args.yaml").write_text(yaml.safe_dump({**self.run, "train": settings}, sort_keys=False))
        device = resolved_device
        if self.dist.enabled and device == "cuda":
            device = f"cuda:{self.dist.local_rank}"  # one GPU per process
        self.device = torch.device(device)
        self.precision = agree_on_precision(resolve_precision(cfg.precision, self.device), self.dist)
        self.memory_format = memory_format(self.device, self.precision)
        self.model = model.to(self.device).to(memory_format=self.memory_format)
        self.val_split = val_split
        self.normalize = Normalize(info.mean, info.std)
        task.check_train_settings(cfg)
        self.dataset = self._dataset(train_split)
        self.optimizer = make_optimizer(self.model, cfg)
        self.scaler = grad_scaler(self.device, self.precision)  # fp16 only
        self.ema = ModelEMA(self.model, cfg.ema_decay, cfg.ema_tau) if cfg.ema else None
        self.best_map = -1.0
        self.stale_validations = 0  # validations since the best mAP, for early stopping
        self.speed: StageTimes | None = None  # the last validation's time per stage
        self.tensorboard = None  # a SummaryWriter once opened, False where tensorboard is not installed
        self.metrics: dict = {}
        self.history: list[dict] = []
        self.generator = torch.Generator().manual_seed(cfg.seed)  # the loader's shuffling
        self.start_epoch, self.step, self.elapsed = 1, 0, 0.0
        if resume is not None:
            self._restore(resume)
        self.forward = self._forward()

    def _dataset(self, split: DatasetSplit) -> DetectionDataset:
        """The training samples, warped and encoded by the task; decoded once up front with ``cache_images``."""
        cfg = self.cfg
        dataset = DetectionDataset(
            split, cfg.input_size, task=self.task, normalize=self.normalize, seed=cfg.seed,
            input_height=cfg.input_height or None,
            augment=AugmentConfig(
                mode=cfg.augment_mode, shift=cfg.aug_shift, scale=cfg.aug_scale, flip=cfg.flip, color=cfg.color_aug
            ),
        )
        if cfg.cache_images:
            used = dataset.fill_cache(self.progress)
            self._say(f"cached {len(dataset)} decoded images in {used / 2**20:.0f} MiB")
        return dataset

    def _forward(self) -> torch.nn.Module:
        """What a training step calls: the model, wrapped for several processes (DDP) and compiled when asked."""
        cfg, forward = self.cfg, self.model
        if self.dist.enabled:
            if cfg.batch_size % self.dist.world_size:
                raise CenterNetError(
                    f"batch_size={cfg.batch_size} is out of range; expected a multiple of the {self.dist.world_size} "
                    "processes (it is the global batch, split evenly)"
                )
            if cfg.sync_bn:
                if self.device.type != "cuda":
                    raise CenterNetError("sync_bn needs GPUs (PyTorch's SyncBatchNorm has no CPU implementation)")
                self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            ids = [self.device.index] if self.device.type == "cuda" else None
            forward = DistributedDataParallel(self.model, device_ids=ids)
        return torch.compile(forward) if cfg.compile else forward

    # ------------------------------------------------------------------ loop
    def fit(self) -> dict:
        """Train for ``epochs`` (or until the time limit or early stop), validating every ``val_interval`` epochs
        and saving ``last.pt`` (and ``best.pt``) after each; returns the last validation's headline metrics."""
        cfg = self.cfg
        sampler, batches, loader = self._loader()
        total_steps = len(loader) * cfg.epochs
        if self.dist.is_main and self.progress:  # the model's size and cost, and the data's, before the run's line
            self._say("model " + model_summary(self.model, self.info.model_name, cfg.input_size,
                                               cfg.input_height or cfg.input_size))
            self._say("data " + data_summary(self.info.class_names, [s.labels for s in self.dataset.split.samples]))
        self._say(self._describe(len(loader)))
        if cfg.plots and self.dist.is_main and self.start_epoch == 1:
            samples = self.dataset.split.samples
            plot_labels(self.info.class_names, [s.labels for s in samples], [s.boxes for s in samples],
                        [(s.width, s.height) for s in samples], self.out_dir / "labels.jpg")
        if self.start_epoch > 1:
            self._say(f"resuming after epoch {self.start_epoch - 1} (step {self.step})")
        start = time.perf_counter() - self.elapsed
        self.skipped = self.bad_in_a_row = 0
        for epoch in range(self.start_epoch, cfg.epochs + 1):
            self._start_epoch(epoch, sampler)
            self._resize(batches, self._progress(self.step, total_steps, start), epoch, self.step)
            losses, out_of_time = self._train_epoch(epoch, loader, batches, total_steps, start)
            row = {"epoch": epoch, "lr": self.optimizer.param_groups[0]["lr"], "time": time.perf_counter() - start}
            if cfg.start_input_size:
                row["input_size"] = batches.side  # at the epoch's end
            self.elapsed = time.perf_counter() - start
            stopped_early = self._end_epoch(epoch, row | losses, last=epoch == cfg.epochs or out_of_time)
            if out_of_time:
                self._say(f"time limit of {cfg.time_limit:g} min reached after epoch {epoch}")
                break
            if stopped_early:
                self._say(f"early stop after epoch {epoch}: no better {self.task.best_metric} in {cfg.patience} "
                          "validations")
                break
        return self._finish(batches, start)

    def _loader(self) -> tuple[DistributedSampler, SizedBatches, DataLoader]:
        cfg, world = self.cfg, self.dist.world_size
        # One shuffle per epoch, a function of (seed, epoch); process r of N takes its images r, r + N, ...
        # so the N per-process batches of a step together are the single-process batch of that step.
        sampler = DistributedSampler(self.dataset, world, self.dist.rank, shuffle=True, seed=cfg.seed, drop_last=True)
        # The batches carry their input side, which progressive resizing changes between steps.
        batches = SizedBatches(sampler, min(cfg.batch_size // world, len(self.dataset) // world))
        loader = DataLoader(self.dataset, batch_sampler=batches, num_workers=cfg.workers,
                            generator=self.generator)  # the generator seeds the workers
        return sampler, batches, loader

    def _describe(self, steps_per_epoch: int) -> str:
        """The run in one line: model, data, schedule, input size, precision, device."""
        cfg, world = self.cfg, self.dist.world_size
        lr_rule = "" if cfg.lr is not None else f" (5e-4 x {cfg.batch_size} / 128, the linear rule)"
        processes = f" = {world} processes x {cfg.batch_size // world}" if self.dist.enabled else ""
        stages = ", ".join(f"{side} until {until:g}" for side, until in cfg.resize_stages())
        resizing = f" ({stages} of training)" if stages else ""
        return (
            f"training {self.info.model_name} on {len(self.dataset)} images, {cfg.epochs} epochs x {steps_per_epoch} "
            f"steps, batch {cfg.batch_size}{processes}, {cfg.optimizer} lr {cfg.resolved_lr():.2e}{lr_rule} "
            f"({cfg.schedule}), input {cfg.input_size}{f'x{cfg.input_height}' if cfg.input_height else ''}{resizing}, "
            f"precision {self.precision}{auto_precision_note(cfg.precision, self.device)}, device {self.device}"
        )

    def _start_epoch(self, epoch: int, sampler: DistributedSampler) -> None:
        self.model.train()
        if self.cfg.freeze_bn:  # BatchNorm uses (and keeps) its running statistics; its scale and shift still train
            for module in self.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        self.dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)

    def _train_epoch(
        self, epoch: int, loader: DataLoader, batches: SizedBatches, total_steps: int, start: float
    ) -> tuple[dict[str, float], bool]:
        """One pass over the loader: the epoch's mean losses, and whether the time limit stopped it."""
        cfg, base_lr = self.cfg, self.cfg.resolved_lr()
        sums: dict[str, float] = {}
        count = 0
        bar = progress_bar(
            loader, desc=f"epoch {epoch}/{cfg.epochs}", disable=not (self.progress and self.dist.is_main), leave=True
        )
        out_of_time = False
        for batch in bar:
            progress = self._progress(self.step, total_steps, start)
            if cfg.time_limit and progress >= 1.0:
                out_of_time = True
                break
            for group in self.optimizer.param_groups:
                group["lr"] = base_lr * lr_factor(progress, self.step, cfg)
            self._resize(batches, progress, epoch, self.step)  # for the batches drawn from now on
            if cfg.plots and self.dist.is_main and self.step < TRAIN_BATCH_PICTURES:
                save_image(self.out_dir / f"train_batch{self.step}.jpg", training_batch_grid(
                    batch["image"], batch["targets"], self.info.mean, self.info.std, self.info.class_names,
                    task=self.task))
            losses = self._train_step(batch)
            self.step += 1
            if not self._count_bad_step(losses is None, epoch):
                count += 1
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.set_postfix({k.removesuffix("_loss"): f"{v / count:.3f}" for k, v in sums.items()}, refresh=False)
        bar.close()
        return {k: v / max(count, 1) for k, v in sums.items()}, out_of_time

    def _count_bad_step(self, bad: bool, epoch: int) -> bool:
        """Count a step whose loss was not finite (skipped); too many in a row stop training with a CenterNetError."""
        if not bad:
            self.bad_in_a_row = 0
            return False
        self.skipped += 1
        self.bad_in_a_row += 1
        if self.bad_in_a_row >= self.cfg.max_bad_steps:
            raise CenterNetError(
                f"training stopped: {self.bad_in_a_row} steps in a row had a non-finite loss (epoch {epoch}, "
                f"step {self.step}); lower the lr, set grad_clip, or check the data with `centernet check`"
            )
        return True

    def _end_epoch(self, epoch: int, row: dict, last: bool) -> bool:
        """Validate when due, log the epoch's row and save ``last.pt`` (main process); whether to stop early."""
        stopped_early = False
        if self.dist.is_main:  # the other processes wait at the barrier
            if self.val_split is not None and (epoch % self.cfg.val_interval == 0 or last):
                row.update(self._validate(epoch, plots=last and self.cfg.plots))
                stopped_early = bool(self.cfg.patience) and self.stale_validations >= self.cfg.patience
            self._log(row)
            self._save(epoch, "last.pt", with_train_state=True)
        (stopped_early,) = broadcast_flags([stopped_early], self.dist)
        barrier(self.dist)
        return stopped_early

    def _finish(self, batches: SizedBatches, start: float) -> dict:
        """Say what the run skipped or missed, write the curves and metrics.json; the metrics."""
        cfg = self.cfg
        if self.skipped:
            self._say(f"skipped {self.skipped} steps with a non-finite loss")
        if cfg.start_input_size and batches.side != cfg.input_size:
            stages = cfg.resize_stages()
            which = "every step was" if len(stages) == 1 else "its last steps were"
            self._say(f"training ended before resize_at={stages[-1][1]:g}: {which} at "
                      f"{batches.side} px, validation at {cfg.input_size} (more epochs or an earlier resize_at)")
        if self.speed is not None:
            self._say(f"validation {self.speed.line()}")
            self.metrics["speed_ms"] = self.speed.per_image_ms()
        self.metrics["train_time_s"] = round(time.perf_counter() - start, 1)
        self.metrics["steps"] = self.step
        if self.dist.is_main:
            plot_training_curves(self.out_dir / "results.csv", self.out_dir / "results.png")
            (self.out_dir / "metrics.json").write_text(json.dumps(metrics_to_jsonable(self.metrics), indent=2))
        return self.metrics

    def _resize(self, batches: SizedBatches, progress: float, epoch: int, step: int) -> None:
        """Progressive resizing: the input side of the batches drawn from now on, said once when it changes."""
        if not self.cfg.start_input_size:
            return  # the dataset's own input size (which may be rectangular)
        side = train_input_size(progress, self.cfg)
        if batches.side is not None and side != batches.side:
            self._say(f"epoch {epoch}, step {step}: training input {batches.side} -> {side}")
        batches.side = side

    def _progress(self, step: int, total_steps: int, start: float) -> float:
        """How far training is, in [0, 1+): by steps, or by the clock when that is further (time_limit)."""
        progress = step / total_steps
        if self.cfg.time_limit:  # rank 0's clock for every process, so they stay in step
            elapsed = broadcast_value((time.perf_counter() - start) / (self.cfg.time_limit * 60), self.dist)
            progress = max(progress, elapsed)
        return progress

    def _train_step(self, batch: dict) -> dict[str, float] | None:
        images = batch["image"].to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        targets = {k: v.to(self.device, non_blocking=True) for k, v in batch["targets"].items()}
        with autocast(self.device, self.precision):
            outputs = with_object_outputs(self.model, self.task, images, self.forward(images), targets)
        losses = self.task.loss(outputs, targets)  # computed in float32
        loss = losses["loss"]
        if not all_finite(loss, self.dist):  # every process skips together, or DDP's all-reduce would hang
            self._say(f"non-finite loss on images {batch['image_id'].tolist()}; step skipped")
            self.optimizer.zero_grad(set_to_none=True)
            return None
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model)
        return {k: float(v.detach()) for k, v in losses.items()}

    # ------------------------------------------------------------ validation
    def _validate(self, epoch: int, plots: bool = False) -> dict:
        """Validate; with ``plots`` (the last validation), the pictures of :mod:`centernet.plots` in the run folder
        and the speed per image said at the end."""
        # A rectangular training input (wide images) is validated at the scale training saw each image at, unpadded
        # to a square.
        settings = InferenceSettings(
            self.cfg.input_size, 100, self.precision, str(self.device), keep_resolution=bool(self.cfg.input_height),
            input_height=self.cfg.input_height or 0,
        )
        metrics, _ = evaluate_split(
            self.eval_model, self.task, self.val_split, settings, self.normalize,
            batch_size=self.cfg.batch_size, workers=self.cfg.workers, progress=self.progress,
            plots_dir=self.out_dir if plots else None,
        )
        self.speed = metrics["speed"]
        tables = {k: metrics[k] for k in ("per_class", "per_class50") if k in metrics}
        self.metrics = {k: metrics[k] for k in self.task.headline} | {"epoch": epoch} | tables
        self._say(f"epoch {epoch}: {self.task.metrics_line(metrics)}")
        best = metrics[self.task.best_metric]
        if best > self.best_map:  # the task's best_metric: box mAP, OKS AP for pose, 3D AP for 3D
            self.best_map = best
            self.stale_validations = 0
            self._save(epoch, "best.pt")
        else:
            self.stale_validations += 1
        return {k: metrics[k] for k in self.task.headline}

    @property
    def eval_model(self) -> torch.nn.Module:
        """The weights that are validated, saved and returned: the EMA when enabled."""
        return self.ema.module if self.ema is not None else self.model

    def per_class_table(self) -> str:
        if "per_class" not in self.metrics:
            return ""
        return format_per_class_table(self.metrics["per_class"], self.metrics["per_class50"])

    # --------------------------------------------------------------- outputs
    def checkpoint_state(self, epoch: int) -> dict:
        model = self.eval_model.to(memory_format=torch.contiguous_format)
        state = {
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "model_name": self.info.model_name,
            "heads": dict(model.head_channels),
            "head_conv": self.info.head_conv,
            "task": self.info.task,
            "task_config": self.task.config(),
            "class_names": list(self.info.class_names),
            "category_ids": list(self.info.category_ids),
            "input_size": self.cfg.input_size,
            "keep_resolution": bool(self.cfg.input_height),  # the default of val and predict
            "input_height": self.cfg.input_height or 0,
            "mean": list(self.info.mean),
            "std": list(self.info.std),
            "epoch": epoch,
            "metrics": metrics_to_jsonable({k: v for k, v in self.metrics.items() if k in self.task.headline}),
            "train_config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.cfg.to_dict().items()},
            "run": self.run,
        }
        self.eval_model.to(memory_format=self.memory_format)
        return state

    def _save(self, epoch: int, name: str, with_train_state: bool = False) -> None:
        state = self.checkpoint_state(epoch)
        if with_train_state:
            state["train_state"] = self.train_state(epoch)
        save_checkpoint(state, self.out_dir / name)

    def train_state(self, epoch: int) -> dict:
        """Everything needed to continue exactly after ``epoch``: raw weights, optimizer, EMA, counters, RNGs.

        Plain tensors and data only (loadable with ``weights_only=True``).
        """
        numpy_state = np.random.get_state()
        return {
            "epoch": epoch,
            "step": self.step,
            "elapsed": self.elapsed,
            "best_map": self.best_map,
            "stale_validations": self.stale_validations,
            "history": [dict(row) for row in self.history],
            "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "grad_scaler": self.scaler.state_dict(),
            "ema": None if self.ema is None else {
                "module": {k: v.detach().cpu().clone() for k, v in self.ema.module.state_dict().items()},
                "updates": self.ema.updates,
            },
            "loader_generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
            "python_rng": {"version": random.getstate()[0], "state": list(random.getstate()[1]),
                           "gauss": random.getstate()[2]},
        }

    def _restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        if len(state["optimizer"]["param_groups"]) != len(self.optimizer.param_groups):
            raise CenterNetError(
                "cannot resume: the checkpoint's optimizer has "
                f"{len(state['optimizer']['param_groups'])} parameter group(s), expected "
                f"{len(self.optimizer.param_groups)} (it was written by an earlier version; fine-tune from it "
                "with --model instead)"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("grad_scaler"):
            self.scaler.load_state_dict(state["grad_scaler"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.module.load_state_dict(state["ema"]["module"])
            self.ema.updates = int(state["ema"]["updates"])
        self.generator.set_state(state["loader_generator"])
        torch.set_rng_state(state["torch_rng"])
        name, keys, pos, has_gauss, gauss = state["numpy_rng"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        python = state["python_rng"]
        random.setstate((python["version"], tuple(python["state"]), python["gauss"]))
        self.start_epoch = int(state["epoch"]) + 1
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        self.best_map = float(state["best_map"])
        self.stale_validations = int(state["stale_validations"])
        self.history = [dict(row) for row in state["history"]]

    def _log(self, row: dict) -> None:
        self.history.append(row)
        columns: list[str] = []
        for r in self.history:
            columns += [k for k in r if k not in columns]
        with open(self.out_dir / "results.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            for r in self.history:
                writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
        if self.tensorboard is None:
            self.tensorboard = open_tensorboard(self.out_dir)
        if self.tensorboard:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(key, value, row["epoch"])
            self.tensorboard.flush()

    def _say(self, message: str) -> None:
        if not self.dist.is_main:
            return
        if self.progress:
            tqdm.write(message)
        else:
            print(message, flush=True)
