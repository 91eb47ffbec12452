"""The engines that run fit()'s epochs: the same maths three ways (tests/test_train.py and
test_golden.py compare them with autograd and with each other).

- ``python``: the plain loop, every phase spelled out; the reference, and the engine for any
  optimizer.
- ``torchscript``: the loop's maths compiled (``_adam_epoch_chunk``), Adam and AdamW.
- ``native``: the C kernel of ``_kernel.c`` (Adam/AdamW, float32, CPU, hard labels).

``make_engine`` builds the run function of the one ``pick_engine`` chose; ``check_engine``
refuses, before any data is read, an engine that cannot run here.
"""
from __future__ import annotations

import itertools
import math
import sys
from contextlib import contextmanager
from typing import List

import torch

from ..config import ADAM_ONLY, HARD_LABELS_ONLY
from ..errors import ConfigError
from ..errors import setting_ref as _ref
from ..optim import Adam


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


def _adam_epoch_chunk(x: torch.Tensor, perm: torch.Tensor, y: torch.Tensor, targets: torch.Tensor,
                      start: int, stop: int,
                      W: torch.Tensor, b: torch.Tensor, gW: torch.Tensor, gb: torch.Tensor,
                      xbuf: torch.Tensor, ubuf: torch.Tensor, true_logp: torch.Tensor,
                      exp_avg: List[torch.Tensor], exp_avg_sq: List[torch.Tensor], steps: List[torch.Tensor],
                      lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
                      decoupled: bool, batch_size: int, scale: float, loss_cap: float, loss_q: float,
                      sample_weight: torch.Tensor):
    """Images ``perm[start:stop]`` of one epoch, batch by batch: the same maths as the Python
    loop in ``fit`` (which documents each phase), compiled by TorchScript so that the ~18
    small ops of a step do not each pay Python's dispatch cost (measured ~1.5-3x per epoch)."""
    b_col = b.view(-1, 1)
    i = start
    while i < stop:
        bs = min(batch_size, stop - i)
        idx = perm.narrow(0, i, bs)
        xb = xbuf.narrow(0, 0, bs)
        xb.copy_(torch.index_select(x, 0, idx, out=ubuf.narrow(0, 0, bs)))
        z = torch.log_softmax(torch.addmm(b_col, W, xb.t(), alpha=scale), 0)
        torch.gather(z, 0, y.narrow(0, i, bs).view(1, -1), out=true_logp.narrow(0, i, bs).view(1, -1))
        t = targets.narrow(0, i, bs).t()
        robust = loss_cap < math.inf or loss_q != 0.0
        weight = _robust_weight(z, t, true_logp.narrow(0, i, bs), loss_cap, loss_q) if robust else z
        z.exp_().sub_(t)
        if robust:
            z.mul_(weight)
        if sample_weight.numel() > 0:
            z.mul_(sample_weight.narrow(0, i, bs))
        torch.addmm(gW, z, xb, beta=0.0, alpha=scale / bs, out=gW)
        torch.mean(z, 1, out=gb)
        torch._foreach_add_(steps, 1)
        if decoupled:
            torch._fused_adamw_([W, b], [gW, gb], exp_avg, exp_avg_sq, [], steps, lr=lr, beta1=beta1,
                                beta2=beta2, weight_decay=weight_decay, eps=eps, amsgrad=False, maximize=False)
        else:
            torch._fused_adam_([W, b], [gW, gb], exp_avg, exp_avg_sq, [], steps, lr=lr, beta1=beta1,
                               beta2=beta2, weight_decay=weight_decay, eps=eps, amsgrad=False, maximize=False)
        i += bs


def _robust_weight(logp: torch.Tensor, t: torch.Tensor, true_logp: torch.Tensor, loss_cap: float,
                   loss_q: float) -> torch.Tensor:
    """Per-image factor on the cross-entropy gradient (softmax - target) that makes it the
    gradient of a robust loss: ``p(true)^q`` for the generalised cross-entropy (1 - p^q) / q,
    times 0 where the loss exceeds the cap (min(loss, cap) is flat there). ``logp``, ``t``:
    (classes, batch) log-probabilities and targets; ``true_logp``: log p(true class), (batch,)."""
    w = torch.ones_like(true_logp)
    if loss_q != 0.0:
        w = torch.exp(true_logp * loss_q)
    if loss_cap < math.inf:
        w = w * (t * logp).sum(0).neg().le(loss_cap).to(w.dtype)
    return w


_COMPILED = {}


def _engine_obstacles(adam: bool, cpu_float32: bool, soft: bool, images_ok: bool = True,
                      build: bool = True) -> dict:
    """Why each compiled engine cannot run (engine -> reason); the engines missing can.
    ``build=False`` skips building the C kernel to see whether a compiler exists."""
    why_not = {}
    if not adam:
        return {"torchscript": ADAM_ONLY, "native": ADAM_ONLY}
    if _compiled_chunk() is None:
        why_not["torchscript"] = "this torch has no TorchScript"
    if soft:
        why_not["native"] = HARD_LABELS_ONLY
    elif not cpu_float32:
        why_not["native"] = "it runs float32 models with 10 classes on the CPU only"
    elif not images_ok:
        why_not["native"] = "it reads uint8 or float32 images only"
    elif build and native_lib() is None:
        why_not["native"] = ("no C compiler was found to build it (or MNIST_LOGREG_NATIVE=0); "
                             "see mnist_logreg/engines/_native.py")
    return why_not


def check_engine(engine: str, optimizer: str, device: str = "cpu", soft: bool = False) -> None:
    """Raise ConfigError up front (before data is read or a run folder is made) when the
    engine asked for cannot run an ``optimizer`` on ``device`` here (with ``soft`` targets:
    distillation), e.g. for want of a C compiler; "auto" always can."""
    if engine in ("auto", "python"):
        return
    why_not = _engine_obstacles(optimizer in ("adam", "adamw"), str(device) == "cpu", soft,
                                build=engine == "native")
    if engine in why_not:
        raise ConfigError(f"{_ref('engine')} {engine} cannot run here: {why_not[engine]}")


def pick_engine(engine: str, opt, W, x, soft: bool = False) -> str:
    """The engine that runs: the one asked for, or for "auto" the fastest that applies.
    Asking for one that cannot run here is an error, not a silent fallback."""
    if engine == "python":
        return engine
    adam = (isinstance(opt, Adam) and opt._kernel is not None and len(opt.params) == 2
            and opt.params[0] is W and opt.params[1].shape == (W.shape[0],))
    why_not = _engine_obstacles(
        adam, W.device.type == "cpu" and W.dtype == torch.float32 and W.shape[0] == 10, soft,
        images_ok=x.dtype in (torch.uint8, torch.float32) and x.is_contiguous())
    if engine == "auto":
        order = ("native", "torchscript") if native_is_fast() else ("torchscript", "native")
        return next((e for e in order if e not in why_not), "python")
    if engine in why_not:
        raise ConfigError(f"{_ref('engine')} {engine} cannot run here: {why_not[engine]}")
    return engine


def native_is_fast() -> bool:
    """Whether the C kernel beats torch here: it is blocked for AVX-512 (measured on MNIST: an
    epoch 0.0345 s against TorchScript's 0.077 s there; on an AVX2-only AMD EPYC it spills, 0.84 s
    against 0.51 s, and Newton's Hessian product 0.56 s against torch's 0.16 s)."""
    lib = native_lib()
    return lib is not None and bool(lib.mlr_avx512())


def native_lib():
    from . import _native
    # the one-time build is announced on stderr: stdout carries results (and doctests' output)
    return _native.load(lambda msg: print(msg, file=sys.stderr, flush=True))


def native_evaluator(x, y, scale, W, b):
    """A function returning evaluate()'s dict for (x * scale, y) under the current (W, b),
    computed by the C kernel (no float copy of a uint8 set, no op dispatch)."""
    import ctypes

    lib = native_lib()
    x, y = x.contiguous(), y.to(torch.int64).contiguous()
    block = lib.mlr_eval_block()  # the rows it takes at a time: scratch for that many
    rows = torch.empty(2 * block, dtype=torch.int64)
    z = torch.empty(block, W.shape[0])
    xs = torch.empty(block, W.shape[1])
    loss, correct = ctypes.c_double(), ctypes.c_int64()
    n = len(y)

    def run():
        if n == 0:
            return {"loss": 0.0, "accuracy": 0.0}
        lib.mlr_evaluate(x.data_ptr(), int(x.dtype == torch.uint8), x.shape[1], n, y.data_ptr(), scale,
                         W.data_ptr(), b.data_ptr(), rows.data_ptr(), z.data_ptr(), xs.data_ptr(),
                         ctypes.byref(loss), ctypes.byref(correct))
        return {"loss": loss.value / n, "accuracy": correct.value / n}
    return run


# -- the engines ----------------------------------------------------------------------------
# Each engine is a function run(x, perm, y_epoch, targets, start, stop, scale, true_logp, w_epoch)
# that trains on the images perm[start:stop] of one epoch, whole batches of ``batch_size``, with
# the features ``x * scale``; it writes log p(true class) of each image into ``true_logp``.
# ``w_epoch`` (None: unweighted) are the sample weights in epoch order, normalised to mean 1.
# ``targets`` are one row per image in epoch order (one-hot or soft); the C kernel reads the
# labels ``y_epoch`` instead. All three do the same maths (tests/test_train.py, test_golden.py).

def _python_engine(opt, W, b, xbuf, ubuf, batch_size, cap, q):
    """The plain loop, every phase spelled out: the reference for the other two, and the
    engine for any optimizer."""
    b_col, gW, gb = b.view(-1, 1), W.grad, b.grad
    robust = cap < math.inf or q != 0.0

    def run(x, perm, y_epoch, targets, start, stop, scale, true_logp, w_epoch):
        # one split per chunk instead of slicing per batch: indexing is slow next to the maths
        batches = zip(*(t[start:stop].split(batch_size) for t in (perm, y_epoch, targets, true_logp)),
                      w_epoch[start:stop].split(batch_size) if w_epoch is not None else itertools.repeat(None))
        for idx, yb, t, logp, wb in batches:
            # -- forward: gather one batch (uint8: the cheapest memory traffic) -----------
            bs = idx.shape[0]
            xb = xbuf[:bs]
            xb.copy_(torch.index_select(x, 0, idx, out=ubuf[:bs]))
            # logits transposed, (10, bs) = W @ xb.T: this GEMM shape measured ~1.5x
            # faster than xb @ W.T for 10 outputs; log-softmax down each column
            z = torch.log_softmax(torch.addmm(b_col, W, xb.t(), alpha=scale), 0)
            # -- loss bookkeeping: CE = -log p(true class) -----------------------------------
            torch.gather(z, 0, yb.view(1, -1), out=logp.view(1, -1))
            # -- robust losses (loss_cap, loss_q): a weight per image on its gradient ------
            weight = _robust_weight(z, t.t(), logp, cap, q) if robust else None
            # -- backward in closed form: d(mean CE)/dz = (softmax - onehot) / bs -------
            z.exp_().sub_(t.t())
            if weight is not None:
                z.mul_(weight)
            if wb is not None:  # -- sample weights: one more factor per image ----------------
                z.mul_(wb)
            torch.addmm(gW, z, xb, beta=0, alpha=scale / bs, out=gW)
            torch.mean(z, 1, out=gb)
            # -- update ------------------------------------------------------------------
            opt.step()
    return run


def _torchscript_engine(opt, W, b, xbuf, ubuf, batch_size, cap, q):
    """The Python loop's maths compiled by TorchScript (``_adam_epoch_chunk``), Adam/AdamW."""
    chunk = _compiled_chunk()
    none = torch.empty(0, device=W.device, dtype=W.dtype)  # TorchScript's "no sample weights"

    def run(x, perm, y_epoch, targets, start, stop, scale, true_logp, w_epoch):
        chunk(x, perm, y_epoch, targets, start, stop, W, b, W.grad, b.grad, xbuf, ubuf, true_logp,
              opt.exp_avg, opt.exp_avg_sq, opt.steps, opt.lr, opt.betas[0], opt.betas[1],
              opt.eps, opt.weight_decay, opt.decoupled, batch_size, scale, cap, q,
              w_epoch if w_epoch is not None else none)
    return run


def _native_engine(opt, W, b, xbuf, ubuf, batch_size, cap, q):
    """The C kernel of ``_kernel.c`` (Adam/AdamW, float32, CPU, hard labels)."""
    lib = native_lib()
    ptr = lambda t: t.data_ptr()  # noqa: E731
    for t in (W, b, *opt.exp_avg, *opt.exp_avg_sq, *opt.steps):
        assert t.is_contiguous() and t.dtype == torch.float32
    gW, gb = W.grad, b.grad
    z = torch.empty(batch_size, W.shape[0])
    rows = torch.empty(2 * batch_size, dtype=torch.int64)  # scratch: row pointers, this batch and the next
    xs = torch.empty(batch_size, W.shape[1])  # scratch: the batch's images as floats
    beta1, beta2 = opt.betas

    def run(x, perm, y_epoch, targets, start, stop, scale, true_logp, w_epoch):
        x, perm, y_epoch = x.contiguous(), perm.contiguous(), y_epoch.to(torch.int64).contiguous()
        sw = ptr(w_epoch.contiguous()) if w_epoch is not None else None
        lib.mlr_adam_chunk(ptr(x), int(x.dtype == torch.uint8), x.shape[1], ptr(perm), ptr(y_epoch),
                           start, stop, batch_size, scale, ptr(W), ptr(b), ptr(gW), ptr(gb), ptr(z),
                           ptr(rows), ptr(xs), ptr(true_logp), ptr(opt.exp_avg[0]), ptr(opt.exp_avg_sq[0]),
                           ptr(opt.exp_avg[1]), ptr(opt.exp_avg_sq[1]), ptr(opt.steps[0]), ptr(opt.steps[1]),
                           opt.lr, beta1, beta2, opt.eps, opt.weight_decay, int(opt.decoupled), cap, q, sw)
    return run


_ENGINES = {"native": _native_engine, "torchscript": _torchscript_engine, "python": _python_engine}


def _compiled_chunk():
    """The TorchScript version of ``_adam_epoch_chunk``, or None where TorchScript is gone
    (it is deprecated; the plain Python loop then runs, with the same results)."""
    if "chunk" not in _COMPILED:
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _COMPILED["chunk"] = torch.jit.script(_adam_epoch_chunk)
        except Exception:  # no TorchScript in this build
            _COMPILED["chunk"] = None
    return _COMPILED["chunk"]


def make_engine(engine, opt, W, b, x, batch_size, cfg, augmenting):
    """The engine's run function, with its batch buffers (reused by every batch: fresh 100 kB
    allocations cost page faults each time)."""
    xbuf = torch.empty(batch_size, x.shape[1], device=W.device, dtype=W.dtype)
    ubuf = torch.empty(batch_size, x.shape[1], device=W.device, dtype=W.dtype if augmenting else x.dtype)
    cap = math.inf if cfg.loss_cap is None else cfg.loss_cap
    return _ENGINES[engine](opt, W, b, xbuf, ubuf, batch_size, cap, cfg.loss_q)
