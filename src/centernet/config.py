"""Settings as dataclasses, one comment per field. The CLI and the Python API fill these."""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

from .errors import CenterNetError

# Every model's output stride: heatmaps and targets are drawn at 1/4 of the input (the paper's R = 4).
OUTPUT_STRIDE = 4


@dataclass
class TrainConfig:
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "optimizer": ("adam", "adamw", "sgd"), "schedule": ("step", "cosine"),
        "augment_mode": ("crop", "shift_scale", "none"), "precision": ("auto", "bf16", "fp16", "fp32"),
    }

    epochs: int = 70                 # passes over the training split
    batch_size: int = 32             # images per optimiser step
    optimizer: str = "adam"          # 'adam' (the original), 'adamw' or 'sgd' (momentum 0.9)
    lr: float | None = None          # None: 5e-4 x batch_size / 128 (the original's linear rule)
    weight_decay: float = 0.0        # decoupled for adamw, L2 for adam/sgd; never on biases and norm scales
    schedule: str = "step"           # 'step' (x0.1 at lr_steps) or 'cosine'
    lr_steps: tuple[float, ...] = (0.64, 0.86)  # fractions of training where 'step' divides lr by 10 (90, 120 of 140)
    warmup_iters: int = 0            # linear warm-up from 0.1 x lr over this many steps
    min_lr_ratio: float = 0.01       # 'cosine' ends at lr x this
    grad_clip: float = 0.0           # max gradient norm; 0 = off
    ema: bool = True                 # validate and save an exponential moving average of the weights
    ema_decay: float = 0.9998        # its final decay per step
    ema_tau: float = 2000.0          # steps over which the decay ramps up (short runs: ~ total steps / 10)
    input_size: int = 512            # square training input, a multiple of 32 (its width when input_height is set)
    input_height: int = 0            # > 0: a rectangular input_size x input_height (wide images, KITTI); then
                                     # validation and prediction default to the image's own resolution
    start_input_size: int | tuple[int, ...] = 0  # > 0: progressive resizing, square inputs of this side first, then
                                     # input_size; several (96, 128): one after the other
    resize_at: float | tuple[float, ...] | None = None  # the fraction of training (steps, or the clock with
                                     # time_limit) where start_input_size ends; with several sizes one each, increasing;
                                     # None: the start sizes share the first half equally (0.5; 0.25, 0.5; ...)
    augment_mode: str = "crop"       # 'crop': scale {0.6, ..., 1.3} x max(h, w), random centre (the original's default);
                                     # 'shift_scale': normal shift + scale (its not_rand_crop); 'none': letterbox
    aug_shift: float = 0.1           # 'shift_scale': centre shift std, a fraction of max(h, w) (clipped at 2x)
    aug_scale: float = 0.4           # 'shift_scale': scale std (clipped to [1 - aug_scale, 1 + aug_scale])
    color_aug: bool = True           # brightness/contrast/saturation jitter + PCA lighting (the original's color_aug)
    flip: float = 0.5                # horizontal flip probability
    val_interval: int = 5            # validate every N epochs (and after the last)
    workers: int = 2                 # data loader processes; 0 = in the main process
    cache_images: bool = False       # decode every training image once and keep it in RAM
    precision: str = "auto"          # 'auto' (bf16 where the CPU/GPU has it), 'bf16', 'fp16' (GPU, loss scaling), 'fp32'
    max_objects: int = 128           # objects per image encoded
    seed: int = 0                    # seeds model init, shuffling and augmentation
    time_limit: float = 0.0          # minutes; > 0 stops after the epoch that crosses it
    patience: int = 0                # early stopping: stop after this many validations without a better mAP; 0 = off
    max_bad_steps: int = 20          # stop with an error after this many consecutive non-finite losses
    deterministic: bool = False      # deterministic algorithms (reproducible CPU runs, e.g. for exact resume)
    compile: bool = False            # torch.compile the model for training
    sync_bn: bool = False            # SyncBatchNorm across processes under torchrun (GPUs only)
    freeze_bn: bool = False          # BatchNorm in eval mode while training (fine-tuning with small batches)
    device: str = "auto"             # 'auto' (a GPU when there is one), 'cpu', 'cuda', 'cuda:N' or 'mps'
    plots: bool = True               # pictures in the run folder: labels, first training batches, last validation's

    def __post_init__(self) -> None:
        # Lists (from yaml or a checkpoint) become tuples, and a single start size or fraction a plain number.
        for name in ("start_input_size", "resize_at"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                setattr(self, name, value[0] if len(value) == 1 else tuple(value))

    def resize_stages(self) -> list[tuple[int, float]]:
        """Progressive resizing as (side, until) pairs in training order: each side is used until that fraction
        of training, input_size after the last. [] when off."""
        if not self.start_input_size:
            return []
        return list(zip(_as_tuple(self.start_input_size), self._resize_fractions()))

    def _resize_fractions(self) -> tuple[float, ...]:
        if self.resize_at is not None:
            return _as_tuple(self.resize_at)
        count = len(_as_tuple(self.start_input_size))
        return tuple((k + 1) / (2 * count) for k in range(count))

    def resolved_lr(self) -> float:
        return self.lr if self.lr is not None else 5e-4 * self.batch_size / 128

    def validate(self) -> "TrainConfig":
        _check(self.epochs >= 1, "epochs", self.epochs, ">= 1")
        _check(self.batch_size >= 1, "batch_size", self.batch_size, ">= 1")
        for name, allowed in self.CHOICES.items():
            value = getattr(self, name)
            _check(value in allowed, name, value, ", ".join(map(repr, allowed[:-1])) + f" or {allowed[-1]!r}")
        _check(self.lr is None or self.lr > 0, "lr", self.lr, "> 0")
        _check(self.weight_decay >= 0, "weight_decay", self.weight_decay, ">= 0")
        _check(all(0 < s < 1 for s in self.lr_steps), "lr_steps", self.lr_steps, "fractions in (0, 1)")
        _check(0 < self.ema_decay < 1, "ema_decay", self.ema_decay, "in (0, 1)")
        _check(self.ema_tau > 0, "ema_tau", self.ema_tau, "> 0")
        _check(self.warmup_iters >= 0, "warmup_iters", self.warmup_iters, ">= 0")
        _check(_is_int(self.input_size) and self.input_size >= 32 and self.input_size % 32 == 0, "input_size",
               self.input_size, "a multiple of 32")
        _check(_is_int(self.input_height) and (self.input_height == 0 or (self.input_height >= 32
               and self.input_height % 32 == 0)), "input_height", self.input_height, "0 (square) or a multiple of 32")
        sizes, fractions = _as_tuple(self.start_input_size), self._resize_fractions()
        _check(sizes == (0,) or all(_is_int(s) and s >= 32 and s % 32 == 0 for s in sizes),
               "start_input_size", self.start_input_size, "0 (off) or multiples of 32")
        _check(not (self.start_input_size and self.input_height), "start_input_size", self.start_input_size,
               "0 with a rectangular input (input_height > 0)")
        _check(all(0 < f < 1 for f in fractions), "resize_at", self.resize_at, "fractions in (0, 1)")
        _check(all(a < b for a, b in zip(fractions, fractions[1:])), "resize_at", self.resize_at,
               "increasing fractions")
        _check(sizes == (0,) or len(fractions) == len(sizes), "resize_at", self.resize_at,
               f"one fraction per start_input_size ({len(sizes)})")
        _check(0 <= self.flip <= 1, "flip", self.flip, "a probability in [0, 1]")
        _check(self.aug_shift >= 0, "aug_shift", self.aug_shift, ">= 0")
        _check(0 <= self.aug_scale < 1, "aug_scale", self.aug_scale, "in [0, 1)")
        _check(self.val_interval >= 1, "val_interval", self.val_interval, ">= 1")
        _check(self.workers >= 0, "workers", self.workers, ">= 0")
        _check(self.max_objects >= 1, "max_objects", self.max_objects, ">= 1")
        _check(self.time_limit >= 0, "time_limit", self.time_limit, ">= 0")
        _check(self.patience >= 0, "patience", self.patience, ">= 0")
        _check(self.max_bad_steps >= 1, "max_bad_steps", self.max_bad_steps, ">= 1")
        _check(self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:"), "device", self.device,
               "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise CenterNetError(f"unknown training setting(s) {unknown}; expected some of {sorted(names)}")
        return cls(**d)


def _is_int(value) -> bool:
    """A whole number given as one (192, not 192.0: image sides go to OpenCV, which takes only ints)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _check(ok: bool, name: str, value, expected: str) -> None:
    if not ok:
        raise CenterNetError(f"{name}={value!r} is out of range; expected {expected}")
