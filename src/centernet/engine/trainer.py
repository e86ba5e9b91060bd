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
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import TrainConfig
from ..data.dataset import DetectionDataset, Normalize
from ..data.samples import DatasetSplit
from ..data.transforms import AugmentConfig
from ..eval.coco import format_per_class_table, metrics_to_jsonable
from ..progress import progress_bar
from ..visualize import plot_training_curves
from .checkpoint import save_checkpoint
from .ema import ModelEMA
from .inference import InferenceSettings, evaluate_split
from .precision import autocast, memory_format, resolve_precision

HEADLINE = ("map", "map50", "map75", "map_small", "map_medium", "map_large")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    lr = cfg.resolved_lr()
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)


def lr_factor(progress: float, step: int, cfg: TrainConfig) -> float:
    """Multiplier of the base lr at a point of training (progress in [0, 1], step count)."""
    if cfg.warmup_iters and step < cfg.warmup_iters:
        return 0.1 + 0.9 * step / cfg.warmup_iters
    if cfg.schedule == "cosine":
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return 0.1 ** sum(progress >= s for s in cfg.lr_steps)


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
    ) -> None:
        self.cfg = cfg.validate()
        self.task, self.info, self.progress = task, info, progress
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(cfg.device)
        self.precision = resolve_precision(cfg.precision, self.device)
        self.memory_format = memory_format(self.device, self.precision)
        self.model = model.to(self.device).to(memory_format=self.memory_format)
        self.val_split = val_split
        self.normalize = Normalize(info.mean, info.std)
        self.dataset = DetectionDataset(
            train_split, cfg.input_size, encoder=task.encoder(), normalize=self.normalize, seed=cfg.seed,
            augment=AugmentConfig(
                mode=cfg.augment_mode, shift=cfg.aug_shift, scale=cfg.aug_scale, flip=cfg.flip, color=cfg.color_aug
            ),
        )
        if cfg.cache_images:
            used = self.dataset.fill_cache(progress)
            self._say(f"cached {len(self.dataset)} decoded images in {used / 2**20:.0f} MiB")
        self.optimizer = make_optimizer(self.model, cfg)
        self.ema = ModelEMA(self.model, cfg.ema_decay, cfg.ema_tau) if cfg.ema else None
        self.best_map = -1.0
        self.metrics: dict = {}
        self.history: list[dict] = []

    # ------------------------------------------------------------------ loop
    def fit(self) -> dict:
        cfg = self.cfg
        generator = torch.Generator().manual_seed(cfg.seed)
        loader = DataLoader(
            self.dataset,
            batch_size=min(cfg.batch_size, len(self.dataset)),
            shuffle=True,
            drop_last=True,
            num_workers=cfg.workers,
            generator=generator,
        )
        steps_per_epoch = len(loader)
        total_steps = steps_per_epoch * cfg.epochs
        base_lr = cfg.resolved_lr()
        self._say(
            f"training {self.info.model_name} on {len(self.dataset)} images, {cfg.epochs} epochs x {steps_per_epoch} "
            f"steps, batch {cfg.batch_size}, {cfg.optimizer} lr {base_lr:.2e} ({cfg.schedule}), "
            f"input {cfg.input_size}, precision {self.precision}, device {self.device}"
        )
        start = time.perf_counter()
        step = 0
        skipped = 0
        for epoch in range(1, cfg.epochs + 1):
            self.model.train()
            self.dataset.set_epoch(epoch)
            sums: dict[str, float] = {}
            count = 0
            bar = progress_bar(loader, desc=f"epoch {epoch}/{cfg.epochs}", disable=not self.progress, leave=True)
            out_of_time = False
            for batch in bar:
                progress = step / total_steps
                if cfg.time_limit:
                    progress = max(progress, (time.perf_counter() - start) / (cfg.time_limit * 60))
                    if progress >= 1.0:
                        out_of_time = True
                        break
                for group in self.optimizer.param_groups:
                    group["lr"] = base_lr * lr_factor(progress, step, cfg)
                losses = self._train_step(batch)
                step += 1
                if losses is None:
                    skipped += 1
                    continue
                count += 1
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.set_postfix({k.removesuffix("_loss"): f"{v / count:.3f}" for k, v in sums.items()}, refresh=False)
            bar.close()
            row = {"epoch": epoch, "lr": self.optimizer.param_groups[0]["lr"], "time": time.perf_counter() - start}
            row.update({k: v / max(count, 1) for k, v in sums.items()})
            last = epoch == cfg.epochs or out_of_time
            if self.val_split is not None and (epoch % cfg.val_interval == 0 or last):
                row.update(self._validate(epoch))
            self._log(row)
            self._save(epoch, "last.pt")
            if out_of_time:
                self._say(f"time limit of {cfg.time_limit:g} min reached after epoch {epoch}")
                break
        if skipped:
            self._say(f"skipped {skipped} steps with a non-finite loss")
        plot_training_curves(self.out_dir / "results.csv", self.out_dir / "results.png")
        self.metrics["train_time_s"] = round(time.perf_counter() - start, 1)
        self.metrics["steps"] = step
        (self.out_dir / "metrics.json").write_text(json.dumps(metrics_to_jsonable(self.metrics), indent=2))
        return self.metrics

    def _train_step(self, batch: dict) -> dict[str, float] | None:
        images = batch["image"].to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        targets = {k: v.to(self.device, non_blocking=True) for k, v in batch["targets"].items()}
        with autocast(self.device, self.precision):
            outputs = self.model(images)
        losses = self.task.loss(outputs, targets)  # computed in float32
        loss = losses["loss"]
        if not torch.isfinite(loss):
            self._say(f"non-finite loss on images {batch['image_id'].tolist()}; step skipped")
            self.optimizer.zero_grad(set_to_none=True)
            return None
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return {k: float(v.detach()) for k, v in losses.items()}

    # ------------------------------------------------------------ validation
    def _validate(self, epoch: int) -> dict:
        settings = InferenceSettings(self.cfg.input_size, 100, self.precision, str(self.device))
        metrics, _ = evaluate_split(
            self.eval_model, self.task, self.val_split, settings, self.normalize,
            batch_size=self.cfg.batch_size, workers=self.cfg.workers, progress=self.progress,
        )
        self.metrics = {k: metrics[k] for k in HEADLINE} | {
            "epoch": epoch, "per_class": metrics["per_class"], "per_class50": metrics["per_class50"]}
        self._say(
            f"epoch {epoch}: mAP {metrics['map']:.3f}  AP50 {metrics['map50']:.3f}  AP75 {metrics['map75']:.3f}  "
            f"(small {metrics['map_small']:.3f} medium {metrics['map_medium']:.3f} large {metrics['map_large']:.3f})"
        )
        if metrics["map"] > self.best_map:
            self.best_map = metrics["map"]
            self._save(epoch, "best.pt")
        return {k: metrics[k] for k in ("map", "map50", "map75")}

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
            "class_names": list(self.info.class_names),
            "category_ids": list(self.info.category_ids),
            "input_size": self.cfg.input_size,
            "mean": list(self.info.mean),
            "std": list(self.info.std),
            "epoch": epoch,
            "metrics": metrics_to_jsonable({k: v for k, v in self.metrics.items() if k in HEADLINE}),
            "train_config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.cfg.to_dict().items()},
        }
        self.eval_model.to(memory_format=self.memory_format)
        return state

    def _save(self, epoch: int, name: str) -> None:
        save_checkpoint(self.checkpoint_state(epoch), self.out_dir / name)

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

    def _say(self, message: str) -> None:
        if self.progress:
            tqdm.write(message)
        else:
            print(message, flush=True)
