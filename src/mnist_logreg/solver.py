"""The exact optimum of L2-regularised multinomial logistic regression.

Minimises, over the whole training set,

    J(W, b) = mean_i CE(softmax(W x_i + b), y_i) + lam / 2 * ||W||^2      (b not penalised)

which is scikit-learn's ``LogisticRegression(C=1 / (lam * n))`` objective divided by
``C * n``. The method is Newton-CG: exact gradients, Hessian-vector products in closed form
(two matrix products over the data), conjugate gradients preconditioned by a Kronecker
approximation of the Hessian (class coupling x pixel Gram matrix), and a backtracking line search. It stops when the gradient norm is
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

import numpy as np
import torch

from .data import ImageSet
from .engines import num_threads
from .errors import ConfigError
from .errors import setting_ref as _ref
from .model import MnistModel


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

    def info(self) -> dict:
        """What a run's metrics record of the solve."""
        return {"objective": self.objective, "grad_norm": self.grad_norm, "iterations": self.iterations,
                "hessian_products": self.hessian_products, "converged": self.converged,
                "seconds": round(self.seconds, 3)}


class _Problem:
    """Objective, gradient and Hessian-vector products on augmented features [x, 1] (or x
    alone without an intercept), for ``num_classes`` classes; ``weights`` (per sample, None:
    equal) make the data term a weighted mean. ``lam`` may be 0 (no penalty: scikit-learn's
    ``C=inf``). Every step Newton takes has rows summing to zero over the classes (adding a
    vector to every class's row changes no probability), so from zero the coefficients keep
    that form: the unique, identifiable solution, and a well-posed problem at ``lam = 0``."""

    def __init__(self, x, y, lam, num_classes=10, *, weights=None, intercept=True):
        self.x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1) if intercept else x
        self.y = y
        self.n, self.d = len(y), self.x.shape[1]
        self.lam = lam
        self.onehot = torch.nn.functional.one_hot(y, num_classes).to(torch.float64)
        self.mask = _penalty_mask(self.d, intercept)
        # the Hessian's copy of the data: float32 from FLOAT32_ENTRIES entries (see hvp)
        self.xh = self.x.float() if self.x.numel() >= FLOAT32_ENTRIES else self.x
        # per-sample weights summing to 1 (None: 1/n each, kept as a division for exactness)
        self.w = None if weights is None else (weights / weights.sum()).to(torch.float64)[:, None]
        self.native = None  # a _NativeHvp, set by solve where the C kernel runs

    # the two products with the data that everything below is made of: logits x @ M.T (n, K)
    # and back-projections R.T @ x (K, d); _SparseProblem overrides them
    def _logits(self, theta):
        return self.x @ theta.T

    def _back(self, r):
        return r.T @ self.x

    def _loss(self, z, lse):
        """The (weighted) mean cross-entropy from the logits and their log-sum-exp."""
        if self.w is None:
            return (lse.sum() - (z * self.onehot).sum()) / self.n
        return ((lse - (z * self.onehot).sum(1)) * self.w[:, 0]).sum()

    def _penalty(self, theta):
        return 0.5 * self.lam * ((theta * self.mask) ** 2).sum()

    def value_grad(self, theta):
        z = self._logits(theta)
        lse = torch.logsumexp(z, 1)
        p = torch.exp(z - lse[:, None])
        f = self._loss(z, lse) + self._penalty(theta)
        if self.w is None:
            g = self._back(p - self.onehot) / self.n + self.lam * theta * self.mask
        else:
            g = self._back((p - self.onehot) * self.w) + self.lam * theta * self.mask
        return float(f), g, p

    def value(self, theta):
        z = self._logits(theta)
        return float(self._loss(z, torch.logsumexp(z, 1)) + self._penalty(theta))

    @property
    def hvp_dtype(self):
        """The precision of hvp's passes over the data (what its ``p`` should be in)."""
        return torch.float32 if self.native is not None else self.xh.dtype

    def hvp(self, p, v):
        """H v, with the passes over large data in float32: an inexact Hessian only slows
        conjugate gradients slightly, while the gradient, which decides convergence, is exact.
        With the C kernel (``native``), one pass over the images as they are stored."""
        if self.native is not None:
            return self.native(p, v) / self.n + self.lam * v * self.mask
        return self.torch_hvp(p, v)

    def torch_hvp(self, p, v):
        dt = self.xh.dtype
        p = p.to(dt)
        pa = p * self._hvp_logits(v.to(dt))      # p times the directional derivative of the logits (n, K)
        b = pa - p * pa.sum(1, keepdim=True)      # (diag(p) - p p^T) a, row by row
        if self.w is not None:
            return self._hvp_back(b * self.w.to(dt)) + self.lam * v * self.mask
        return self._hvp_back(b) / self.n + self.lam * v * self.mask

    # hvp's two passes over the data, at its precision (xh's dtype), back in float64
    def _hvp_logits(self, v):
        return (v @ self.xh.T).T

    def _hvp_back(self, b):
        return (b.T @ self.xh).double()

    def preconditioner(self, samples, seed):
        """A function p -> (r -> M^-1 r), M approximating the Hessian at probabilities ``p`` by
        a Kronecker product (as in K-FAC): A (x) S + lam I, with A = mean_i diag(p_i) - p_i p_i^T
        (K x K: the classes' coupling, including the direction no logit change sees) and S the
        Gram matrix of the features (from a subsample, weighted as the data term is: it only
        has to be close). With the eigendecompositions of both, every solve is a few small
        matrix products. Measured on MNIST (bench/sklearn_speed.py): 124 Hessian products to
        tol 1e-5 at C = 0.1, 257 at C = 1, against 187 and 394 with per-class scalings of S
        alone. With more than EIGH_FEATURES features (an eigendecomposition would cost more
        than the solve) S is its diagonal. The output is projected onto rows summing to zero
        over the classes: A's null direction (every class alike) is amplified by 1 / lam
        there, which moved coef_'s column sums to 1e-4 and, at lam = 0, has no bound at all."""
        g = torch.Generator().manual_seed(seed)
        evals, evecs = self._gram(torch.randperm(self.n, generator=g)[:samples])
        evals = evals.clamp_min(0)

        def at(p):
            a, U = torch.linalg.eigh(self._class_coupling(p))
            curv = a.clamp_min(0)[:, None] * evals[None, :]
            # lam = 0: a floor relative to the largest curvature keeps M positive definite
            floor = self.lam + 1e-10 if self.lam > 0 else max(1e-10, 1e-8 * float(curv.max()))
            inv = 1.0 / (curv + floor)  # (K, d)
            if evecs is None:
                solve = lambda r: U @ ((U.T @ r) * inv)  # noqa: E731
            else:
                solve = lambda r: U @ (((U.T @ r) @ evecs) * inv) @ evecs.T  # noqa: E731
            return lambda r: _zero_sum(solve(r))
        return at

    def _gram(self, rows):
        """(eigenvalues, eigenvectors) of the (weighted) Gram matrix of the features of
        ``rows``; (its diagonal, None) beyond EIGH_FEATURES features."""
        sub = self.x[rows]
        ws = self._row_weights(rows)
        if self.d > EIGH_FEATURES:
            return (sub * sub * ws[:, None]).sum(0) / ws.sum(), None
        return torch.linalg.eigh((sub * ws[:, None]).T @ sub / ws.sum())

    def _row_weights(self, rows):
        """The sample weights of ``rows`` (ones when unweighted, or when they sum to zero)."""
        ws = torch.ones(len(rows), dtype=torch.float64) if self.w is None else self.w[rows, 0]
        return ws if float(ws.sum()) > 0 else torch.ones_like(ws)

    def _class_coupling(self, p):
        """mean_i diag(p_i) - p_i p_i^T (weighted by the sample weights)."""
        if self.w is None:
            return torch.diag(p.mean(0)) - p.T @ p / self.n
        return torch.diag((p * self.w).sum(0)) - (p * self.w).T @ p


def _penalty_mask(d: int, intercept: bool):
    """1 for each penalised column of theta; 0 for the bias, which is not penalised."""
    mask = torch.ones(d, dtype=torch.float64)
    if intercept:
        mask[-1] = 0
    return mask


def _zero_sum(m):
    """``m`` with each column's mean over the classes removed (rows summing to zero)."""
    return m - m.mean(0, keepdim=True)


class _SparseProblem(_Problem):
    """_Problem over a scipy sparse matrix (CSR): the data products by scipy, in float64."""

    def __init__(self, x, y, lam, num_classes=10, *, weights=None, intercept=True):
        import scipy.sparse as sp

        x = sp.csr_matrix(x, dtype=np.float64)
        if intercept:
            x = sp.hstack([x, np.ones((x.shape[0], 1))], format="csr")
        self.xs, self.xt = x, x.T.tocsr()
        dummy = torch.empty(x.shape[0], 0, dtype=torch.float64)  # the dense parts' shapes only
        super().__init__(dummy, y, lam, num_classes, weights=weights, intercept=False)
        self.x = None
        self.xh = torch.empty(0, dtype=torch.float64)  # the products are scipy's, in float64
        self.d, self.mask = x.shape[1], _penalty_mask(x.shape[1], intercept)

    def _logits(self, theta):
        return torch.from_numpy(np.asarray(self.xs @ theta.T.numpy()))

    def _back(self, r):
        return torch.from_numpy(np.ascontiguousarray(np.asarray(self.xt @ r.numpy()).T))

    # hvp's passes are the same products, in float64 (xh is an empty float64 tensor)
    _hvp_logits, _hvp_back = _logits, _back

    def _gram(self, rows):
        sub, ws = self.xs[rows.numpy()], self._row_weights(rows).numpy()
        if self.d > EIGH_FEATURES:
            diag = np.asarray(sub.multiply(sub).T @ ws).ravel() / ws.sum()
            return torch.from_numpy(diag), None
        gram = (sub.multiply(ws[:, None]).T @ sub).toarray() / float(ws.sum())
        return torch.linalg.eigh(torch.from_numpy(gram))


EIGH_FEATURES = 2048
#: entries of the data from which Hessian products and Adam epochs run in float32 (below it,
#: in float64: a pass costs little there, and float32's 1e-7 made two fits of the same problem,
#: weights against repeated rows, differ by 1.6e-7 relative in their predictions)
FLOAT32_ENTRIES = 2**20
#: where a cold start begins instead, for problems of at least ADAM_START_SIZE entries with 10
#: classes (the C minibatch engine): 5 epochs of Adam (0.2 s on MNIST) land near the optimum
#: and save Newton's first iterations, about 1 s of 6 on MNIST at C = 0.1
ADAM_START = dict(epochs=5, lr=2e-3, lr_schedule="cosine")
ADAM_START_SIZE = 10_000_000


def minibatch_theta(data, theta, lam, seed, *, transform="none", threads=None, log=None, sample_weight=None,
                    **settings):
    """Adam epochs (our engines: the C kernel for 10 classes) from ``theta`` (K, d [+ bias]) on
    the (``sample_weight``-weighted) mean cross-entropy of ``data`` (an ImageSet or (x, labels)),
    with L2 ``lam`` as Adam's weight decay: (theta, last training loss). Trains in float32, or
    in float64 for float64 features of fewer than FLOAT32_ENTRIES entries."""
    from .optim import make_optimizer
    from .train import fit

    K, d = theta.shape[0], (data.images[0].numel() if isinstance(data, ImageSet) else data[0].shape[1])
    intercept = theta.shape[1] > d
    exact = not isinstance(data, ImageSet) and data[0].dtype == torch.float64 and data[0].numel() < FLOAT32_ENTRIES
    model = MnistModel(d, K, transform=transform).to(torch.float64 if exact else torch.float32)
    if not isinstance(data, ImageSet) and not exact:
        data = (data[0].float(), data[1])  # what the native kernel reads
    with torch.no_grad():
        model.linear.weight.copy_(theta[:, :d])
        model.linear.bias.copy_(theta[:, d] if intercept else torch.zeros(K))
    params = [model.linear.weight] + ([model.linear.bias] if intercept else [])
    opt = make_optimizer(params, "adam", settings.get("lr", 1e-3), lam)
    history = fit(model, data, None, optimizer=opt, seed=seed, threads=threads, progress=False, log=log,
                  sample_weight=sample_weight, **settings)
    with torch.no_grad():
        theta = torch.cat([model.linear.weight.double(), model.linear.bias.double()[:, None]], 1)
    return (theta if intercept else theta[:, :d]), history[-1]["train_loss"]


class _NativeHvp:
    """The data term of H v by the C kernel's ``mlr_hvp``: features ``x * scale`` with ``x``
    the stored images (uint8 pixels and 1/255, or float32 and 1), no float64 or ones-column
    copy. About 3x faster than torch's two float32 GEMMs here (bench/solver_speed.py)."""

    def __init__(self, lib, x, scale):
        self.lib, self.x, self.scale = lib, x.contiguous(), float(scale)
        n, d = self.x.shape
        block = lib.mlr_eval_block()  # the rows the kernel takes at a time: scratch for that many
        self.rows = torch.empty(2 * block, dtype=torch.int64)
        self.z, self.xs = torch.empty(block, 10), torch.empty(block, d)
        self.tw, self.tb = torch.empty(10, d), torch.empty(10)
        self.hv, self.hb = torch.empty(10, d, dtype=torch.float64), torch.empty(10, dtype=torch.float64)

    def __call__(self, p32, v):
        V, vb, P = v[:, :-1].float().contiguous(), v[:, -1].float().contiguous(), p32.contiguous()
        x, ptr = self.x, (lambda t: t.data_ptr())  # noqa: E731
        self.lib.mlr_hvp(ptr(x), int(x.dtype == torch.uint8), x.shape[1], x.shape[0], self.scale, ptr(V), ptr(vb),
                         ptr(P), ptr(self.rows), ptr(self.z), ptr(self.xs), ptr(self.tw), ptr(self.tb),
                         ptr(self.hv), ptr(self.hb))
        return torch.cat([self.hv, self.hb[:, None]], 1)


def _native_hvp(prob: _Problem, x64, images=None):
    """A _NativeHvp for ``prob`` where the C kernel runs, else None: it computes unweighted
    products for 10 classes with a bias, where it is faster than torch (engines.native_is_fast:
    an AVX-512 build); MNIST_LOGREG_SOLVER_NATIVE=1 asks for it anyway, =0 never. It
    reads ``images`` (uint8 pixels, scale 1/255) when given; else ``x64`` as bytes when its
    values are k/255 to float32 precision (images scaled to [0, 1]: a quarter of the memory
    traffic of float32; the Hessian only steers conjugate gradients, the float64 gradient
    decides convergence); else as float32."""
    from .engines import native_is_fast, native_lib

    if prob.w is not None or prob.onehot.shape[1] != 10 or prob.mask[-1] != 0:
        return None
    choice = os.environ.get("MNIST_LOGREG_SOLVER_NATIVE", "auto")
    lib = native_lib() if choice != "0" else None
    if lib is None or not (choice == "1" or native_is_fast()):
        return None
    if images is not None:
        return _NativeHvp(lib, images.reshape(len(images), -1), 1.0 / 255)
    x255 = x64 * 255
    b = torch.round(x255)
    lo, hi = torch.aminmax(b)
    if lo >= 0 and hi <= 255 and float((x255 - b).abs_().max()) <= 255e-6:
        return _NativeHvp(lib, b.to(torch.uint8), 1.0 / 255)
    return _NativeHvp(lib, x64.float(), 1.0)


def cold_start(prob: _Problem, data, theta, seed, *, transform="none", threads=None):
    """Where Newton starts from zero on a large problem the C kernel serves (at least
    ADAM_START_SIZE entries, 10 classes): a few minibatch epochs on ``data`` first (see
    ADAM_START); else ``theta`` as it is."""
    if prob.native is None or bool(theta.any()) or prob.n * (prob.d - 1) < ADAM_START_SIZE:
        return theta
    return minibatch_theta(data, theta, prob.lam, seed, transform=transform, threads=threads, **ADAM_START)[0]


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
    return next(solve_path(train, [lam], tol=tol, max_iter=max_iter, threads=threads, precond_samples=precond_samples,
                           seed=seed, init=init, transform=transform, log=log))


def solve_path(train, lams, *, tol: float = 1e-5, max_iter: int = 100, threads: int | None = None,
               precond_samples: int = 10_000, seed: int = 0, init: MnistModel | None = None,
               transform: str = "none", log=print):
    """:func:`solve` for each of ``lams`` in turn, each warm-started from the optimum before it
    (the first from ``init``, or cold): yields a :class:`SolveResult` per lam. The features, the
    C kernel's copy of the images and the preconditioner's Gram matrix are prepared once for
    the whole path (on MNIST 0.6 s a lam); the optima are those of separate solves, bit for bit."""
    for lam in lams:
        if not lam > 0 or not math.isfinite(lam):
            raise ConfigError(f"{_ref('lam')} must be a positive number, got {lam}")
    if not tol > 0:
        raise ConfigError(f"{_ref('tol')} must be positive, got {tol}")
    log = log or (lambda *a, **k: None)
    prob = precond = theta = None
    for lam in lams:
        t0 = time.perf_counter()
        with num_threads(threads), torch.no_grad():  # held only while computing, never across a yield
            if prob is None:
                prob = _prepare(train, transform, lam)
                precond = prob.preconditioner(precond_samples, seed)
                theta = None if init is None else _theta_of(init)
            prob.lam = lam
            theta = (cold_start(prob, train, torch.zeros(10, prob.d, dtype=torch.float64), seed, transform=transform)
                     if theta is None else theta.clone())
            theta, f, gnorm, iters, hvps = newton_cg(prob, theta, tol=tol, max_iter=max_iter, precond=precond, log=log)
            model = MnistModel(transform=transform)
            model.linear.weight.copy_(theta[:, :-1].float())
            model.linear.bias.copy_(theta[:, -1].float())
            model.double_theta = theta  # exact float64 optimum, for reference comparisons
        yield SolveResult(model, lam, f, gnorm, iters, hvps, gnorm <= tol, time.perf_counter() - t0, tol)


def _prepare(train, transform, lam) -> _Problem:
    """The problem on ``train``'s features (float64, transformed), with the C kernel's products."""
    x, y = _features(train, torch.float64, transform)
    prob = _Problem(x, y, lam)
    raw = isinstance(train, ImageSet) and transform in (None, "none")
    prob.native = _native_hvp(prob, x, train.images if raw else None)
    return prob


def _theta_of(model) -> torch.Tensor:
    """A model's coefficients as one (K, d + 1) float64 tensor: its exact optimum when it keeps one."""
    theta = getattr(model, "double_theta", None)
    if theta is None:
        theta = torch.cat([model.linear.weight.double(), model.linear.bias.double()[:, None]], 1)
    return theta


def newton_cg(prob: _Problem, theta, *, tol, max_iter, precond, log):
    """Newton-CG from ``theta`` until the gradient norm is at most ``tol`` or ``max_iter``
    iterations: returns (theta, objective, gradient norm, iterations, Hessian products)."""
    t0 = time.perf_counter()
    # rows summing to zero over the classes: the same probabilities at a smaller penalty (a
    # warm or Adam start need not have that form), and every step keeps it
    theta = _zero_sum(theta)
    f, grad, p = prob.value_grad(theta)
    gnorm = float(grad.norm())
    iters = hvps = 0
    while gnorm > tol and iters < max_iter:
        iters += 1
        # forcing term: superlinear convergence, but no effort below what tol asks for
        forcing = max(min(0.5, math.sqrt(gnorm)) * gnorm, 0.2 * tol)
        s, steps = _truncated_cg(prob, p, grad, precond(p), forcing)
        hvps += steps
        step, theta, f, grad, p = _armijo(prob, theta, f, grad, s)
        gnorm = float(grad.norm())
        log(f"iteration {iters}: objective {f:.10f}, gradient norm {gnorm:.3e}, step {step:g}, "
            f"{hvps} Hessian products, {time.perf_counter() - t0:.2f}s")
    return theta, f, gnorm, iters, hvps


def _truncated_cg(prob, p, grad, precond, forcing, max_steps=250):
    """Preconditioned conjugate gradients on H s = -grad, stopped when the residual is at
    most ``forcing`` (or on negative curvature): (s, Hessian products used)."""
    ph = p.to(prob.hvp_dtype)
    s = torch.zeros_like(grad)
    r = -grad.clone()
    zr = precond(r)
    dirn = zr.clone()
    rz = float((r * zr).sum())
    steps = 0
    for _ in range(max_steps):
        hd = prob.hvp(ph, dirn)
        steps += 1
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
    return s, steps


def _armijo(prob, theta, f, grad, s):
    """Backtracking line search: the first of 1, 1/2, 1/4, ... with sufficient decrease.
    The full step, nearly always taken, is tried with value_grad: accepted, its gradient is
    the next iteration's, which saves a pass over the data. Returns (step, theta, f, grad, p)."""
    slope = float((grad * s).sum())
    f_new, g_new, p_new = prob.value_grad(theta + s)
    if f_new <= f + 1e-4 * slope:
        return 1.0, theta + s, f_new, g_new, p_new
    step = 0.5
    while prob.value(theta + step * s) > f + 1e-4 * step * slope and step >= 1e-10:
        step *= 0.5
    theta = theta + step * s
    return (step, theta, *prob.value_grad(theta))
