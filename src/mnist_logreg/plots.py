"""Plotted figures (curves, confusion matrix, reliability diagram, pixel patch), drawn headless
with matplotlib and written atomically as PNG. matplotlib is imported only when one is drawn;
the grids of 28x28 images are drawn by ``pictures.py`` without it."""
from __future__ import annotations

from pathlib import Path

from ._files import atomic_write


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    plt = _plt()
    # each figure lays itself out (tight_layout); bbox_inches="tight" would render it twice
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
    a1.set_title("Loss")
    a1.legend()
    a1.grid(alpha=0.3, which="both")
    if any(r.get("val_acc") is not None for r in rows):
        a2.plot(ep, [r.get("val_acc") for r in rows], "-o", ms=3, color="tab:orange")
        later = [r["val_acc"] for r in rows if r["epoch"] > 0 and r.get("val_acc") is not None]
        if later:  # epoch 0 (~10%) would squash the interesting part
            a2.set_ylim(min(later) - 0.01, min(1.0, max(later) + 0.01))
    a2.set_xlabel("epoch")
    a2.set_ylabel("validation accuracy")
    a2.set_title("Accuracy")
    a2.grid(alpha=0.3)
    fig.tight_layout()
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
    names = [str(c) for c in classes]
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 2 else 0, ha="right" if max(map(len, names)) > 2 else "center")
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
    fig.tight_layout()
    return _save(fig, path)


def reliability_plot(calib: dict, path) -> Path:
    """Reliability diagram: accuracy against confidence per bin, with ECE and NLL."""
    plt = _plt()
    bins = [b for b in calib["bins"] if b["count"]]
    fig, (ax, axh) = plt.subplots(2, 1, figsize=(5.5, 6), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    width = 1.0 / calib["n_bins"]
    ax.bar([b["low"] for b in bins], [b["accuracy"] for b in bins], width=width, align="edge",
           edgecolor="black", color="tab:blue", alpha=0.8, label="accuracy")
    ax.bar([b["low"] for b in bins], [b["confidence"] - b["accuracy"] for b in bins], bottom=[b["accuracy"] for b in bins],
           width=width, align="edge", color="tab:red", alpha=0.3, hatch="//", label="gap to confidence")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(f"Reliability: ECE {calib['ece'] * 100:.2f}% ({calib['n_bins']} bins), NLL {calib['nll']:.4f}")
    ax.legend(loc="upper left", fontsize=8)
    axh.bar([b["low"] for b in bins], [b["count"] for b in bins], width=width, align="edge", color="gray")
    axh.set_yscale("log")
    axh.set_xlabel("confidence (top-class probability)")
    axh.set_ylabel("images")
    axh.set_xlim(0, 1)
    fig.tight_layout()
    return _save(fig, path)


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
