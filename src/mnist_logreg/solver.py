"""The exact optimum of L2-regularised multinomial logistic regression.

Minimises, over the whole training set,

    J(W, b) = mean_i CE(softmax(W x_i + b), y_i) + lam / 2 * ||W||^2      (b not penalised)

which is scikit-learn's ``LogisticRegression(C=1 / (lam * n))`` objective divided by
``C * n``. The method is Newton-CG: exact gradients, Hessian-vector products in closed form
(two matrix products over the data), conjugate gradients preconditioned by the pixel Gram
matrix scaled per class, and a backtracking line search. It stops when the gradient norm is
at most ``tol`` and says so; it never calls a run converged when it is not.

Example
-------
>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.rand(300, 784, generator=g); y = torch.randint(0, 10, (300,), generator=g)
>>> r = solve((x, y), lam=1e-2, tol=1e-8, log=None)
>>> r.converged and r.grad_norm <= 1e-8
True
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import torch

from .data import ImageSet
from .errors import ConfigError, setting_ref as _ref
from .model import MnistModel
from .train import num_threads


@dataclass
class SolveResult:
    model: MnistModel
    lam: float
    objective: float
    grad_norm: float
    iterations: int          # Newton iterations
    hessian_products: int    # conjugate-gradient steps, each one pass over the data
    converged: bool
    seconds: float
    tol: float

    def summary(self) -> str:
        state = "converged" if self.converged else "NOT converged"
        return (f"{state}: {self.iterations} Newton iterations, {self.hessian_products} Hessian-vector "
                f"products, objective {self.objective:.10f}, gradient norm {self.grad_norm:.2e} "
                f"(tol {self.tol:g}), {self.seconds:.2f}s")


class _Problem:
    """Objective, gradient and Hessian-vector products on augmented features [x, 1]."""

    def __init__(self, x, y, lam, num_classes=10):
        self.x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
        self.y = y
        self.n = len(y)
        self.lam = lam
        self.onehot = torch.nn.functional.one_hot(y, num_classes).to(x.dtype)
        self.mask = torch.ones(self.x.shape[1], dtype=x.dtype)
        self.mask[-1] = 0  # the bias is not penalised
        self.x32 = self.x.float()
        self.native = None  # a _NativeHvp, set by solve where the C kernel runs

    def value_grad(self, theta):
        z = self.x @ theta.T
        lse = torch.logsumexp(z, 1)
        f = (lse.sum() - (z * self.onehot).sum()) / self.n + 0.5 * self.lam * ((theta * self.mask) ** 2).sum()
        p = torch.exp(z - lse[:, None])
        g = (p - self.onehot).T @ self.x / self.n + self.lam * theta * self.mask
        return float(f), g, p

    def value(self, theta):
        z = self.x @ theta.T
        return float((torch.logsumexp(z, 1).sum() - (z * self.onehot).sum()) / self.n
                     + 0.5 * self.lam * ((theta * self.mask) ** 2).sum())

    def hvp(self, p32, v):
        """H v, with the passes over the data in float32: an inexact Hessian only slows
        conjugate gradients slightly, while the gradient, which decides convergence, is exact.
        With the C kernel (``native``), one pass over the images as they are stored."""
        if self.native is not None:
            return self.native(p32, v) / self.n + self.lam * v * self.mask
        return self.torch_hvp(p32, v)

    def torch_hvp(self, p32, v):
        v32 = v.float()
        a = (v32 @ self.x32.T).T                  # directional derivative of the logits (n, 10)
        pa = p32 * a
        b = pa - p32 * pa.sum(1, keepdim=True)    # (diag(p) - p p^T) a, row by row
        return (b.T @ self.x32).double() / self.n + self.lam * v * self.mask


class _NativeHvp:
    """The data term of H v by the C kernel's ``mlr_hvp``: features ``x * scale`` with ``x``
    the stored images (uint8 pixels and 1/255, or float32 and 1), no float64 or ones-column
    copy. About 3x faster than torch's two float32 GEMMs here (bench/solver_speed.py)."""

    def __init__(self, lib, x, scale):
        self.lib, self.x, self.scale = lib, x.contiguous(), float(scale)
        n, d = self.x.shape
        self.rows = torch.empty(2 * 128, dtype=torch.int64)  # EVAL_BLOCK of _kernel.c
        self.z, self.xs = torch.empty(128, 10), torch.empty(128, d)
        self.tw, self.tb = torch.empty(10, d), torch.empty(10)
        self.hv, self.hb = torch.empty(10, d, dtype=torch.float64), torch.empty(10, dtype=torch.float64)

    def __call__(self, p32, v):
        V, vb, P = v[:, :-1].float().contiguous(), v[:, -1].float().contiguous(), p32.contiguous()
        x, ptr = self.x, (lambda t: t.data_ptr())  # noqa: E731
        self.lib.mlr_hvp(ptr(x), int(x.dtype == torch.uint8), x.shape[1], x.shape[0], self.scale, ptr(V), ptr(vb),
                         ptr(P), ptr(self.rows), ptr(self.z), ptr(self.xs), ptr(self.tw), ptr(self.tb),
                         ptr(self.hv), ptr(self.hb))
        return torch.cat([self.hv, self.hb[:, None]], 1)


def _native_hvp(train, x64, transform):
    """A _NativeHvp for this training set where the C kernel runs (else None): raw MNIST
    images are read as uint8, transformed or given features as float32."""
    from .train import _native_lib

    if os.environ.get("MNIST_LOGREG_SOLVER_NATIVE", "1") == "0":
        return None
    lib = _native_lib()
    if lib is None or not hasattr(lib, "mlr_hvp"):
        return None
    if isinstance(train, ImageSet) and transform in (None, "none"):
        return _NativeHvp(lib, train.images.reshape(len(train), -1), 1.0 / 255)
    return _NativeHvp(lib, x64.float(), 1.0)


def _features(data, dtype, transform="none"):
    if isinstance(data, ImageSet) and transform in (None, "none"):
        return data.features(dtype), data.labels
    if isinstance(data, ImageSet):  # transformed in float32, as the model does at prediction time
        x, y = data.features(), data.labels
    else:
        x, y = data
        x = x.reshape(len(x), -1).float()
    if transform not in (None, "none"):
        from .transforms import apply
        x = apply(transform, x)
    return x.reshape(len(x), -1).to(dtype), y


def solve(train, lam: float = 1e-4, *, tol: float = 1e-5, max_iter: int = 100,
          threads: int | None = None, precond_samples: int = 10_000, seed: int = 0,
          init: MnistModel | None = None, transform: str = "none", log=print) -> SolveResult:
    """Minimise mean cross-entropy + lam/2 ||W||^2 on ``train`` (ImageSet or (x, y)) with
    Newton-CG in float64, until the gradient norm is at most ``tol``.

    ``transform`` ("deskew") is applied to the images first and kept in the returned model.
    ``init`` warm-starts from a model (e.g. the optimum for a neighbouring ``lam``).
    Returns a :class:`SolveResult` whose ``converged`` is False when ``max_iter`` Newton
    iterations ended first.
    """
    if not lam > 0 or not math.isfinite(lam):
        raise ConfigError(f"{_ref('lam')} must be a positive number, got {lam}")
    if not tol > 0:
        raise ConfigError(f"{_ref('tol')} must be positive, got {tol}")
    log = log or (lambda *a, **k: None)
    t0 = time.perf_counter()
    with num_threads(threads), torch.no_grad():
        x, y = _features(train, torch.float64, transform)
        prob = _Problem(x, y, lam)
        prob.native = _native_hvp(train, x, transform)
        d = prob.x.shape[1]
        # Preconditioner: per class, c_k * S + lam * I with S the Gram matrix of the features
        # (from a subsample: it only has to be close) and c_k the class's mean p(1-p).
        # One eigendecomposition of S makes every later solve two small matrix products.
        g = torch.Generator().manual_seed(seed)
        sub = prob.x[torch.randperm(prob.n, generator=g)[:precond_samples]]
        evals, evecs = torch.linalg.eigh(sub.T @ sub / len(sub))
        evals = evals.clamp_min(0)

        theta = torch.zeros(10, d, dtype=torch.float64)
        if init is not None:
            theta = getattr(init, "double_theta", None)
            if theta is None:
                theta = torch.cat([init.linear.weight.double(), init.linear.bias.double()[:, None]], 1)
            theta = theta.clone()
        f, grad, p = prob.value_grad(theta)
        gnorm = float(grad.norm())
        iters = hvps = 0
        while gnorm > tol and iters < max_iter:
            iters += 1
            c = (p * (1 - p)).mean(0).clamp_min(1e-12)           # (10,)
            inv = 1.0 / (c[:, None] * evals[None, :] + lam + 1e-10)  # (10, d)

            def precond(r):
                return ((r @ evecs) * inv) @ evecs.T

            # -- truncated conjugate gradients on H s = -grad ---------------------------------
            # forcing term: superlinear convergence, but no effort below what tol asks for
            forcing = max(min(0.5, math.sqrt(gnorm)) * gnorm, 0.2 * tol)
            p32 = p.float()
            s = torch.zeros_like(theta)
            r = -grad.clone()
            zr = precond(r)
            dirn = zr.clone()
            rz = float((r * zr).sum())
            for _ in range(250):
                hd = prob.hvp(p32, dirn)
                hvps += 1
                curv = float((dirn * hd).sum())
                if curv <= 0:
                    break
                alpha = rz / curv
                s.add_(dirn, alpha=alpha)
                r.sub_(hd, alpha=alpha)
                if float(r.norm()) <= forcing:
                    break
                zr = precond(r)
                rz_new = float((r * zr).sum())
                dirn.mul_(rz_new / rz).add_(zr)
                rz = rz_new
            if not s.abs().sum() > 0:
                s = -grad
            # -- backtracking line search (Armijo) ----------------------------------------------
            slope = float((grad * s).sum())
            step = 1.0
            while True:
                f_new = prob.value(theta + step * s)
                if f_new <= f + 1e-4 * step * slope or step < 1e-10:
                    break
                step *= 0.5
            theta = theta + step * s
            f, grad, p = prob.value_grad(theta)
            gnorm = float(grad.norm())
            log(f"iteration {iters}: objective {f:.10f}, gradient norm {gnorm:.3e}, step {step:g}, "
                f"{hvps} Hessian products, {time.perf_counter() - t0:.2f}s")
        model = MnistModel(transform=transform)
        model.linear.weight.copy_(theta[:, :-1].float())
        model.linear.bias.copy_(theta[:, -1].float())
        model.double_theta = theta  # exact float64 optimum, for reference comparisons
    return SolveResult(model, lam, f, gnorm, iters, hvps, gnorm <= tol, time.perf_counter() - t0, tol)
