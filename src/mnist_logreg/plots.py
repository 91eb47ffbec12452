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


def weights_plot(weight, classes, path) -> Path:
    """Each class's weight row as a 28x28 template, on a diverging colour map centred on 0:
    red pixels raise the class's score, blue pixels lower it."""
    import numpy as np

    plt = _plt()
    w = np.asarray(weight, dtype=float).reshape(len(classes), 28, 28)
    lim = float(np.abs(w).max()) or 1.0
    fig, axes = plt.subplots(2, 5, figsize=(11, 5))
    for k, ax in enumerate(axes.flat):
        im = ax.imshow(w[k], cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(str(classes[k]), fontsize=11)
        ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.025, pad=0.02, label="weight")
    fig.suptitle("Learned weight templates (rows of linear.weight)")
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


def gallery_plot(images, titles, colors, path, *, cols: int = 8, title: str | None = None) -> Path:
    """Images with a coloured caption each (mistakes, predictions)."""
    import numpy as np

    plt = _plt()
    images = np.asarray(images)
    n = len(images)
    rows = max(1, (n + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.45, rows * 1.75), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(images[k].reshape(28, 28), cmap="gray", vmin=0, vmax=255)
            ax.set_title(titles[k], fontsize=7.5, color=colors[k])
    if title:
        fig.suptitle(title)
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
    return _save(fig, path)
