"""Plotted figures (curves, confusion matrix, reliability diagram, pixel patch), drawn headless
with matplotlib and written atomically as PNG. matplotlib is imported only when one is drawn;
the grids of 28x28 images are drawn by ``pictures.py`` without it.

:class:`Painter` draws the report's figures in a helper process (``python -m
mnist_logreg.plots``), started before the caller imports torch or trains: importing matplotlib
(about 0.5 s) and drawing then run on the second core, beside the caller's own work.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ._files import atomic_write


class Painter:
    """Draws figures of this module (``draw(name, *args)``) in a helper process when one could
    start (more than one CPU): each job is sent at once, so the helper draws while the caller
    goes on; ``finish()`` waits for the files. Without a helper, or if it fails, the jobs are
    drawn here at ``finish()``. Arguments must be JSON values (lists, dicts, numbers, str).

    ``helper=None`` starts one when there is more than one CPU, unless ``MNIST_LOGREG_PAINTER=0``
    (the test suite sets it: there every core already runs a test worker)."""

    def __init__(self, helper: bool | None = None):
        self.jobs, self.proc = [], None
        if helper is None:
            helper = os.environ.get("MNIST_LOGREG_PAINTER", "1") != "0" and (
                len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) > 1
        if helper:
            try:
                self.proc = subprocess.Popen([sys.executable, "-m", "mnist_logreg.plots"], stdin=subprocess.PIPE,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            except OSError:
                self.proc = None

    def draw(self, name: str, *args) -> None:
        job = [name, [str(a) if isinstance(a, Path) else a for a in args]]
        self.jobs.append(job)
        if self.proc is not None:
            try:
                self.proc.stdin.write(json.dumps(job).encode() + b"\n")
                self.proc.stdin.flush()
            except OSError:  # the helper died: finish() draws here
                self._stop(kill=True)

    def finish(self) -> None:
        """Return when every figure is written."""
        jobs, self.jobs = self.jobs, []
        if self.proc is not None and self._stop():
            return
        for name, args in jobs:  # no helper, or it failed: draw here
            globals()[name](*args)

    def _stop(self, kill: bool = False) -> bool:
        """End the helper (it draws what it was sent, then exits); True when it succeeded."""
        proc, self.proc = self.proc, None
        try:
            if kill:
                proc.kill()
            proc.stdin.close()
            return proc.wait(timeout=300) == 0 and not kill
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            return False

    def close(self) -> None:
        """Stop the helper; jobs not yet finished are dropped (an error stopped the caller)."""
        if self.proc is not None:
            self._stop(kill=True)
        self.jobs = []


def _serve_jobs() -> int:
    """The helper: import matplotlib at once, then draw each job as it arrives on stdin."""
    _plt()
    for line in sys.stdin.buffer:
        name, args = json.loads(line)
        if name not in ("curves_plot", "confusion_plot", "reliability_plot"):
            return 2
        globals()[name](*args)
    return 0


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    plt = _plt()
    # each figure has fixed margins: tight_layout and bbox_inches="tight" measure every text
    # (a second render), about half the drawing time of these figures
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110), durable=False)
    plt.close(fig)
    return Path(path)


def curves_plot(history_rows, path) -> Path:
    """Training curves: train and validation loss, and validation accuracy, per epoch."""
    plt = _plt()
    rows = list(history_rows)
    ep = [r["epoch"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    a1.plot(ep, [r.get("train_loss") for r in rows], "-o", ms=3, label="train")
    if any(r.get("val_loss") is not None for r in rows):
        a1.plot(ep, [r.get("val_loss") for r in rows], "-o", ms=3, label="validation")
    a1.set_xlabel("epoch (0 = before training)")
    a1.set_ylabel("mean cross-entropy")
    a1.set_yscale("log")
    from matplotlib.ticker import FormatStrFormatter
    for axis in (a1.yaxis.set_major_formatter, a1.yaxis.set_minor_formatter):
        axis(FormatStrFormatter("%.2g"))  # 0.3, not 3x10^-1
    a1.set_title("Loss")
    a1.legend()
    a1.grid(alpha=0.3, which="both")
    val = [r for r in rows if r.get("val_acc") is not None]
    later = [r for r in val if r["epoch"] > 0]
    if later:  # epoch 0 (~10%) would squash the interesting part: it is named in the title instead
        a2.plot([r["epoch"] for r in later], [r["val_acc"] for r in later], "-o", ms=3, color="tab:orange")
        start = next((r["val_acc"] for r in val if r["epoch"] == 0), None)
        a2.set_title("Accuracy" + (f" (before training: {start:.0%})" if start is not None else ""))
        a2.set_xlabel("epoch")
        a2.set_ylabel("validation accuracy")
        a2.grid(alpha=0.3)
    else:
        a2.set_axis_off()
        a2.text(0.5, 0.5, "no validation split (val_size 0):\nthe run trained on every training image;\n"
                "its accuracy is the test set's", ha="center", va="center", transform=a2.transAxes)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.91, wspace=0.22)
    return _save(fig, path)


def confusion_plot(cm, classes, path) -> Path:
    """The confusion matrix as a heatmap with counts (rows: true class, columns: predicted)."""
    import numpy as np
    from matplotlib.colors import LogNorm

    plt = _plt()
    cm = np.asarray(cm)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(7.2, 6.2))
    im = ax.imshow(cm + 0.5, cmap="Blues", norm=LogNorm(vmin=0.5, vmax=max(cm.max(), 1)))
    names = [str(c).replace("$", r"\$") for c in classes]  # a '$' would start matplotlib's mathtext
    width = max(map(len, names))  # long class names (Fashion-MNIST's) need room, and a slant below
    rotate = width > 2
    ax.set_xticks(range(k), names, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    thresh = np.sqrt(max(cm.max(), 1))
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > thresh else "black")
    ax.set_title(f"Confusion matrix ({int(cm.sum()):,} images, log colour scale)")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.subplots_adjust(left=0.08 + 0.012 * width, right=0.93, bottom=0.09 + (0.011 * width if rotate else 0), top=0.94)
    return _save(fig, path)


def reliability_plot(calib: dict, path, after: dict | None = None) -> Path:
    """Reliability diagram: accuracy against confidence per bin, with ECE and NLL; with
    ``after`` (the calibrated probabilities' statistics), the two side by side."""
    plt = _plt()
    panels = [("the model's softmax", calib)] + ([("calibrated (what the tool shows)", after)] if after else [])
    fig, axes = plt.subplots(2, len(panels), figsize=(5.5 * len(panels), 6), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    for col, (name, c) in enumerate(panels):
        _reliability_panel(axes[0][col], axes[1][col], c, name if after else None)
    fig.subplots_adjust(left=0.15 / len(panels), right=0.98, bottom=0.09, top=0.93, hspace=0.08, wspace=0.25)
    return _save(fig, path)


def _reliability_panel(ax, axh, calib: dict, name) -> None:
    bins = [b for b in calib["bins"] if b["count"]]
    width = 1.0 / calib["n_bins"]
    ax.bar([b["low"] for b in bins], [b["accuracy"] for b in bins], width=width, align="edge",
           edgecolor="black", color="tab:blue", alpha=0.8, label="accuracy")
    ax.bar([b["low"] for b in bins], [b["confidence"] - b["accuracy"] for b in bins], bottom=[b["accuracy"] for b in bins],
           width=width, align="edge", color="tab:red", alpha=0.3, hatch="//", label="gap to confidence")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    head = f"{name}: " if name else "Reliability: "
    ax.set_title(f"{head}ECE {calib['ece'] * 100:.2f}% ({calib['n_bins']} bins), NLL {calib['nll']:.4f}", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    axh.bar([b["low"] for b in bins], [b["count"] for b in bins], width=width, align="edge", color="gray")
    axh.set_yscale("log")
    axh.set_xlabel("confidence (top-class probability)")
    axh.set_ylabel("images")
    axh.set_xlim(0, 1)


def patch_plot(patch, path, title: str) -> Path:
    """A crop of pixels drawn large, with each value written in its cell (the notebook's 5x5)."""
    import numpy as np

    plt = _plt()
    patch = np.asarray(patch, dtype=float)
    fig, ax = plt.subplots(figsize=(1 + 0.7 * patch.shape[1], 1 + 0.7 * patch.shape[0]))
    ax.imshow(patch, cmap="gray", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(patch):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, color="red")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


if __name__ == "__main__":
    sys.exit(_serve_jobs())
