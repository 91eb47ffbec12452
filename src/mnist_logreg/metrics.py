"""Metrics computed from labels and predictions (plain tensors in, plain numbers out)."""
from __future__ import annotations

import torch


def accuracy(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose arg-max equals the label (the notebook's ``accuracy``).

    Examples
    --------
    >>> accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]))
    tensor(0.5000)
    """
    preds = outputs.argmax(dim=1)
    return (preds == labels).float().mean()


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """Counts ``C[true, predicted]`` as an int64 (num_classes, num_classes) tensor."""
    idx = labels.long() * num_classes + preds.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(cm: torch.Tensor) -> list[float]:
    """Recall of each class: the diagonal over the row sums (NaN for an empty class)."""
    rows = cm.sum(1).double()
    return (cm.diag().double() / rows).tolist()


def format_confusion(cm: torch.Tensor, classes) -> str:
    """The confusion matrix as aligned text, rows = true class, columns = predicted."""
    names = [str(c)[:7] for c in classes]
    width = max(5, max(len(n) for n in names), len(str(int(cm.max()))) + 1)
    head = " " * (width + 1) + "".join(f"{n:>{width}}" for n in names)
    lines = ["true \\ predicted", head]
    for name, row in zip(names, cm.tolist()):
        lines.append(f"{name:>{width}} " + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)
