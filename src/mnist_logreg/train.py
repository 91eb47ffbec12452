"""Training and evaluation.

The training step of a linear softmax classifier is two small matrix products and an
optimizer update. ``fit`` writes exactly that: the gradient of the mean cross-entropy in
closed form (softmax minus one-hot) instead of autograd, and the optimizer's fused kernel.
It is the same maths as the notebook's autograd + ``torch.optim.Adam`` loop (a test checks
the weights agree to float tolerance), about 100x faster per epoch than the notebook with the
native engine (``engines/_kernel.c``; see ``engine`` below). The engines that run an epoch's batches
live in engines/; this module is the loop around them, ``fit`` and its ``History``
(``evaluate`` is in metrics.py, ``predict`` in model.py).

How the settings shape the loop:

- ``seed``: epoch ``e`` is shuffled by ``epoch_generator(seed, e)``.
- ``lr_schedule``: "constant" (the notebook's), or "cosine": epoch ``e`` of ``E = start_epoch
  + epochs`` (``fit``'s arguments) runs at ``lr * (1 + cos(pi * (e - 1) / E)) / 2``, from
  ``lr`` down to nearly 0 by the last epoch of the ``fit`` call (``lr`` is the optimizer's own when one is passed).
- ``loss_cap``: cap each image's cross-entropy at this many nats, i.e. minimise the mean of
  ``min(CE_i, loss_cap)``: an image the model gives ``p(target) < exp(-loss_cap)`` stops
  pulling on the weights. A linear model cannot fit a few percent of MNIST, and without a
  cap those hopeless images dominate the gradient; capped, the weights serve the images
  it can classify (bench/accuracy.md: MNIST validation 92.39% -> 92.99% at a cap of 5).
  None trains on the plain cross-entropy. ``train_loss`` stays uncapped.
- ``loss_q``: generalised cross-entropy (Zhang & Sabuncu 2018): minimise the mean of
  ``(1 - p(true)^q) / q``, whose gradient is the cross-entropy's scaled by ``p(true)^q``.
  0 is the cross-entropy; hard labels only (not with ``soft_targets``). Composes with the cap.
- ``average_from``: from this epoch on, the weights at the end of each epoch are averaged
  (stochastic weight averaging) and the model ends as that average, still one linear
  layer; the average is validated, logged and kept in ``history.average``. It spans the
  epochs of one ``fit`` call only.
- ``engine``: how Adam/AdamW epochs run, all the same maths (tests compare them): "native"
  (the C kernel of ``engines/_kernel.c``, built on first use; CPU, float32), "torchscript" (a
  compiled chunk of torch ops; any device), "python" (the plain loop of ``_python_engine``,
  which also runs every other optimizer), or "auto": the fastest that applies here (native
  where the kernel was built with AVX-512, which its blocks are sized for; else TorchScript).
"""
from __future__ import annotations

import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from types import SimpleNamespace

import torch

from .augment import Augment
from .checkpoint import MAX_WEIGHT
from .config import TrainConfig, check_average_from
from .data import ImageSet, feature_matrix
from .engines import make_engine, native_evaluator, num_threads, pick_engine
from .errors import ConfigError, TrainingDiverged, TrainingInterrupted
from .errors import setting_ref as _ref
from .metrics import evaluate_matrix
from .model import MnistModel
from .optim import current_lr, make_optimizer, set_lr

DEFAULT_THREADS = 1  # measured: bench/train_speed.py; 2 threads lose on a busy 2-core machine
CHUNK_IMAGES = 8192  # images per kernel call (C or TorchScript): the progress bar and Ctrl-C act between calls


@dataclass
class History:
    """Per-epoch records: ``epoch`` (0 = before training), ``train_loss``, ``val_loss``,
    ``val_acc``, ``seconds`` (training time of that epoch)."""

    rows: list = field(default_factory=list)
    engine: str = ""  # the engine that ran the last fit (see fit's ``engine``)
    average: dict | None = None  # weight averaging's span and validation (fit's ``average_from``)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def column(self, key):
        return [r.get(key) for r in self.rows]


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The shuffling RNG of one epoch: a function of (seed, epoch) only, so a resumed run
    shuffles exactly like an uninterrupted one."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class _WeightAverage:
    """Stochastic weight averaging: the running mean of the weights at the end of each epoch
    from ``first`` on (a running mean: no large sums)."""

    def __init__(self, W, b, first):
        self.first, self.count = first, 0
        self.W, self.b = torch.zeros_like(W), torch.zeros_like(b)

    def add(self, epoch, W, b):
        if self.first is not None and epoch >= self.first:
            self.count += 1
            self.W += (W - self.W) / self.count
            self.b += (b - self.b) / self.count

    def apply(self, W, b, first, last, evaluate_val, log) -> dict:
        """Make (W, b) the average; return its span and validation for ``history.average``."""
        W.copy_(self.W)
        b.copy_(self.b)
        info = {"from": first, "to": last, "epochs": self.count, **_val_row(evaluate_val)}
        if evaluate_val is not None:
            log(f"Averaged weights of epochs {first}-{last}, "
                f"val_loss: {info['val_loss']:.4f}, val_acc: {info['val_acc']:.4f}")
        return info


def fit(model: MnistModel, train, val=None, config: TrainConfig | None = None, *, optimizer=None,
        start_epoch: int = 0, history: History | None = None, on_epoch=None, soft_targets=None,
        sample_weight=None, augment=None, progress: bool | None = None, log=print, **settings) -> History:
    """Train ``model`` with mini-batch gradient descent on the mean cross-entropy.

    Parameters
    ----------
    model : MnistModel, trained in place
    train, val : ImageSet or (x, y); ``val`` may be None
    config : a :class:`~mnist_logreg.TrainConfig` (default: the notebook's settings); its
        training settings are used: ``epochs`` (the number to run now), ``lr``, ``batch_size``,
        ``optimizer``, ``weight_decay``, ``momentum``, ``seed``, ``threads``, ``engine``,
        ``lr_schedule``, ``loss_cap``, ``loss_q``, ``average_from``, ``augment_*``
    **settings : any of those settings by name, over ``config``: ``fit(m, train, val, epochs=5,
        lr=1e-2)``; validated as the config is (an error names the setting)
    optimizer : a setting name ("adam", "adamw", "sgd"), or an optimizer object from
        :func:`make_optimizer` (pass one with its loaded state to resume); any object whose
        ``step()`` applies ``p.grad`` works, ``torch.optim`` optimizers included
    start_epoch : epochs already done (for resuming); numbering continues from it
    history : a History to append to (resuming); when empty, epoch 0 (before training)
        is evaluated first
    on_epoch : called as ``on_epoch(epoch, row, optimizer)`` after each epoch (checkpoints)
    soft_targets : (n, 10) rows summing to 1, one per training image (distillation, see
        :mod:`mnist_logreg.distill`): the loss becomes the cross-entropy against these instead of
        the one-hot labels (``train_loss`` stays the cross-entropy against the true labels);
        not with the native engine, which reads hard labels
    sample_weight : (n,) non-negative weights, one per training image (None: equal): the loss
        becomes the weighted mean cross-entropy; each image's gradient is scaled by its weight
        over the mean weight (every engine), and ``train_loss`` is the weighted mean
    augment : an :class:`~mnist_logreg.augment.Augment` (default: from the ``augment_*``
        settings): each epoch trains on a freshly distorted copy of the training images
        (seeded by ``(seed, epoch)``), before the model's transform; validation and test
        images are never augmented
    progress : show a progress bar (default: when stderr is a terminal)
    log : where the notebook's ``Epoch [i], val_loss: ..., val_acc: ...`` lines go

    The settings that shape the loop (``seed``, ``lr_schedule``, ``loss_cap``, ``loss_q``,
    ``average_from``, ``engine``) are described in this module's docstring.

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
    if isinstance(optimizer, str):
        settings["optimizer"], optimizer = optimizer, None
    cfg = (config or TrainConfig()).replace(**settings) if settings else (config or TrainConfig())
    if soft_targets is not None and cfg.loss_q:
        raise ConfigError(f"{_ref('loss_q')} works with hard labels only, not with soft targets")
    last_epoch = start_epoch + cfg.epochs
    check_average_from(cfg.average_from, last_epoch)
    log = log or (lambda *a, **k: None)
    W, b = model.linear.weight, model.linear.bias
    opt = optimizer if optimizer is not None else make_optimizer(
        model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum)
    history = history if history is not None else History()
    threads = cfg.threads or (DEFAULT_THREADS if W.device.type == "cpu" else None)

    with num_threads(threads), torch.no_grad():
        # -- data: kept as uint8 (4x less memory traffic than float), moved to the device once,
        #    checked; the engine that will read it
        d = _inputs(model, train, val, cfg, opt, soft_targets, sample_weight, augment)
        history.engine = d.engine
        end_epoch = _EpochEnd(history, d.evaluate_val, on_epoch, log, start_epoch, opt, W, b)
        x, y, scale = d.x, d.y, d.scale
        if not history.rows:  # epoch 0: the model before any training
            before = (native_evaluator(x, y, scale, W, b)() if d.engine == "native"
                      else evaluate_matrix(model, x, y, scale))  # no float copy of the training set
            end_epoch(0, before["loss"], 0.0)

        # -- the epochs ---------------------------------------------------------------------
        W.grad, b.grad = torch.zeros_like(W), torch.zeros_like(b)
        n, bs = len(y), cfg.batch_size
        run = make_engine(d.engine, opt, W, b, x, bs, cfg, augmenting=d.base is not None)
        true_logp = torch.empty(n, device=W.device, dtype=W.dtype)  # one buffer: no host sync inside the epoch
        onehot = torch.eye(W.shape[0], device=W.device, dtype=W.dtype)
        step_images = bs * max(1, CHUNK_IMAGES // bs)  # whole batches per call: the Python loop's batches
        average = _WeightAverage(W, b, cfg.average_from)
        base_lr = current_lr(opt)
        show = sys.stderr.isatty() if progress is None else progress
        for epoch in range(start_epoch + 1, last_epoch + 1):
            t0 = time.perf_counter()
            if cfg.lr_schedule == "cosine":
                set_lr(opt, base_lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / last_epoch)))
            if d.base is not None:  # a freshly distorted copy of the training images, then the transform
                x, scale = _augmented(d.base, d.augment, d.transform, cfg.seed, epoch), 1.0
            order = _shuffled(y, d.weights, d.soft, onehot if d.engine != "native" else None, cfg.seed, epoch)
            with _progress_bar(n, epoch, last_epoch, show) as bar:
                train_loss = _one_pass(run, x, scale, order, true_logp, step_images, bar, epoch)
            end_epoch(epoch, train_loss, time.perf_counter() - t0)
            average.add(epoch, W, b)
        if average.count:  # the model ends as the average, validated and logged
            history.average = average.apply(W, b, max(cfg.average_from, start_epoch + 1), last_epoch,
                                            d.evaluate_val, log)
        W.grad = b.grad = None
        set_lr(opt, base_lr)  # a later call (a resumed run) starts from the same base rate
    return history


@dataclass
class _Inputs:
    """What :func:`fit` reads: the training matrix (``x`` uint8 or float, times ``scale``), its
    labels, the engine chosen for it, the validation function, soft targets, sample weights, the
    augmentation and the images it distorts (``base``, or None), and the model's transform."""

    x: torch.Tensor
    y: torch.Tensor
    scale: float
    engine: str
    evaluate_val: object
    soft: torch.Tensor | None
    weights: torch.Tensor | None
    augment: Augment
    base: torch.Tensor | None
    transform: str


def _inputs(model, train, val, cfg, opt, soft_targets, sample_weight, augment) -> _Inputs:
    """fit's inputs on the model's device, checked (gathering a batch of uint8 rows and
    converting it measured fastest: bench/)."""
    W = model.linear.weight
    transform = getattr(model, "transform", "none")
    x, y, scale = feature_matrix(train, W.device, transform)
    valid = feature_matrix(val, W.device, transform) if val is not None else None
    _check_data(x, y, valid, W)
    engine = pick_engine(cfg.engine, opt, W, x, soft=soft_targets is not None)
    evaluate_val = _validator(valid, engine, model) if valid is not None else None
    soft = _check_soft_targets(soft_targets, len(y), W)
    weights = _mean_one_weights(sample_weight, len(y), W)
    augment = augment if augment is not None else Augment(
        shift=cfg.augment_shift, rotate=cfg.augment_rotate, scale=cfg.augment_scale, elastic=cfg.augment_elastic)
    base = _augment_base(train, W.device, len(y)) if augment.active else None
    return _Inputs(x, y, scale, engine, evaluate_val, soft, weights, augment, base, transform)


class _EpochEnd:
    """The end of an epoch: the divergence check, the history row (with the validation
    figures), the caller's hook (a checkpoint: a printed epoch is a saved epoch), the log line."""

    def __init__(self, history, evaluate_val, on_epoch, log, start_epoch, opt, W, b):
        self.history, self.evaluate_val, self.on_epoch, self.log = history, evaluate_val, on_epoch, log
        self.start_epoch, self.opt, self.W, self.b = start_epoch, opt, W, b

    def __call__(self, epoch: int, train_loss: float, seconds: float) -> None:
        if epoch > self.start_epoch:
            _check_diverged(epoch, train_loss, self.W, self.b, self.opt)
        row = {"epoch": epoch, "train_loss": train_loss, **_val_row(self.evaluate_val), "seconds": seconds}
        self.history.rows.append(row)
        if epoch > self.start_epoch and self.on_epoch is not None:
            self.on_epoch(epoch, row, self.opt)
        if self.evaluate_val is not None:
            self.log(f"Epoch [{epoch}], val_loss: {row['val_loss']:.4f}, val_acc: {row['val_acc']:.4f}")
        else:  # no validation split (val_size 0): what there is
            self.log(f"Epoch [{epoch}], train_loss: {train_loss:.4f}")


def _shuffled(y, weights, soft, onehot, seed: int, epoch: int):
    """Epoch ``epoch``'s order of the training images, ``epoch_generator(seed, epoch)``'s
    permutation, with their labels, targets (soft, one-hot, or None for the native engine, which
    reads the labels) and weights in that order."""
    perm = torch.randperm(len(y), generator=epoch_generator(seed, epoch)).to(y.device)
    y_epoch = y[perm]
    targets = soft[perm] if soft is not None else (onehot[y_epoch] if onehot is not None else None)
    return perm, y_epoch, targets, weights[perm] if weights is not None else None


def _one_pass(run, x, scale, order, true_logp, step_images: int, bar, epoch: int) -> float:
    """One epoch's batches through the engine ``run``, ``step_images`` images a call (the
    progress bar and Ctrl-C act between calls); the epoch's mean (weighted) training loss."""
    perm, y_epoch, targets, w_epoch = order
    n = len(perm)
    try:
        for start in range(0, n, step_images):
            stop = min(n, start + step_images)
            run(x, perm, y_epoch, targets, start, stop, scale, true_logp, w_epoch)
            bar.update(stop - start)
    except KeyboardInterrupt:
        raise TrainingInterrupted(f"interrupted during epoch {epoch}") from None
    logp = true_logp.double() if w_epoch is None else true_logp.double() * w_epoch.double()
    return -logp.sum().item() / n


def _check_diverged(epoch, train_loss, W, b, opt) -> None:
    """TrainingDiverged when the epoch's loss is not finite or the weights left what a
    checkpoint may hold."""
    if (not math.isfinite(train_loss) or not torch.isfinite(W).all()
            or float(W.abs().max()) > MAX_WEIGHT or float(b.abs().max()) > MAX_WEIGHT):
        what = (f"the loss became {train_loss}" if not math.isfinite(train_loss) else
                f"the weights grew beyond {MAX_WEIGHT:g}, which no checkpoint may hold")
        raise TrainingDiverged(f"training diverged in epoch {epoch}: {what} (lr={current_lr(opt):g}); try a smaller "
                               f"learning rate, e.g. {_ref('lr')} {current_lr(opt) / 10:g}")


def _val_row(evaluate_val) -> dict:
    """A history row's validation columns (the notebook's names), or none without validation."""
    if evaluate_val is None:
        return {}
    r = evaluate_val()
    return {"val_loss": r["loss"], "val_acc": r["accuracy"]}


def _validator(matrix, engine, model):
    """A function returning evaluate()'s dict for ``matrix = (x, y, scale)`` under the model's
    current weights: the C kernel reads the images as they are; torch converts them to float
    once, here, not every epoch."""
    x, y, scale = matrix
    W, b = model.linear.weight, model.linear.bias
    if engine == "native" and x.dtype in (torch.uint8, torch.float32):
        return native_evaluator(x, y, scale, W, b)
    xf = x.to(W.dtype) * scale
    return lambda: evaluate_matrix(model, xf, y)


def _check_data(x, y, valid, W) -> None:
    """One-line errors for training (and validation) sets that do not fit the model, before
    any kernel reads them."""
    n = len(y)
    if n == 0:
        raise ConfigError("the training set is empty")
    if x.shape[0] != n:
        raise ConfigError(f"images and labels differ in number: {x.shape[0]} images, {n} labels")
    if valid is not None and valid[0].shape[0] != len(valid[1]):
        raise ConfigError(f"validation images and labels differ in number: {valid[0].shape[0]} and {len(valid[1])}")
    for what, (m, labels) in (("training", (x, y)), ("validation", valid[:2] if valid is not None else (x, y))):
        if m.dim() != 2 or m.shape[1] != W.shape[1]:
            raise ConfigError(f"{what} images have {m.shape[1] if m.dim() == 2 else 'no'} features per "
                              f"image, the model expects {W.shape[1]} (28x28)")
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= W.shape[0]):
            raise ConfigError(f"{what} labels must lie in 0..{W.shape[0] - 1}, "
                              f"found {int(labels.min())}..{int(labels.max())}")


def _check_soft_targets(soft_targets, n, W):
    if soft_targets is None:
        return None
    soft = torch.as_tensor(soft_targets).to(device=W.device, dtype=W.dtype)
    if soft.shape != (n, W.shape[0]):
        raise ConfigError(f"soft_targets must have shape ({n}, {W.shape[0]}), one row per training "
                          f"image, got {tuple(soft.shape)}")
    return soft


def _mean_one_weights(sample_weight, n, W):
    """The sample weights as W's dtype, scaled to mean 1 (so the batch gradient's scale, and
    with it Adam's learning rate, is the unweighted one's), or None."""
    if sample_weight is None:
        return None
    w = torch.as_tensor(sample_weight, dtype=torch.float64).reshape(-1)
    if w.shape != (n,) or not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or not float(w.sum()) > 0:
        raise ConfigError(f"sample_weight must be {n} finite non-negative numbers, one per training image, "
                          f"not all zero")
    return (w * (n / w.sum())).to(device=W.device, dtype=W.dtype)


def _augment_base(train, device, n):
    """The undistorted training images, as floats, from which each augmented epoch is drawn."""
    return (train.features() if isinstance(train, ImageSet) else train[0].reshape(n, -1).float()).to(device)


def _augmented(base, augment, transform, seed, epoch):
    from .augment import augment_images
    from .transforms import apply as apply_transform
    return apply_transform(transform, augment_images(base, augment, epoch_generator(seed + 7_919, epoch)))


def _progress_bar(total, epoch, last, show: bool):
    """A tqdm bar for one epoch on stderr, or a context that shows nothing."""
    if not show:
        return nullcontext(SimpleNamespace(update=lambda k: None))
    from tqdm import tqdm

    return tqdm(total=total, desc=f"epoch {epoch}/{last}", unit="img", unit_scale=True,
                leave=False, mininterval=0.2, file=sys.stderr)
