"""TensorBoard event files for a run (``train --tensorboard``), through ``torch.utils.tensorboard``.

Per epoch: ``loss/train``, ``loss/val``, ``accuracy/val`` and ``lr``; at the end of a session the
ten weight templates as one image (``weights``, a grid of 28x28 gray templates, 8 per row, mid-gray 0, white
the largest positive weight) and the run's config as text. Needs the ``tensorboard`` package:
``pip install 'mnist-logreg[tensorboard]'``.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from .config import RUN_FOLDER
from .errors import ConfigError
from .errors import setting_ref as _ref


def check_available() -> None:
    """One line naming the extra when the tensorboard package is missing (before any work)."""
    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(f"{_ref('tensorboard')} needs the tensorboard package: "
                          f"pip install 'mnist-logreg[tensorboard]'")


def check_folder(cfg) -> None:
    """``--tensorboard DIR``: a folder this process can write, checked before any work (a file,
    /proc or /dev/full there was a traceback and left an empty run folder)."""
    import os

    if cfg.tensorboard in (None, RUN_FOLDER):
        return
    folder = Path(cfg.tensorboard)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{_ref('tensorboard')} {folder}: cannot make the folder: "
                          f"{e.strerror or type(e).__name__}") from None
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{_ref('tensorboard')} {folder}: not a folder this user can write")


def log_dir(cfg, run_dir: Path) -> Path:
    """Where a run's event files go: its own tensorboard/ folder, or DIR/<run name>."""
    if cfg.tensorboard == RUN_FOLDER:
        return Path(run_dir) / "tensorboard"
    return Path(cfg.tensorboard) / Path(run_dir).name


class Board:
    """The event files of one training session."""

    def __init__(self, cfg, run_dir: Path):
        check_available()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir(cfg, run_dir)))
        text = "    " + cfg.to_toml().replace("\n", "\n    ")  # an indented block: Markdown shows it as code
        self.writer.add_text("config", text, 0)

    def epoch(self, row: dict, lr: float) -> None:
        e = row["epoch"]
        for tag, key in (("loss/train", "train_loss"), ("loss/val", "val_loss"), ("accuracy/val", "val_acc")):
            if row.get(key) is not None:
                self.writer.add_scalar(tag, row[key], e)
        self.writer.add_scalar("lr", lr, e)

    def weights(self, model, epoch: int) -> None:
        import torch

        with torch.no_grad():
            w = model.linear.weight.detach().float().cpu()
            images = (w / w.abs().max().clamp_min(1e-12) + 1) / 2
        self.writer.add_images("weights", images.reshape(-1, 1, 28, 28), epoch, dataformats="NCHW")

    def close(self) -> None:
        self.writer.close()
