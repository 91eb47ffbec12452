"""Training and evaluation.

The training step of a linear softmax classifier is two small matrix products and an
optimizer update. ``fit`` writes exactly that: the gradient of the mean cross-entropy in
closed form (softmax minus one-hot) instead of autograd, and the optimizer's fused kernel.
It is the same maths as the notebook's autograd + ``torch.optim.Adam`` loop (a test checks
the weights agree to float tolerance), about 50x faster per epoch than the notebook.
"""
from __future__ import annotations

import math
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .data import ImageSet
from .errors import ConfigError, MnistLogregError
from .model import MnistModel

OPTIMIZERS = ("adam", "adamw", "sgd")
DEFAULT_THREADS = 1  # measured: bench/train_speed.py; 2 threads lose on a busy 2-core machine
EVAL_CHUNK = 16384


class TrainingDiverged(MnistLogregError):
    """The loss became NaN or infinite."""


class TrainingInterrupted(MnistLogregError):
    """Ctrl-C: training stopped between batches; ``fit`` returns what it has."""


@dataclass
class History:
    """Per-epoch records: ``epoch`` (0 = before training), ``train_loss``, ``val_loss``,
    ``val_acc``, ``seconds`` (training time of that epoch)."""

    rows: list = field(default_factory=list)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def column(self, key):
        return [r.get(key) for r in self.rows]


@contextmanager
def num_threads(n: int | None):
    """Temporarily set torch's intra-op thread count."""
    if not n:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _as_xy(data, device, dtype=torch.float32):
    if isinstance(data, ImageSet):
        return data.features(dtype).to(device), data.labels.to(device)
    x, y = data
    return x.reshape(len(x), -1).to(device, dtype), y.to(device)


@torch.no_grad()
def evaluate(model: MnistModel, data, *, threads: int | None = None) -> dict:
    """Mean cross-entropy and accuracy of ``model`` on ``data``.

    ``data`` is an :class:`ImageSet` or a pair ``(x, y)`` with ``x`` in [0, 1]. The loss is
    the exact mean over all images, computed in a few large batches.

    Examples
    --------
    >>> import torch
    >>> from mnist_logreg import MnistModel
    >>> m = MnistModel(); _ = torch.nn.init.zeros_(m.linear.weight); _ = torch.nn.init.zeros_(m.linear.bias)
    >>> r = evaluate(m, (torch.rand(4, 784), torch.tensor([0, 1, 2, 3])))
    >>> round(r["val_loss"], 4), r["val_acc"]   # uniform prediction: loss ln(10)
    (2.3026, 0.25)
    """
    w = model.linear.weight
    x, y = _as_xy(data, w.device, w.dtype)
    with num_threads(threads):
        loss_sum, correct = 0.0, 0
        for i in range(0, len(y), EVAL_CHUNK):
            logits = model(x[i:i + EVAL_CHUNK])
            loss_sum += F.cross_entropy(logits, y[i:i + EVAL_CHUNK], reduction="sum").item()
            correct += int((logits.argmax(1) == y[i:i + EVAL_CHUNK]).sum())
    n = max(len(y), 1)
    return {"val_loss": loss_sum / n, "val_acc": correct / n}


def make_optimizer(params, name: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0,
                   momentum: float = 0.9):
    """A torch optimizer, using its fused CPU/CUDA kernel where torch has one."""
    params = list(params)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}; choose from: {', '.join(OPTIMIZERS)}")


def _fast_step(optimizer):
    """A step function equal to ``optimizer.step()`` without its per-call Python overhead.

    For fused Adam/AdamW it calls the same fused kernel on the optimizer's own state, so
    ``optimizer.state_dict()`` stays valid for checkpoints. Anything else: ``step()``.
    """
    group = optimizer.param_groups[0]
    kernel = {torch.optim.Adam: getattr(torch, "_fused_adam_", None),
              torch.optim.AdamW: getattr(torch, "_fused_adamw_", None)}.get(type(optimizer))
    if (kernel is None or len(optimizer.param_groups) != 1 or not group.get("fused")
            or group.get("amsgrad") or group.get("maximize") or group.get("differentiable")):
        return optimizer.step
    params = group["params"]
    for p in params:  # the state Adam's first step would create
        st = optimizer.state[p]
        if not st:
            st["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
            st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    grads = [p.grad for p in params]
    exp_avgs = [optimizer.state[p]["exp_avg"] for p in params]
    exp_avg_sqs = [optimizer.state[p]["exp_avg_sq"] for p in params]
    steps = [optimizer.state[p]["step"] for p in params]
    beta1, beta2 = group["betas"]
    kw = dict(lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
              eps=group["eps"], amsgrad=False, maximize=False)

    def step():
        torch._foreach_add_(steps, 1)
        kernel(params, grads, exp_avgs, exp_avg_sqs, [], steps, **kw)

    return step


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The shuffling RNG of one epoch: a function of (seed, epoch) only, so a resumed run
    shuffles exactly like an uninterrupted one."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def fit(model: MnistModel, train, val=None, *, epochs: int = 20, lr: float = 1e-3,
        batch_size: int = 128, optimizer="adam", weight_decay: float = 0.0,
        momentum: float = 0.9, seed: int = 0, threads: int | None = DEFAULT_THREADS,
        start_epoch: int = 0, history: History | None = None, on_epoch=None,
        progress: bool | None = None, log=print) -> History:
    """Train ``model`` with mini-batch gradient descent on the mean cross-entropy.

    Parameters
    ----------
    model : MnistModel, trained in place
    train, val : ImageSet or (x, y); ``val`` may be None
    epochs : number of epochs to run now
    lr, batch_size, weight_decay, momentum : optimizer settings
    optimizer : "adam", "adamw", "sgd" or a ``torch.optim`` optimizer over
        ``model.parameters()`` (pass one with its loaded state to resume)
    seed : shuffling seed; epoch ``e`` is shuffled by ``epoch_generator(seed, e)``
    threads : torch threads while training (None leaves torch's setting)
    start_epoch : epochs already done (for resuming); numbering continues from it
    history : a History to append to (resuming); when empty, epoch 0 (before training)
        is evaluated first
    on_epoch : called as ``on_epoch(epoch, row, optimizer)`` after each epoch (checkpoints)
    progress : show a progress bar (default: when stderr is a terminal)
    log : where the notebook's ``Epoch [i], val_loss: ..., val_acc: ...`` lines go

    Returns
    -------
    History

    Examples
    --------
    >>> import torch
    >>> from mnist_logreg import MnistModel
    >>> _ = torch.manual_seed(0)
    >>> x = torch.rand(256, 784); y = (x[:, :392].sum(1) > x[:, 392:].sum(1)).long()
    >>> h = fit(MnistModel(), (x, y), (x, y), epochs=30, lr=1e-2, batch_size=64, log=None)
    >>> h[-1]["val_acc"] > 0.9
    True
    """
    _check_positive(epochs=(epochs, 0), lr=(lr, 0), batch_size=(batch_size, 1))
    if weight_decay < 0:
        raise ConfigError(f"--weight-decay must be >= 0, got {weight_decay}")
    log = log or (lambda *a, **k: None)
    W, b = model.linear.weight, model.linear.bias
    device = W.device
    opt = optimizer if isinstance(optimizer, torch.optim.Optimizer) else make_optimizer(
        model.parameters(), optimizer, lr, weight_decay, momentum)
    history = history if history is not None else History()

    with num_threads(threads), torch.no_grad():
        # -- data: converted to float once, moved to the device once -----------------------
        x, y = _as_xy(train, device, W.dtype)
        xv_yv = _as_xy(val, device, W.dtype) if val is not None else None
        n = len(y)
        if n == 0:
            raise ConfigError("the training set is empty")
        onehot = torch.eye(W.shape[0], device=device, dtype=W.dtype)
        W.grad = torch.zeros_like(W)
        b.grad = torch.zeros_like(b)
        step = _fast_step(opt)

        def validate(epoch, train_loss, seconds):
            row = {"epoch": epoch, "train_loss": train_loss}
            if xv_yv is not None:
                row.update(evaluate(model, xv_yv))
            row["seconds"] = seconds
            history.rows.append(row)
            if xv_yv is not None:
                log(f"Epoch [{epoch}], val_loss: {row['val_loss']:.4f}, val_acc: {row['val_acc']:.4f}")
            return row

        if not history.rows:  # epoch 0: the model before any training
            validate(0, evaluate(model, (x, y))["val_loss"], 0.0)

        show = sys.stderr.isatty() if progress is None else progress
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        for epoch in range(start_epoch + 1, start_epoch + epochs + 1):
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=epoch_generator(seed, epoch)).to(device)
            targets = onehot[y[perm]]  # one-hot rows in this epoch's order
            loss_sum.zero_()
            bar = _progress_bar(n, epoch, start_epoch + epochs) if show else None
            try:
                for i in range(0, n, batch_size):
                    # -- forward: logits of one shuffled batch ------------------------------
                    idx = perm[i:i + batch_size]
                    xb = x.index_select(0, idx)
                    bs = xb.shape[0]
                    z = torch.addmm(b, xb, W.t())
                    # -- loss bookkeeping: log-sum-exp minus the true class's logit ----------
                    m = z.amax(1, keepdim=True)
                    zy = (z * targets[i:i + bs]).sum()
                    z.sub_(m).exp_()
                    s = z.sum(1, keepdim=True)
                    loss_sum += s.log().sum() + m.sum() - zy
                    # -- backward in closed form: d(mean CE)/dz = (softmax - onehot) / bs -----
                    z.div_(s.mul_(bs))
                    z.sub_(targets[i:i + bs], alpha=1.0 / bs)
                    torch.mm(z.t(), xb, out=W.grad)
                    torch.sum(z, 0, out=b.grad)
                    # -- update --------------------------------------------------------------
                    step()
                    if bar is not None:
                        bar.update(bs)
            except KeyboardInterrupt:
                raise TrainingInterrupted(f"interrupted during epoch {epoch}") from None
            finally:
                if bar is not None:
                    bar.close()
            train_loss = loss_sum.item() / n
            seconds = time.perf_counter() - t0
            if not math.isfinite(train_loss) or not torch.isfinite(W).all():
                raise TrainingDiverged(
                    f"training diverged in epoch {epoch}: the loss became {train_loss} "
                    f"(lr={opt.param_groups[0]['lr']:g}); try a smaller learning rate, e.g. "
                    f"--lr {opt.param_groups[0]['lr'] / 10:g}")
            row = validate(epoch, train_loss, seconds)
            if on_epoch is not None:
                on_epoch(epoch, row, opt)
        W.grad = None
        b.grad = None
    return history


def _progress_bar(total, epoch, last):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"epoch {epoch}/{last}", unit="img", unit_scale=True,
                leave=False, mininterval=0.2, file=sys.stderr)


def _check_positive(**values):
    for name, (v, low) in values.items():
        if v is None or v < low or (low == 0 and v <= 0):
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} must be {'positive' if low == 0 else f'at least {low}'}, got {v}")


@torch.no_grad()
def predict_image(img: torch.Tensor, model: MnistModel) -> int:
    """The predicted label of one image tensor (1x28x28 or 28x28, values in [0, 1]).

    Examples
    --------
    >>> from mnist_logreg import MnistModel
    >>> isinstance(predict_image(torch.zeros(1, 28, 28), MnistModel()), int)
    True
    """
    return int(model(img.unsqueeze(0)).argmax(1)[0])


@torch.no_grad()
def predict(model: MnistModel, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities for a batch of images (uint8 0..255 or float in [0, 1])."""
    x = images.reshape(len(images), -1)
    x = x.float().div(255) if x.dtype == torch.uint8 else x.float()
    return torch.softmax(model(x.to(model.linear.weight.device)), dim=1)
