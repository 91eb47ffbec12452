"""Figures, drawn headless with matplotlib and written atomically as PNG."""
from __future__ import annotations

from pathlib import Path

from .checkpoint import atomic_write


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    plt = _plt()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return Path(path)


def accuracy_plot(history_rows, path) -> Path:
    """Validation accuracy against epoch (epoch 0 = before training): the notebook's plot."""
    plt = _plt()
    rows = [r for r in history_rows if r.get("val_acc") is not None]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["epoch"] for r in rows], [r["val_acc"] for r in rows], "-x")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Accuracy vs. No. of epochs")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def image_grid(images, labels, path, *, classes=None, preds=None, cols: int = 8,
               title: str | None = None) -> Path:
    """A grid of images with their labels (and predictions: green right, red wrong)."""
    import numpy as np

    plt = _plt()
    images, labels = np.asarray(images), np.asarray(labels)
    preds = None if preds is None else np.asarray(preds)
    n = len(images)
    rows = max(1, (n + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.5), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(images[k].reshape(28, 28), cmap="gray", vmin=0, vmax=255 if images[k].max() > 1 else 1)
        lab = int(labels[k])
        name = classes[lab] if classes is not None and 0 <= lab < len(classes) else str(lab)
        if preds is None:
            ax.set_title(f"{name}", fontsize=9)
        else:
            p = int(preds[k])
            pname = classes[p] if classes is not None else str(p)
            ax.set_title(f"{name}→{pname}", fontsize=8, color="tab:green" if p == lab else "tab:red")
    if title:
        fig.suptitle(title)
    return _save(fig, path)
