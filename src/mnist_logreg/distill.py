"""Distillation: a small convolutional teacher, trained only to soften the labels the linear
student learns from (Hinton et al. 2015). The shipped model is the student, still one linear
layer; the teacher is thrown away after training.

The student's target for image i is ``alpha * onehot(y_i) + (1 - alpha) * softmax(t_i / T)``
with ``t_i`` the teacher's logits: cross-entropy against a soft target has the gradient
``softmax(z) - target``, so ``fit`` trains on it with the same closed-form step as on hard
labels (see ``fit``'s ``soft_targets``). Measured on MNIST and Fashion-MNIST
(bench/accuracy.md): it does not beat hard labels for a linear student.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError
from .errors import setting_ref as _ref
from .optim import Adam


def make_teacher() -> nn.Module:
    """Two 5x5 convolutions (16 and 32 channels) with max-pooling and one linear layer:
    about 98% on MNIST after 2 epochs, a minute or so per epoch on 2 CPU cores."""
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


def train_teacher(x: torch.Tensor, y: torch.Tensor, epochs: int = 2, seed: int = 0, lr: float = 1e-3,
                  batch_size: int = 128, log=print) -> nn.Module:
    """Train the teacher on features ``x`` (n, 784), floats, and labels ``y`` with Adam.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> y = torch.arange(256) % 2
    >>> x = torch.rand(256, 784, generator=g) * 0.5; x[y == 1, :392] += 0.5   # class 1: bright top half
    >>> t = train_teacher(x, y, epochs=3, batch_size=32, log=None)
    >>> bool((t(x).argmax(1) == y).float().mean() > 0.9)
    True
    """
    if epochs < 1:
        raise ConfigError(f"{_ref('distill_epochs')} must be at least 1 to train a teacher, got {epochs}")
    log = log or (lambda *a, **k: None)
    torch.manual_seed(seed)
    teacher = make_teacher()
    # torch.optim.Adam's update, bit for bit, without constructing one: that imports torch._dynamo (1 s)
    opt = Adam(teacher.parameters(), lr, fused=False)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), batch_size):
            idx = perm[i:i + batch_size]
            loss = F.cross_entropy(teacher(x[idx]), y[idx])
            teacher.zero_grad()
            loss.backward()
            opt.step()
        log(f"teacher epoch {epoch}/{epochs}: {time.perf_counter() - t0:.0f}s")
    return teacher.eval()


@torch.no_grad()
def teacher_logits(teacher: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The teacher's logits for features ``x`` (n, 784), in chunks of 4,096 images."""
    return torch.cat([teacher(x[i:i + 4096]) for i in range(0, len(x), 4096)])


@torch.no_grad()
def soft_targets(teacher: nn.Module | torch.Tensor, x: torch.Tensor, y: torch.Tensor, temperature: float = 2.0,
                 alpha: float = 0.5, classes: int = 10) -> torch.Tensor:
    """The student's targets, (n, classes): ``alpha`` on the true label, ``1 - alpha`` on the
    teacher's probabilities at ``temperature``. Each row sums to 1. ``teacher`` may also be its
    :func:`teacher_logits` for ``x``, computed once for several temperatures and weights (the
    CNN's forward pass is most of the cost: about 1 s for 6,000 images on one thread)."""
    if not temperature > 0:
        raise ConfigError(f"{_ref('distill_temperature')} must be positive, got {temperature}")
    if not 0 <= alpha <= 1:
        raise ConfigError(f"{_ref('distill_alpha')} must be between 0 and 1, got {alpha}")
    logits = teacher if isinstance(teacher, torch.Tensor) else teacher_logits(teacher, x)
    return alpha * F.one_hot(y, classes).to(logits.dtype) + (1 - alpha) * torch.softmax(logits / temperature, 1)


def distill_for_run(cfg, train, val=None, device="cpu", log=None) -> tuple[torch.Tensor, dict]:
    """A run's soft targets for ``train`` (an ImageSet), from a teacher trained as ``cfg`` says
    (``distill_epochs``, ``distill_temperature``, ``distill_alpha``, ``seed``), and what the
    run's metrics record of it: the settings, and the teacher's accuracy on ``val`` if given."""
    log = log or (lambda *a, **k: None)
    log(f"distillation: training the teacher CNN for {cfg.distill_epochs} epochs")
    with torch.no_grad():
        xt = train.features().to(device)
    teacher = train_teacher(xt, train.labels.to(device), cfg.distill_epochs, seed=cfg.seed, log=log)
    soft = soft_targets(teacher, xt, train.labels.to(device), cfg.distill_temperature, cfg.distill_alpha)
    info = {"teacher_epochs": cfg.distill_epochs, "temperature": cfg.distill_temperature, "alpha": cfg.distill_alpha}
    if val is not None:
        with torch.no_grad():
            right = teacher(val.features().to(device)).argmax(1) == val.labels.to(device)
        info["teacher_val_acc"] = float(right.float().mean())
        log(f"teacher val_acc: {info['teacher_val_acc']:.4f}")
    return soft, info
