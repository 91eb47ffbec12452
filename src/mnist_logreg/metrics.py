"""Metrics computed from labels and predictions (plain tensors in, plain numbers out)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

EVAL_CHUNK = 16384  # images per matrix product: a uint8 chunk becomes floats, never the whole set


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


def precision_recall_f1(cm: torch.Tensor) -> dict:
    """Per-class precision, recall, F1 and support from a confusion matrix (rows = true).

    A class never predicted has precision 0 (scikit-learn's ``zero_division=0``).
    """
    cm = cm.double()
    tp = cm.diag()
    predicted = cm.sum(0)
    support = cm.sum(1)
    precision = torch.where(predicted > 0, tp / predicted.clamp_min(1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp_min(1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp_min(1e-300), torch.zeros_like(tp))
    return {"precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist(),
            "support": [int(s) for s in support.tolist()]}


def calibration(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> dict:
    """Reliability statistics of the top-class confidence in ``n_bins`` equal-width bins.

    Returns ``ece`` (expected calibration error: the support-weighted mean of
    ``|accuracy - confidence|`` over bins), ``nll`` (mean negative log-likelihood of the true
    class) and, per bin, its edges, count, mean confidence and accuracy.

    Examples
    --------
    >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4]])
    >>> round(calibration(p, torch.tensor([0, 1]), n_bins=10)["ece"], 4)   # (|1-.9| + |0-.6|) / 2
    0.35
    """
    probs = probs.double()
    conf, pred = probs.max(1)
    correct = (pred == labels).double()
    # bin b holds confidences in (b/n, (b+1)/n]; a confidence of exactly 0 goes to bin 0
    idx = (conf * n_bins).ceil().long().clamp(1, n_bins) - 1
    count = torch.bincount(idx, minlength=n_bins).double()
    conf_sum = torch.bincount(idx, weights=conf, minlength=n_bins)
    acc_sum = torch.bincount(idx, weights=correct, minlength=n_bins)
    n = max(len(labels), 1)
    safe = count.clamp_min(1)
    ece = float(((acc_sum / safe - conf_sum / safe).abs() * count).sum() / n)
    nll = float(-probs[torch.arange(len(labels)), labels].clamp_min(1e-300).log().mean())
    return {"ece": ece, "nll": nll, "n_bins": n_bins,
            "bins": [{"low": b / n_bins, "high": (b + 1) / n_bins, "count": int(count[b]),
                      "confidence": float(conf_sum[b] / count[b]) if count[b] else None,
                      "accuracy": float(acc_sum[b] / count[b]) if count[b] else None} for b in range(n_bins)]}


@torch.no_grad()
def evaluate(model, data, *, threads: int | None = None) -> dict:
    """Mean cross-entropy (``loss``) and ``accuracy`` of ``model`` on ``data``.

    ``data`` is an :class:`ImageSet` or a pair ``(x, y)`` with ``x`` in [0, 1]. The loss is
    the exact mean over all images, computed in a few large batches.

    Examples
    --------
    >>> import torch
    >>> from mnist_logreg import MnistModel
    >>> m = MnistModel(); _ = torch.nn.init.zeros_(m.linear.weight); _ = torch.nn.init.zeros_(m.linear.bias)
    >>> r = evaluate(m, (torch.rand(4, 784), torch.tensor([0, 1, 2, 3])))
    >>> round(r["loss"], 4), r["accuracy"]   # uniform prediction: loss ln(10)
    (2.3026, 0.25)
    """
    from .data import feature_matrix
    from .engines import num_threads

    x, y, scale = feature_matrix(data, model.linear.weight.device, getattr(model, "transform", "none"))

    with num_threads(threads):
        return evaluate_matrix(model, x, y, scale)


def evaluate_matrix(model, x, y, scale=1.0) -> dict:
    """evaluate() on an (n, 784) matrix whose features are ``x * scale``, in chunks, so a
    uint8 matrix is never converted to float whole."""
    W, b = model.linear.weight, model.linear.bias
    loss_sum, correct = 0.0, 0
    for i in range(0, len(y), EVAL_CHUNK):
        logits = torch.addmm(b, x[i:i + EVAL_CHUNK].to(W.dtype), W.t(), alpha=scale)
        yc = y[i:i + EVAL_CHUNK]
        loss_sum += F.cross_entropy(logits, yc, reduction="sum").item()
        correct += int((logits.argmax(1) == yc).sum())
    n = max(len(y), 1)
    return {"loss": loss_sum / n, "accuracy": correct / n}
