"""Adam, AdamW and SGD for the two parameters of this model, on torch's fused kernels.

Why not ``torch.optim``: constructing a ``torch.optim`` optimizer imports ``torch._dynamo``
(about 1.5 s here, more than a whole training run), and its ``step()`` costs ~60 us of Python
per call at batch 128, as much as the model's arithmetic. These classes call the same fused
kernels (``torch._fused_adam_`` / ``torch._fused_adamw_``) directly, or a few ``_foreach``
ops for SGD, and follow ``torch.optim``'s update rules exactly; tests compare the weights with
``torch.optim.Adam``, ``AdamW`` and ``SGD`` after the same batches.
"""
from __future__ import annotations

import torch

from .config import OPTIMIZERS  # declared once, with the setting (config.py imports no torch)
from .errors import ConfigError


class Optimizer:
    """Minimal optimizer interface: ``step()`` (gradients already in ``p.grad``),
    ``state_dict()``/``load_state_dict()`` with plain tensors and numbers only."""

    name = "base"

    def __init__(self, params, lr: float, weight_decay: float = 0.0):
        self.params = list(params)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)

    def hyper(self) -> dict:
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def state_tensors(self) -> dict:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"name": self.name, "hyper": self.hyper(),
                "state": {k: [t.detach().clone().cpu() for t in v] for k, v in self.state_tensors().items()}}

    def load_state_dict(self, sd: dict) -> None:
        if not isinstance(sd, dict) or sd.get("name") != self.name:
            found = sd.get("name") if isinstance(sd, dict) else type(sd).__name__
            raise ConfigError(f"optimizer state is for {found!r}, not {self.name!r}")
        mine = self.state_tensors()
        for key, tensors in sd["state"].items():
            if key not in mine or len(tensors) != len(mine[key]):
                raise ConfigError(f"optimizer state {key!r} does not fit this model")
            for dst, src in zip(mine[key], tensors):
                if dst.shape != src.shape:
                    raise ConfigError(f"optimizer state {key!r} has shape {tuple(src.shape)}, expected {tuple(dst.shape)}")
                dst.copy_(src)


class Adam(Optimizer):
    """``torch.optim.Adam`` (``decoupled=False``) or ``AdamW`` (``decoupled=True``), fused;
    ``fused=False``: torch.optim's own single-tensor update, the one its default takes on the
    CPU, bit for bit (the distillation teacher's: its runs stay what they were)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False,
                 fused=True):
        super().__init__(params, lr, weight_decay)
        self.betas, self.eps, self.decoupled = tuple(betas), float(eps), bool(decoupled)
        self.name = "adamw" if decoupled else "adam"
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        kernel = getattr(torch, "_fused_adamw_" if decoupled else "_fused_adam_", None)
        self._kernel = kernel if fused and kernel is not None and all(p.dtype in (torch.float32, torch.float64) for p in self.params) else None

    def hyper(self):
        return {**super().hyper(), "betas": list(self.betas), "eps": self.eps}

    def state_tensors(self):
        return {"step": self.steps, "exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}

    @torch.no_grad()
    def step(self):
        grads = [p.grad for p in self.params]
        torch._foreach_add_(self.steps, 1)
        if self._kernel is not None:
            self._kernel(self.params, grads, self.exp_avg, self.exp_avg_sq, [], self.steps, lr=self.lr,
                         beta1=self.betas[0], beta2=self.betas[1], weight_decay=self.weight_decay,
                         eps=self.eps, amsgrad=False, maximize=False)
            return
        self._reference_step(grads)

    def _reference_step(self, grads):
        """torch.optim.Adam's single-tensor update (``fused=False``, or a build without the kernel)."""
        b1, b2 = self.betas
        for p, g, m, v, s in zip(self.params, grads, self.exp_avg, self.exp_avg_sq, self.steps):
            if self.weight_decay:
                if self.decoupled:
                    p.mul_(1 - self.lr * self.weight_decay)
                else:
                    g = g.add(p, alpha=self.weight_decay)
            t = float(s)
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / (1 - b2 ** t) ** 0.5).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / (1 - b1 ** t))


class SGD(Optimizer):
    """``torch.optim.SGD`` with momentum (dampening 0, no Nesterov)."""

    name = "sgd"

    def __init__(self, params, lr=0.01, momentum=0.9, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.momentum = float(momentum)
        self.buffers = [torch.zeros_like(p) for p in self.params]
        self.started = torch.zeros(())  # 0 until the first step: momentum buffers then start at the gradient

    def hyper(self):
        return {**super().hyper(), "momentum": self.momentum}

    def state_tensors(self):
        return {"momentum_buffer": self.buffers, "started": [self.started]}

    @torch.no_grad()
    def step(self):
        grads = [p.grad for p in self.params]
        if self.weight_decay:
            grads = torch._foreach_add(grads, self.params, alpha=self.weight_decay)
        if self.momentum:
            if self.started.item() == 0:
                torch._foreach_copy_(self.buffers, grads)
                self.started.fill_(1)
            else:
                torch._foreach_mul_(self.buffers, self.momentum)
                torch._foreach_add_(self.buffers, grads)
            grads = self.buffers
        torch._foreach_add_(self.params, grads, alpha=-self.lr)


def make_optimizer(params, name: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0,
                   momentum: float = 0.9) -> Optimizer:
    """One of :data:`OPTIMIZERS` over ``params``.

    Examples
    --------
    >>> from mnist_logreg import MnistModel
    >>> opt = make_optimizer(MnistModel().parameters(), "adam", lr=1e-3)
    >>> sorted(opt.state_dict()["state"])
    ['exp_avg', 'exp_avg_sq', 'step']
    """
    if name == "adam":
        return Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return Adam(params, lr=lr, weight_decay=weight_decay, decoupled=True)
    if name == "sgd":
        return SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}; choose from: {', '.join(OPTIMIZERS)}")


def current_lr(opt) -> float:
    """The learning rate ``opt`` steps with now (ours, or a ``torch.optim`` optimizer's first group)."""
    return opt.lr if isinstance(opt, Optimizer) else opt.param_groups[0]["lr"]


def set_lr(opt, lr: float) -> None:
    """Set ``opt``'s learning rate (every group of a ``torch.optim`` optimizer): the schedule's step."""
    if isinstance(opt, Optimizer):
        opt.lr = lr
    else:
        for group in opt.param_groups:
            group["lr"] = lr
