"""The README's command-line examples: every one parses, and every quick one runs on tiny data.

A renamed flag or subcommand fails here before it leaves the README wrong. The examples run with their data,
weights, sizes and run folders replaced by tiny ones (a tiny shapes set at 64 px, one epoch); the demos,
`convert` (an original checkpoint is not at hand) and the pose and 3D commands (covered by their own tests) are
parsed only.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import cv2
import numpy as np
import pytest

from centernet.cli import _config_defaults, build_parser, cmd_check, cmd_export, cmd_predict, cmd_train, cmd_val

from conftest import TINY_SHAPES

README = Path(__file__).resolve().parents[1] / "README.md"
RUNNABLE = {"check": cmd_check, "train": cmd_train, "val": cmd_val, "predict": cmd_predict, "export": cmd_export}


def readme_commands() -> list[list[str]]:
    """Each ``centernet ...`` line of the README's bash blocks, as arguments after ``centernet``."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["centernet"]:
                commands.append(words[1:])
    return commands


COMMANDS = readme_commands()


def test_the_readme_shows_every_subcommand():
    assert {argv[0] for argv in COMMANDS} >= {"demo", "check", "train", "val", "predict", "export"}


def parse(argv: list[str]):
    """The command line as ``centernet`` reads it, ``--config`` included."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train" and args.config:
        parser.train_parser.set_defaults(**_config_defaults(args.config))
        args = parser.parse_args(argv)
    return args


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a)[:60] for a in COMMANDS])
def test_every_readme_command_parses(argv):
    if "--config" in argv:  # the file it names is a run's; the quick run below replays a real one
        argv = argv[: argv.index("--config")] + argv[argv.index("--config") + 2 :]
    try:
        build_parser().parse_args(argv)
    except SystemExit as exit:
        pytest.fail(f"`centernet {' '.join(argv)}` does not parse (exit {exit.code})")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny shapes set as a COCO folder, a checkpoint trained one epoch on it, and a folder of two images."""
    from centernet import CenterNet
    from centernet.data.shapes import build_shapes

    out = tmp_path_factory.mktemp("readme_run")
    data = build_shapes(out / "datasets", TINY_SHAPES)
    CenterNet("resnet18").train(data=str(data), out=out, epochs=1, batch_size=4, input_size=64, workers=0,
                                progress=False, precision="fp32", plots=False)
    images = out / "images"
    images.mkdir()
    for i in range(2):
        cv2.imwrite(str(images / f"{i}.jpg"), np.random.default_rng(i).integers(0, 255, (64, 80, 3), np.uint8))
    return {"out": out, "data": str(data)}


def is_quick(argv: list[str]) -> bool:
    """A detection command of check, train, val, predict or export: it runs here on tiny data."""
    return argv[0] in RUNNABLE and ("--task" not in argv or argv[argv.index("--task") + 1] == "detect")


def with_tiny_run(argv: list[str], run: dict, out: Path) -> list[str]:
    """``argv`` with the run's data, weights, images and folders in place of the README's."""
    folder = run["out"]
    replaced = {"--data": run["data"], "--weights": str(folder / "last.pt"), "--config": str(folder / "args.yaml"),
                "--out": str(out), "--train-split": "train", "--val-split": "val", "--split": "val"}
    words = [replaced.get(argv[i - 1], word) if i else word for i, word in enumerate(argv)]
    if argv[0] in ("check", "predict") and len(argv) > 1 and not argv[1].startswith("-"):  # their positional input
        words[1] = run["data"] if argv[0] == "check" else str(folder / "images")
    return words


# Tiny sizes for a training command; every command: no progress bars, fp32, no loader processes.
TINY_TRAINING = {"epochs": 1, "input_size": 64, "batch_size": 4, "time_limit": 0.0, "start_input_size": 0,
                 "resize_at": None, "cache_images": False}
QUIET = {"workers": 0, "progress": False, "precision": "fp32"}
QUICK = [argv for argv in COMMANDS if is_quick(argv)]


@pytest.mark.parametrize("argv", QUICK, ids=[" ".join(a)[:60] for a in QUICK])
def test_the_quick_readme_commands_run(argv, tiny_run, tmp_path):
    args = parse(with_tiny_run(argv, tiny_run, tmp_path / "out"))
    for name, value in (QUIET | TINY_TRAINING if args.command == "train" else QUIET).items():
        if hasattr(args, name):
            setattr(args, name, value)
    assert RUNNABLE[args.command](args) == 0


def test_the_readme_pictures_are_there_and_small():
    """Every picture the README shows is in docs/images (made by `make docs-images`), each under 200 KB."""
    pictures = set(re.findall(r"docs/images/[\w.-]+", README.read_text()))
    assert len(pictures) >= 10
    for name in sorted(pictures):
        path = README.parent / name
        assert path.is_file(), f"{name} is missing: run `make docs-images`"
        assert path.stat().st_size < 200_000, f"{name}: {path.stat().st_size} bytes"
        assert cv2.imread(str(path)) is not None, name
