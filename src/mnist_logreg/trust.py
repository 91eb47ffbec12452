"""How far to trust an answer: calibrated probabilities and a digit-likeness score, fitted when
a model is trained and saved in its checkpoint.

Two questions a person asks of a prediction, answered separately:

**Is it sure?** A linear model's softmax is not an honest probability: the ``digits`` preset
says 100.0% of its own mistakes, the notebook's model is under-confident between 70% and 95%.
:class:`Calibrator` fixes both after training, on images the model did not train on: a
temperature ``T`` (fitted by the held-out cross-entropy), then Platt scaling of the top class's
log-odds (``a``, ``b``; top-label calibration). The top class stays the top class; the others
keep their proportions. Measured (``bench/honesty.py``): test ECE 1.56% -> 0.8% (notebook),
2.25% -> 0.4% (digits), 6.3% -> 0.9% (fashion); a temperature alone could not fix the notebook's.

**Is it a digit at all?** A classifier answers one of its classes for anything, a letter or a
smiley included, and its own probabilities do not tell (the largest softmax probability ranks
MNIST digits above Fashion-MNIST images with AUROC 0.42). :class:`Likeness` is a density model
of the training images: each image is deskewed and blurred (so that stroke slant and stroke
texture, which differ between pens, scanners and the drawing pad, count for less than shape),
projected on the top principal components of the training images, and scored by the log
density of the closest class under one Gaussian per class there, plus an isotropic term for
what lies outside the components. The score is reported as a *likeness*: the fraction of
held-out training images that score lower (0.5: a typical digit; 0.003: stranger than 99.7%
of real ones). Chosen by measurement against the largest softmax probability, the energy
score and plain principal-component residuals (``bench/honesty.py``).

Both are fitted by :func:`fit_trust` from a model, its training images and held-out images
(the validation split; without one, ``train_run`` holds some out, see ``calibration_holdout``)
and travel in the checkpoint as plain tensors and numbers (:meth:`Trust.state`).
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

COMPONENTS = 80        # principal components of the likeness model (Fashion-MNIST AUROC: 50 0.988, 64 0.991, 80 0.995)
INK = 0.3              # a pixel above this is ink, for the extent features
BLUR_SIGMA = 1.0       # the Gaussian blur (pixels) ahead of the projection: pens and pad alike
LEVELS = 1001          # the likeness table: held-out scores at every 0.1%
UNUSUAL = 0.05         # under this likeness, calibration lowers the confidence (Calibrator.c)
FIT_IMAGES = 20_000    # the likeness model is fitted on at most this many training images (a seeded
                       # sample): AUROC against letters + shapes 0.960 vs 0.963 with all 50,000, 1.9 s vs 4.9 s
FORMAT = 1


def blur_kernel(sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """The 7 taps of the separable Gaussian blur (float64, summing to 1)."""
    k = torch.arange(-3, 4, dtype=torch.float64)
    g = torch.exp(-k * k / (2 * sigma * sigma))
    return g / g.sum()


def likeness_features(x: torch.Tensor, dtype=torch.float64) -> torch.Tensor:
    """What the likeness model reads: each 28x28 image in [0, 1] deskewed (``transforms.deskew``)
    and blurred by :func:`blur_kernel` (zeros beyond the border); (n, 784) out, float64 (the
    ONNX export computes it in float32)."""
    from .transforms import deskew

    img = deskew(x.reshape(-1, 28, 28).float()).to(dtype)
    g = blur_matrix().to(dtype)
    return (g @ img @ g.T).reshape(-1, 784)  # the separable blur as two 28x28 products


def extent_features(x: torch.Tensor) -> torch.Tensor:
    """Three numbers per 28x28 image in [0, 1]: the rows and the columns its ink (pixels over
    INK) spans, and its total ink. A horizontal line, a wave or an arrow is centred and sized
    like a digit by the preprocessing, and its blurred pixels sit near the middle of the
    digits' components, but no digit is 3 rows tall (MNIST: 99.9% span 12 rows or more)."""
    img = x.reshape(-1, 28, 28)
    if len(img) > 2048 and not torch.jit.is_tracing():  # bounded temporaries
        return torch.cat([extent_features(img[i:i + 2048]) for i in range(0, len(img), 2048)])
    ink = img > INK  # no float64 copy of the images: k/255 never lies between 0.3 and its float32
    idx = torch.arange(28, dtype=torch.float64)

    def span(mask):  # (n, 28) -> number of positions from the first to the last True
        lo = torch.where(mask, idx, torch.full_like(idx, 28.0)).min(1).values
        hi = torch.where(mask, idx, torch.full_like(idx, -1.0)).max(1).values
        return (hi - lo + 1).clamp_min(0)

    return torch.stack([span(ink.any(2)), span(ink.any(1)), img.double().sum((1, 2))], 1)


def blur_matrix() -> torch.Tensor:
    """:func:`blur_kernel` as a 28x28 matrix: row r holds the taps around pixel r (a copy of
    one built once: building it took 0.5 ms, as long as scoring a drawing)."""
    return _blur_matrix().clone()


@functools.cache
def _blur_matrix() -> torch.Tensor:
    g = blur_kernel()
    m = torch.zeros(28, 28, dtype=torch.float64)
    for r in range(28):
        for t in range(-3, 4):
            if 0 <= r + t < 28:
                m[r, r + t] = g[t + 3]
    return m


# -- calibration ------------------------------------------------------------------------------
@dataclass
class Calibrator:
    """Temperature, then top-label Platt scaling that also reads the digit-likeness: for logits
    ``z``, top class ``t`` and likeness ``l``, ``p(t) = sigmoid(a * (z_t/T - logsumexp_{j != t}
    z_j/T) + b + c * rarity(l))`` with ``rarity(l) = log(min(l, UNUSUAL) / UNUSUAL)`` (l at least
    1/LEVELS), and the other classes share ``1 - p(t)`` as ``softmax(z/T)`` shares it among
    them. ``Calibrator()`` is the identity (the plain softmax).

    Why the likeness: held-out digits that look unusual are answered wrongly far more often at
    the same softmax confidence (MNIST test, notebook model: 92.7% right overall, 60-70% right
    among the 5% least digit-like); fitted on held-out images, ``c`` makes the probabilities say
    so, and an input unlike any digit gets the confidence of the least digit-like real ones."""

    temperature: float = 1.0
    a: float = 1.0
    b: float = 0.0
    c: float = 0.0

    def __call__(self, logits: torch.Tensor, likeness: torch.Tensor | None = None) -> torch.Tensor:
        """Calibrated probabilities, (n, K) float64, rows summing to 1."""
        z = logits.double().reshape(-1, logits.shape[-1]) / self.temperature
        top = z.argmax(1, keepdim=True)
        others = z.scatter(1, top, -math.inf)
        u = self.a * (z.gather(1, top).squeeze(1) - torch.logsumexp(others, 1)) + self.b
        if self.c and likeness is not None:
            u = u + self.c * _rarity(likeness)
        share = torch.softmax(others, 1)  # the other classes' proportions (0 at the top class)
        q2 = share.max(1).values
        p_top = torch.maximum(torch.sigmoid(u), q2 / (1 + q2))  # the top class stays on top
        return (share * (1 - p_top)[:, None]).scatter(1, top, p_top[:, None])

    @classmethod
    def fit(cls, logits: torch.Tensor, labels: torch.Tensor, likeness: torch.Tensor | None = None) -> "Calibrator":
        """Fit on held-out logits (and the held-out images' likeness): ``1/T`` by the
        cross-entropy, then (a, b, c) by the log-loss of "the top class is right" (a logistic
        regression). Both problems are convex in these parameters; Newton's method solves each
        in a few steps."""
        z, y = logits.double(), labels.long()
        z_y = z.gather(1, y[:, None]).squeeze(1)

        def ce(beta):  # cross-entropy at 1/T = beta, its first and second derivative
            p = torch.softmax(beta * z, 1)
            mean = (p * z).sum(1)
            loss = (torch.logsumexp(beta * z, 1) - beta * z_y).mean()
            return loss, (mean - z_y).mean().view(1), ((p * z * z).sum(1) - mean ** 2).mean().view(1, 1)

        beta = float(_newton(ce, [1.0], positive=True)[0])
        zt = z * beta
        top = zt.argmax(1, keepdim=True)
        log_odds = zt.gather(1, top).squeeze(1) - torch.logsumexp(zt.scatter(1, top, -math.inf), 1)
        right = (top.squeeze(1) == y).double()
        columns = [log_odds, torch.ones_like(log_odds)] + ([_rarity(likeness)] if likeness is not None else [])
        design = torch.stack(columns, 1)

        def platt(w):
            u = design @ w
            q = torch.sigmoid(u)
            loss = F.binary_cross_entropy_with_logits(u, right)
            return loss, design.T @ (q - right) / len(u), (design.T * (q * (1 - q))) @ design / len(u)

        w = _newton(platt, [1.0, 0.0] + [0.0] * (len(columns) - 2)).tolist()
        # within sane bounds: a model that learned nothing (a diverged trial) fits T of 10^8, and
        # held-out images it separates perfectly send a and b toward infinity
        clip = lambda v, lo, hi: min(max(v, lo), hi)  # noqa: E731
        return cls(clip(1.0 / beta, 1e-2, 1e2), clip(w[0], 1e-3, 1e2), clip(w[1], -1e2, 1e2),
                   clip(w[2], -1e2, 1e2) if len(w) > 2 else 0.0)


def _rarity(likeness: torch.Tensor) -> torch.Tensor:
    """``log(min(l, UNUSUAL) / UNUSUAL)``: 0 for the 95% most digit-like, down to log(0.02)
    for the least (and anything stranger). Measured against ``log(l)`` on the whole range: that
    fitted the held-out cross-entropy better (0.240 vs 0.253, notebook model) but moved the
    confidence of typical digits and worsened the test ECE (1.50% vs 0.96%)."""
    return torch.log(likeness.double().clamp(1.0 / LEVELS, UNUSUAL) / UNUSUAL)


def _newton(f, start, positive=False, steps=50):
    """Minimise a smooth convex function of a few float64 parameters: ``f(x)`` returns the
    value, gradient and Hessian; Newton steps, halved until the value does not rise (and, with
    ``positive``, the parameters stay > 0). Deterministic for the same inputs."""
    x = torch.tensor(start, dtype=torch.float64)
    value, grad, hess = f(x)
    for _ in range(steps):
        step = torch.linalg.solve(hess + 1e-12 * torch.eye(len(x), dtype=x.dtype), grad)
        t = 1.0
        while t > 1e-8:
            cand = x - t * step
            if not positive or bool((cand > 0).all()):
                v, g, h = f(cand)
                if v <= value:
                    break
            t /= 2
        else:
            return x
        done = bool((x - cand).abs().max() < 1e-12)
        x, value, grad, hess = cand, v, g, h
        if done or float(grad.abs().max()) < 1e-12:
            break
    return x


# -- digit-likeness ---------------------------------------------------------------------------
#: the last scoring of more than 2,048 images in this process, {key: scores}: one entry at most.
#: A run's test set is scored for its metrics and again by its report (0.3 s on MNIST; the hash
#: takes 0.03 s), and by the same numbers: the model is loaded from the checkpoint just written
_last_scores: dict = {}


@dataclass
class Likeness:
    """One Gaussian per class on the top principal components of :func:`likeness_features`
    and the three :func:`extent_features`, an isotropic Gaussian outside the components, and
    the table of held-out scores that turns a score into a likeness in [0, 1].

    Attributes: ``mean`` (784,), ``basis`` (784, k) orthonormal columns, ``centres`` (K, k+3),
    ``whiten`` (K, k+3, k+3) lower-triangular: the inverse Cholesky factor of each class's
    covariance, ``log_det`` (K,), ``noise`` (the mean squared distance outside the
    components), ``table`` (LEVELS,) sorted held-out scores. All float64 tensors."""

    mean: torch.Tensor
    basis: torch.Tensor
    centres: torch.Tensor
    whiten: torch.Tensor
    log_det: torch.Tensor
    noise: float
    table: torch.Tensor

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """The log density (up to a constant) of each image (n, 784 or 28x28 in [0, 1]):
        higher is more like the training images. In chunks of 2,048 images (float64 features
        and per-class distances of 10,000 images at once took about 300 MB)."""
        x = x.reshape(-1, 784)
        if len(x) > 2048 and not torch.jit.is_tracing():
            key = self._scoring_key(x)
            if key not in _last_scores:  # a run's test set is scored for its metrics, then its report
                out = torch.empty(len(x), dtype=self.mean.dtype)
                for i in range(0, len(x), 2048):
                    out[i:i + 2048] = self.score(x[i:i + 2048])
                _last_scores.clear()
                _last_scores[key] = out
            return _last_scores[key].clone()
        d = likeness_features(x, self.mean.dtype) - self.mean
        z = d @ self.basis
        outside = (d * d).sum(1) - (z * z).sum(1)
        z = torch.cat([z, extent_features(x).to(z.dtype)], 1)
        u = torch.einsum("cij,ncj->nci", self.whiten, z[:, None, :] - self.centres[None])
        closest = ((u * u).sum(2) + self.log_det[None]).min(1).values
        return -0.5 * (closest + outside.clamp_min(0) / self.noise)

    def _scoring_key(self, x: torch.Tensor) -> bytes:
        """A hash of this model's numbers, the images and the thread count: the same scores."""
        import hashlib

        key = hashlib.blake2b(repr((self.noise, torch.get_num_threads())).encode())
        _hash_tensors(key, (self.mean, self.basis, self.centres, self.whiten, self.log_det, x))
        return key.digest()

    def likeness(self, x: torch.Tensor) -> torch.Tensor:
        """The fraction of held-out training images that score below each image: in [0, 1]."""
        return self.of_score(self.score(x))

    def of_score(self, s: torch.Tensor) -> torch.Tensor:
        # the count of table entries at or below s (searchsorted's, in ops an ONNX graph has)
        return (self.table[None, :] <= s.double()[:, None]).sum(1).double() / len(self.table)

    @classmethod
    def fit(cls, fit_images: torch.Tensor, labels: torch.Tensor, heldout: torch.Tensor, classes: int = 10,
            components: int = COMPONENTS) -> "Likeness":
        """Fit on ``fit_images`` (n, 784) in [0, 1] with their labels; the table from ``heldout``.
        The features are kept as float32 (63 MB for FIT_IMAGES) and their Gram matrix is summed in
        float32 chunks into float64 (0.6 s where float64 took 1.3 s, for 50,000 images)."""
        return cls.fit_scoring(fit_images, labels, heldout, classes, components)[0]

    @classmethod
    def fit_scoring(cls, fit_images: torch.Tensor, labels: torch.Tensor, heldout: torch.Tensor, classes: int = 10,
                    components: int = COMPONENTS) -> tuple["Likeness", torch.Tensor]:
        """:meth:`fit`, and the held-out images' scores its table was taken from (the calibration
        reads their likeness next: scored once, not twice, 0.25 s for 10,000 images)."""
        if len(fit_images) > FIT_IMAGES:
            pick = torch.randperm(len(fit_images), generator=torch.Generator().manual_seed(0))[:FIT_IMAGES]
            fit_images, labels = fit_images[pick], labels[pick]
        n = len(fit_images)
        # chunks of 2,048: deskew's temporaries for 8,192 images at once were about 200 MB
        f = torch.empty(n, 784)  # filled in place: a list of chunks and its concatenation held both
        for i in range(0, n, 2048):
            f[i:i + 2048] = likeness_features(fit_images[i:i + 2048])
        gram = torch.zeros(784, 784, dtype=torch.float64)
        for i in range(0, n, 8192):
            gram += (f[i:i + 8192].T @ f[i:i + 8192]).double()
        mean = f.sum(0, dtype=torch.float64) / n
        values, vectors = torch.linalg.eigh(gram / n - torch.outer(mean, mean))
        k = max(1, min(components, n - 1, 784))
        basis = vectors.flip(1)[:, :k].contiguous()
        # the outside term weighs as one dimension: its variance is the mean residual per image
        # (not per pixel, the probabilistic PCA model, which made the score a plain residual:
        # letters and shapes against MNIST test digits, AUROC 0.89 instead of 0.95)
        noise = float(values.flip(0)[k:].clamp_min(0).sum()) if k < 784 else 1.0
        z = torch.cat([(f[i:i + 2048].double() - mean) @ basis for i in range(0, n, 2048)])
        del f
        z = torch.cat([z, extent_features(fit_images)], 1)
        centres, whiten, log_det = _class_gaussians(z, labels.long(), classes)
        # rounded to float16, the precision the drawing page receives them in (model.js is
        # half as large), so that the page and Python score with the very same numbers
        mean, basis, centres, whiten, log_det = (_half(t) for t in (mean, basis, centres, whiten, log_det))
        model = cls(mean, basis, centres, whiten, log_det, max(noise, 1e-8), torch.zeros(1, dtype=torch.float64))
        scores = model.score(heldout)
        model.table = torch.quantile(scores, torch.linspace(0, 1, LEVELS, dtype=torch.float64))
        return model, scores


def _half(t: torch.Tensor) -> torch.Tensor:
    return t.half().double()


def _class_gaussians(z: torch.Tensor, labels: torch.Tensor, classes: int):
    """Each class's centre and covariance on the components, shrunk toward the pooled
    covariance by k pseudo-images (negligible with thousands per class; keeps a class with a
    few images, or none, well defined)."""
    k = z.shape[1]
    pooled = z.T @ z / len(z) + 1e-6 * torch.eye(k, dtype=z.dtype)
    centres, whiten, log_det = [], [], []
    for c in range(classes):
        zc = z[labels == c]
        n = len(zc)
        mu = zc.mean(0) if n else torch.zeros(k, dtype=z.dtype)
        dc = zc - mu
        cov = (dc.T @ dc + k * pooled) / (n + k)
        chol = torch.linalg.cholesky(cov)
        centres.append(mu)
        whiten.append(torch.linalg.solve_triangular(chol, torch.eye(k, dtype=z.dtype), upper=False))
        log_det.append(2 * chol.diagonal().log().sum())
    return torch.stack(centres), torch.stack(whiten), torch.stack(log_det)


# -- both, as a checkpoint carries them -------------------------------------------------------
@dataclass
class Trust:
    """What a checkpoint knows about how far to trust its model: the calibrator, the
    likeness model (None when no held-out images were at hand) and what they were fitted on."""

    calibrator: Calibrator
    likeness: Likeness | None = None
    heldout: str = ""    # e.g. "the validation split (10,000 images)"

    def state(self) -> dict:
        """Plain numbers and float32 tensors, for the checkpoint."""
        c = self.calibrator
        out = {"format": FORMAT, "temperature": c.temperature, "a": c.a, "b": c.b, "c": c.c, "heldout": self.heldout}
        if self.likeness is not None:
            lk = self.likeness
            out["likeness"] = {"mean": lk.mean.float(), "basis": lk.basis.float(), "centres": lk.centres.float(),
                               "whiten": lk.whiten.float(), "log_det": lk.log_det.float(), "noise": lk.noise,
                               "table": lk.table.float()}
        return out

    @classmethod
    def from_state(cls, state: dict, classes: int = 10) -> "Trust":
        """The inverse of :meth:`state`, every field checked: ``ValueError`` names the first
        that is wrong (the checkpoint loader makes it a one-line CheckpointError)."""
        if state.get("format") != FORMAT:
            raise ValueError(f"format {state.get('format')!r} (this version reads {FORMAT})")
        nums = {k: _number(state, k) for k in ("temperature", "a", "b", "c")}
        if not (nums["temperature"] > 0 and nums["a"] > 0):
            raise ValueError("temperature and a must be positive")
        heldout = state.get("heldout", "")
        if not isinstance(heldout, str) or len(heldout) > 200:
            raise ValueError("heldout must be a short text")
        lk = state.get("likeness")
        if lk is None and nums["c"]:
            raise ValueError("c needs a likeness model")
        return cls(Calibrator(**nums), None if lk is None else _likeness_from(lk, classes), heldout)


def _number(d: dict, key: str) -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > 1e6:
        raise ValueError(f"{key} must be a finite number, found {str(v)[:40]!r}")
    return float(v)


def _likeness_from(lk, classes: int) -> Likeness:
    if not isinstance(lk, dict):
        raise ValueError("likeness must be a table")
    names = ("mean", "basis", "centres", "whiten", "log_det", "table")
    t = {}
    for name in names:
        v = lk.get(name)
        if not isinstance(v, torch.Tensor) or v.layout != torch.strided or not v.is_floating_point():
            raise ValueError(f"likeness.{name} must be a dense float tensor")
        if not torch.isfinite(v).all():
            raise ValueError(f"likeness.{name} has NaN or infinite values")
        t[name] = v.double()
    k = t["basis"].shape[-1] if t["basis"].dim() == 2 else -1
    shapes = {"mean": (784,), "basis": (784, k), "centres": (classes, k + 3), "whiten": (classes, k + 3, k + 3),
              "log_det": (classes,), "table": (LEVELS,)}
    for name, shape in shapes.items():
        if not 1 <= k <= 784 or tuple(t[name].shape) != shape:
            raise ValueError(f"likeness.{name} has shape {tuple(t[name].shape)}, expected {shape}")
    noise = _number(lk, "noise")
    if noise <= 0:
        raise ValueError("likeness.noise must be positive")
    return Likeness(noise=noise, **t)


def fit_trust(model, fit_set, heldout_set, *, classes: int = 10, probe_model=None, heldout: str = "") -> Trust:
    """Fit the likeness model on ``fit_set`` with its table from ``heldout_set`` (ImageSets),
    then the calibrator on ``probe_model``'s logits of the held-out images (default: the
    model's own; a model trained without them when the final one trained on everything)."""
    probe = probe_model if probe_model is not None else model
    x_held = heldout_set.features()
    likeness, held_scores = _likeness_of(fit_set, heldout_set, x_held, classes)
    with torch.no_grad():
        logits = probe(x_held.to(probe.linear.weight.device)).cpu()
    calibrator = Calibrator.fit(logits, heldout_set.labels, likeness.of_score(held_scores))
    return Trust(calibrator, likeness, heldout)


#: the last likeness fit of this process, {key: (Likeness, held-out scores)}: one entry at most
_last_likeness: dict = {}
#: fits of at least this many images (a dry run's 2,000: 0.2 s to fit, 0.01 s to read back) are
#: also kept on disk (cache_dir()/likeness), at most DISK_ENTRIES of them, the least recently used
#: dropped; smaller ones (the tests' generated datasets) would only fill it
DISK_MIN_IMAGES = 2_000
DISK_ENTRIES = 16


def _likeness_of(fit_set, heldout_set, x_held: torch.Tensor, classes: int):
    """:meth:`Likeness.fit_scoring` on ``fit_set`` (its seeded sample of FIT_IMAGES) and the
    held-out images, fitted once for the same images: by this process, or (DISK_MIN_IMAGES or
    more) by any process of this user on this machine and code. The likeness model does not
    read the model being trained, so every run, resume and sweep trial on one split fitted the
    same one again: 1.4 s on MNIST (20,000 images fitted, 10,000 scored) against 0.03 s to hash
    the images and 0.01 s to read the fit back (2 CPUs, quiet). The result is a copy, the same
    numbers bit for bit."""
    import copy

    key = _fit_key(fit_set, heldout_set, classes)
    fitted = _last_likeness.get(key)
    on_disk = len(fit_set) >= DISK_MIN_IMAGES and _code_and_machine() is not None
    if fitted is None and on_disk:
        fitted = _read_fit(key, len(heldout_set), classes)
    if fitted is None:
        if len(fit_set) > FIT_IMAGES:  # the sample Likeness.fit would take, before the float copy
            pick = torch.randperm(len(fit_set), generator=torch.Generator().manual_seed(0))[:FIT_IMAGES]
            fit_set = fit_set.subset(pick)
        fitted = Likeness.fit_scoring(fit_set.features(), fit_set.labels, x_held, classes)
        if on_disk:
            _write_fit(key, fitted)
    _last_likeness.clear()
    _last_likeness[key] = fitted
    return copy.deepcopy(fitted[0]), fitted[1].clone()


def _fit_key(fit_set, heldout_set, classes: int) -> str:
    """A hash of everything a likeness fit depends on: the images, labels and held-out images,
    the settings, the thread count, this code (trust.py and the deskew of transforms.py) and the
    machine's torch and CPU (their kernels decide the last bits)."""
    import hashlib

    key = hashlib.blake2b(repr((classes, COMPONENTS, FIT_IMAGES, torch.get_num_threads())).encode())
    key.update(_code_and_machine() or b"")
    _hash_tensors(key, (fit_set.images, fit_set.labels, heldout_set.images))
    return key.hexdigest()[:40]


def _hash_tensors(key, tensors) -> None:
    """Feed each tensor's type, shape and bytes to the hash ``key``."""
    for t in tensors:
        t = t.detach().contiguous()
        key.update(repr((t.dtype, tuple(t.shape))).encode())
        key.update(memoryview(t.numpy()).cast("B"))


@functools.cache
def _code_and_machine() -> bytes | None:
    """This code and machine, for the cache key; None where the sources cannot be read (a
    frozen or zipped install): no fit is then kept on disk, which could outlive the code."""
    from pathlib import Path

    from . import transforms
    from .engines._native import _cpu_signature

    try:
        code = Path(__file__).read_bytes() + Path(transforms.__file__).read_bytes()
    except (OSError, TypeError):
        return None
    return code + repr((torch.__version__, _cpu_signature())).encode()


def _compact(t: torch.Tensor):
    """float16 where that holds every value exactly (the fields rounded to the page's precision:
    a fit's file 1.2 MB -> 0.4 MB), float64 otherwise."""
    return t.half().numpy() if torch.equal(t.half().double(), t) else t.numpy()


def _fit_path(key: str):
    from ._files import cache_dir
    return cache_dir() / "likeness" / f"{key}.npz"


def _read_fit(key: str, n_held: int, classes: int):
    """A fit this user's cache holds for ``key``, checked as a checkpoint's is; None otherwise."""
    import numpy as np

    from ._files import private_file

    path = _fit_path(key)
    try:
        if not private_file(path):
            return None
        with np.load(path, allow_pickle=False) as f:  # each array's CRC-32 checked as it is read
            state = {name: torch.from_numpy(f[name]) for name in f.files}
        scores = state.pop("scores").double()
        likeness = _likeness_from({**state, "noise": float(state.pop("noise"))}, classes)
        if tuple(scores.shape) != (n_held,) or not torch.isfinite(scores).all():
            return None
        os.utime(path)  # recently used
        return likeness, scores
    except Exception:  # whatever the file holds (numpy, zipfile and zlib each raise their own): fit again
        return None


def _write_fit(key: str, fitted) -> None:
    """Keep ``fitted`` in the cache (a private file; the oldest beyond DISK_ENTRIES removed)."""
    import numpy as np

    from ._files import store_private

    lk, scores = fitted
    arrays = {name: _compact(getattr(lk, name)) for name in ("mean", "basis", "centres", "whiten", "log_det", "table")}
    arrays.update(noise=np.asarray(lk.noise, dtype=np.float64), scores=scores.numpy())
    path = _fit_path(key)

    def write(tmp):
        with open(tmp, "wb") as f:  # a file, not a name: savez would add ".npz" to the name
            np.savez(f, **arrays)
    store_private(path, write)
    try:
        for old in sorted(path.parent.glob("*.npz"), key=lambda p: p.stat().st_mtime)[:-DISK_ENTRIES]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
