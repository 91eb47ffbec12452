"""scikit-learn estimators: our exact solver and minibatch engines inside Pipeline, GridSearchCV
and cross_val_score.

:class:`SoftmaxClassifier` minimises ``LogisticRegression``'s objective,

    C * sum_i s_i * CE(softmax(W x_i + b), y_i) + ||W||^2 / 2            (b not penalised)

(``s_i`` the sample weights times the class weights), so ``SoftmaxClassifier(C=0.1)`` and
``LogisticRegression(C=0.1)`` have the same optimum. Divided by ``C * sum_i s_i`` it is our
``lam`` form, mean cross-entropy + lam/2 ||W||^2, with ``lam = 1 / (C * sum_i s_i)`` (``1 / (C *
n_train)`` unweighted); a binary problem is fitted as two softmax classes with the penalty
that makes ``coef_`` equal ``LogisticRegression``'s single row (``w_1 - w_0``). :class:`Deskew`
and :class:`Cbrt` are the model's fixed input transforms as transformers.

Needs scikit-learn (``pip install 'mnist-logreg[sklearn]'``).

Examples
--------
>>> from sklearn.datasets import make_classification
>>> from sklearn.linear_model import LogisticRegression
>>> X, y = make_classification(600, 20, n_informative=8, n_classes=3, random_state=0)
>>> ours = SoftmaxClassifier(C=0.1, tol=1e-8).fit(X, y)
>>> theirs = LogisticRegression(C=0.1, tol=1e-10, max_iter=10_000).fit(X, y)
>>> bool(np.abs(ours.coef_ - theirs.coef_).max() < 1e-5), ours.score(X, y) == theirs.score(X, y)
(True, True)
>>> ours.predict_proba(X[:2]).sum(1)
array([1., 1.])
"""
from __future__ import annotations

import dataclasses
import numbers
import typing
import warnings

import numpy as np
import torch
from scipy import sparse

from .errors import MnistLogregError

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, _fit_context
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils._param_validation import Interval, StrOptions
    from sklearn.utils.class_weight import compute_class_weight
    from sklearn.utils.extmath import safe_sparse_dot
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import (
        _check_sample_weight,
        check_array,
        check_is_fitted,
        check_random_state,
        validate_data,
    )
except ImportError as e:  # pragma: no cover - exercised by hand without scikit-learn
    raise MnistLogregError("mnist_logreg.sklearn needs scikit-learn: pip install 'mnist-logreg[sklearn]'") from e

from .config import TrainConfig, setting_types

__all__ = ["SoftmaxClassifier", "Deskew", "Cbrt", "expected_failed_checks"]

_MINIBATCH = ("epochs", "lr", "batch_size", "lr_schedule", "loss_cap", "loss_q")
_DEFAULT = TrainConfig()


def _constraint(name: str) -> list:
    """scikit-learn's constraint for a TrainConfig setting, from its declaration (type, range,
    choices): the setting is declared once, in config.py."""
    f = next(f for f in dataclasses.fields(TrainConfig) if f.name == name)
    md, hint = f.metadata, setting_types(TrainConfig)[name]
    optional = typing.get_origin(hint) is typing.Union
    base = typing.get_args(hint)[0] if optional else hint
    if md["choices"]:
        rule = [StrOptions(set(md["choices"]))]
    else:
        left = md["above"] if md["above"] is not None else md["low"]
        closed = {(True, True): "both", (True, False): "left", (False, True): "right", (False, False): "neither"}[
            (md["low"] is not None, md["high"] is not None)]
        rule = [Interval(numbers.Integral if base is int else numbers.Real, left, md["high"], closed=closed)]
    return rule + [None] if optional else rule


MAX_NEWTON_CLASSES = 1000
MAX_DENSE_ADAM = 500_000_000  # entries of a sparse X that solver="adam" densifies (2 GB as float32)


def _float64(X):
    """X for the solvers: a float64 tensor (a writable copy where numpy's is read-only), or a
    float64 CSR matrix when sparse."""
    if sparse.issparse(X):
        return sparse.csr_matrix(X, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    return torch.from_numpy(X if X.flags.writeable else X.copy())


class SoftmaxClassifier(ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression: the exact L2-regularised optimum (Newton-CG), or the
    robust minibatch recipe.

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength, as in ``LogisticRegression``: the penalty is
        ``||W||^2 / 2`` against ``C`` times the (weighted) summed cross-entropy; ``np.inf``
        fits without a penalty (``LogisticRegression(C=np.inf)``).
    fit_intercept : bool, default=True
        Fit an unpenalised bias per class.
    tol : float, default=1e-4
        ``solver="newton"`` stops when the Euclidean norm of the gradient of the mean objective
        (``LogisticRegression``'s divided by ``C * sum of weights``) is at most ``tol``.
    max_iter : int, default=100
        Newton iterations at most (``solver="newton"``); a ConvergenceWarning says when they
        ran out first. 0 returns the initial coefficients (zeros, or the warm start's).
    solver : {"newton", "adam"}, default="newton"
        "newton": the exact optimum. "adam": our minibatch engines (the native C kernel for
        10 classes, torch otherwise) for ``epochs`` epochs, with the robust-loss options; the
        L2 term enters as Adam's weight decay ``1 / (C * sum of weights)`` (bias included), and
        each sample's gradient is scaled by its weight over the mean weight. Sparse input is
        densified for it (newton keeps it sparse).
    class_weight : dict, "balanced" or None, default=None
        Weights per class, multiplying ``sample_weight``.
    warm_start : bool, default=False
        Start from the previous fit's coefficients (when the classes and features match).
    random_state : int, RandomState or None, default=None
        Seeds the preconditioner's subsample (newton) or the shuffling (adam).
    verbose : int, default=0
        Print one line per Newton iteration or epoch.
    epochs, lr, batch_size, lr_schedule, loss_cap, loss_q
        ``solver="adam"`` only: as the ``train`` settings of the same names (``TrainConfig``),
        declared and validated there.
    threads : int or None, default=None
        torch threads while fitting (None: torch's own setting, which follows ``OMP_NUM_THREADS``
        and ``torch.set_num_threads``; the adam engines then use one, measured fastest).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) for two classes, else (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    n_iter_ : ndarray of shape (1,): Newton iterations, or epochs for adam
    n_features_in_ : int
    objective_ : float, the mean objective at the solution (our ``lam`` form); for adam, the last
        epoch's training cross-entropy

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = SoftmaxClassifier(C=1.0).fit(X, y)
    >>> clf.coef_.shape, round(clf.score(X, y), 2)
    ((3, 4), 0.97)
    """

    _parameter_constraints: dict = {
        "C": [Interval(numbers.Real, 0, None, closed="right")],  # np.inf: no penalty
        "fit_intercept": ["boolean"],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "solver": [StrOptions({"newton", "adam"})],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        **{name: _constraint(name) for name in _MINIBATCH},
        "threads": [Interval(numbers.Integral, 1, 256, closed="both"), None],  # 1024: libgomp aborted the process
    }

    def __init__(self, C=1.0, *, fit_intercept=True, tol=1e-4, max_iter=100, solver="newton", class_weight=None,
                 warm_start=False, random_state=None, verbose=0, epochs=_DEFAULT.epochs, lr=_DEFAULT.lr,
                 batch_size=_DEFAULT.batch_size, lr_schedule=_DEFAULT.lr_schedule, loss_cap=_DEFAULT.loss_cap,
                 loss_q=_DEFAULT.loss_q, threads=None):
        self.C, self.fit_intercept, self.tol, self.max_iter = C, fit_intercept, tol, max_iter
        self.solver, self.class_weight, self.warm_start = solver, class_weight, warm_start
        self.random_state, self.verbose = random_state, verbose
        self.epochs, self.lr, self.batch_size, self.lr_schedule = epochs, lr, batch_size, lr_schedule
        self.loss_cap, self.loss_q, self.threads = loss_cap, loss_q, threads

    # -- fitting -------------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit on ``X`` (n_samples, n_features), dense or sparse (CSR/CSC), float or int, and
        labels ``y`` of any type with at least two classes; ``sample_weight`` weighs each sample.
        The solvers work in float64; ``coef_`` and ``intercept_`` take X's dtype (float32 stays
        float32)."""
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32], order="C")
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        self._check_problem(X)
        weights = self._sample_weights(X, y, sample_weight)
        codes = torch.from_numpy(encoder.transform(y).astype(np.int64))
        fit = self._fit_newton if self.solver == "newton" else self._fit_adam
        theta, iters = fit(_float64(X), codes, weights)
        self._set_coefficients(theta, X.dtype)
        self.n_iter_ = np.array([iters], dtype=np.int32)
        return self

    def _check_problem(self, X):
        """One-line errors for data this solver cannot fit, before any work."""
        if len(self.classes_) < 2:
            raise ValueError(f"this solver needs samples of at least 2 classes; the data has 1 class: "
                             f"{self.classes_[0]!r}")
        if self.solver == "newton" and len(self.classes_) > MAX_NEWTON_CLASSES:
            raise ValueError(f"solver='newton' takes at most {MAX_NEWTON_CLASSES} classes (its preconditioner "
                             f"factors a K x K matrix each iteration: K=2000 took 33 s and 721 MB where "
                             f"LogisticRegression took 3.4 s); the data has {len(self.classes_)}: use solver='adam'")
        values = X.data if sparse.issparse(X) else X
        if values.size and float(np.abs(values).max()) > 1e100:  # squares overflow: the Gram matrix is infinite
            raise ValueError(f"features up to {float(np.abs(values).max()):.3g}: scale them first (StandardScaler); "
                             f"the solvers work with their squares")
        if self.solver == "adam" and sparse.issparse(X) and X.shape[0] * X.shape[1] > MAX_DENSE_ADAM:
            raise ValueError(f"solver='adam' densifies sparse input, and {X.shape[0]} x {X.shape[1]} is more than "
                             f"{MAX_DENSE_ADAM:.0e} entries: use solver='newton', which keeps it sparse")

    def _sample_weights(self, X, y, sample_weight):
        """Per-sample weights as a float64 tensor, or None when every sample weighs the same."""
        if sample_weight is None and self.class_weight is None:
            return None
        w = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if self.class_weight is not None:
            # "balanced" counts each class by its sample weights, as LogisticRegression does
            per_class = compute_class_weight(self.class_weight, classes=self.classes_, y=y, sample_weight=w)
            w = w * per_class[np.searchsorted(self.classes_, y)]
        total = float(w.sum())
        if not np.isfinite(total) or total < 1e-200:  # 1e308 overflows; 1e-320 makes the optimum all zeros
            raise ValueError(f"sample weights sum to {total:.3g}, out of range for a fit (1e308 overflows, 1e-320 "
                             f"leaves only the penalty): multiply them by a constant s and use C / s, the same fit")
        if len(np.unique(y[w > 0])) < 2:  # else the optimum is at infinity (an unpenalised bias)
            raise ValueError("the samples with positive weight must cover at least 2 classes")
        return torch.from_numpy(w)

    def _lam(self, codes, weights) -> float:
        """Our mean-objective L2 strength, 1 / (C * total weight); two classes fitted as softmax
        need twice the penalty for w_1 - w_0 to be LogisticRegression's binary coefficients."""
        total = len(codes) if weights is None else float(weights.sum())
        return (2.0 if len(self.classes_) == 2 else 1.0) / (self.C * total)

    def _initial_theta(self, d: int):
        K = len(self.classes_)
        theta = torch.zeros(K, d + int(self.fit_intercept), dtype=torch.float64)
        old = getattr(self, "_theta", None)
        if self.warm_start and old is not None and old.shape == theta.shape:
            theta.copy_(torch.from_numpy(old))
        return theta

    def _fit_newton(self, X, codes, weights):
        from .engines import num_threads
        from .solver import _native_hvp, _Problem, _SparseProblem, cold_start, newton_cg

        K, seed = len(self.classes_), int(check_random_state(self.random_state).randint(2**31 - 1))
        lam = self._lam(codes, weights)
        with num_threads(self.threads), torch.no_grad():
            problem = _SparseProblem if sparse.issparse(X) else _Problem
            prob = problem(X, codes, lam, K, weights=weights, intercept=self.fit_intercept)
            theta = self._initial_theta(X.shape[1])
            if prob.x is not None and self.max_iter > 0:  # dense: the C kernel, and Adam to start a large fit
                prob.native = _native_hvp(prob, X)
                theta = cold_start(prob, (X.float(), codes), theta, seed, threads=self.threads)
            theta, f, gnorm, iters, _ = newton_cg(prob, theta, tol=self.tol, max_iter=self.max_iter,
                                                  precond=prob.preconditioner(10_000, seed), log=self._log())
        if gnorm > self.tol:
            warnings.warn(f"Newton-CG stopped after max_iter={self.max_iter} iterations with gradient norm "
                          f"{gnorm:.2e} > tol={self.tol:g}; increase max_iter", ConvergenceWarning, stacklevel=3)
        self.objective_ = f
        return theta, iters

    def _fit_adam(self, X, codes, weights):
        from .solver import minibatch_theta

        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        settings = {name: getattr(self, name) for name in _MINIBATCH}
        x = torch.from_numpy(X.toarray()) if sparse.issparse(X) else X
        lam = self._lam(codes, weights)
        theta, train_loss = minibatch_theta((x, codes), self._initial_theta(X.shape[1]), lam, seed,
                                            threads=self.threads, log=self._log(), sample_weight=weights, **settings)
        self.objective_ = train_loss
        return theta, self.epochs

    def _log(self):
        return print if self.verbose else (lambda *a, **k: None)

    def _set_coefficients(self, theta, dtype):
        """coef_ / intercept_ in LogisticRegression's shapes (and X's dtype) from the softmax
        parameters; several classes' rows are shifted to sum to zero (the same probabilities:
        scikit-learn's identifiable form)."""
        self._theta = theta.numpy().copy()  # the softmax parameters, for warm starts (numpy: skops saves it)
        W = theta[:, :self.n_features_in_].numpy()
        b = theta[:, self.n_features_in_].numpy() if self.fit_intercept else np.zeros(len(W))
        if len(self.classes_) == 2:
            coef, intercept = (W[1] - W[0])[None, :], np.array([b[1] - b[0]])
        else:
            coef, intercept = W - W.mean(0), b - b.mean()
        self.coef_, self.intercept_ = coef.astype(dtype), intercept.astype(dtype)

    # -- prediction ------------------------------------------------------------------------------
    def decision_function(self, X):
        """Class scores, (n_samples,) for two classes (positive: ``classes_[1]``), else
        (n_samples, n_classes)."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32], reset=False)
        scores = safe_sparse_dot(X, self.coef_.T, dense_output=True) + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict_proba(self, X):
        """Class probabilities, (n_samples, n_classes), rows summing to 1."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            scores = np.stack([np.zeros_like(scores), scores], 1)
        scores = scores - scores.max(1, keepdims=True)
        p = np.exp(scores)
        return p / p.sum(1, keepdims=True)

    def predict_log_proba(self, X):
        scores = self.decision_function(X)
        if scores.ndim == 1:
            scores = np.stack([np.zeros_like(scores), scores], 1)
        return scores - np.logaddexp.reduce(scores, axis=1, keepdims=True)

    def predict(self, X):
        scores = self.decision_function(X)
        return self.classes_[(scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # -- the tool's own format ----------------------------------------------------------------
    def to_model(self):
        """The fitted classifier as an :class:`~mnist_logreg.MnistModel` (for :func:`mnist_logreg.save`,
        ``serve``, ``export``): 784 features and the classes 0..9 only."""
        from .model import MnistModel

        check_is_fitted(self)
        if self.n_features_in_ != 784 or list(self.classes_) != list(range(10)):
            raise ValueError("only a classifier of 784 features (28x28 images) and the classes 0..9 converts to "
                             "an MnistModel; save others with skops.io")
        model = MnistModel()
        with torch.no_grad():
            model.linear.weight.copy_(torch.from_numpy(self.coef_))
            model.linear.bias.copy_(torch.from_numpy(self.intercept_))
        return model


def _image_size(n_features: int, image_shape):
    if image_shape is not None:
        if (len(image_shape) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0
                                             for v in image_shape)):
            raise ValueError(f"image_shape must be two positive whole numbers (height, width), got {image_shape!r}")
        h, w = image_shape
        if h * w != n_features:
            raise ValueError(f"image_shape {tuple(image_shape)} has {h * w} pixels, X has {n_features} features")
        return int(h), int(w)
    side = int(round(n_features ** 0.5))
    if side * side != n_features:
        raise ValueError(f"Deskew needs square images (n_features a square, e.g. 784 = 28x28) or image_shape; "
                         f"X has {n_features} features")
    return side, side


# scikit-learn's checks whose X has a non-square number of features (2, 3, 5, 10, ...): found by
# running them (tests/test_sklearn_checks.py); every other check runs and passes on Deskew
_NON_SQUARE_CHECKS = (
    "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_estimators_dtypes",
    "check_dtype_object", "check_pipeline_consistency", "check_estimators_nan_inf",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_transformer_data_not_an_array",
    "check_transformer_general", "check_transformer_preserve_dtypes",
    "check_transformers_unfitted_stateless",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_fit2d_1sample",
    "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in",
    "check_fit2d_predict1d",
)


class _ImageTransform(TransformerMixin, BaseEstimator):
    """A stateless transform of each row; fit only records the number of features."""

    def fit(self, X, y=None):
        validate_data(self, X, dtype=[np.float64, np.float32])
        return self

    def transform(self, X):
        if hasattr(self, "n_features_in_"):
            X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        else:  # stateless: usable unfitted, e.g. in a FunctionTransformer-like role
            X = check_array(X, dtype=[np.float64, np.float32])
        return self._apply(torch.from_numpy(np.array(X, order="C"))).numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags


class Deskew(_ImageTransform):
    """Straighten each image by its moments (:func:`mnist_logreg.transforms.deskew`); rows of
    X are images in [0, 1], 784 features for MNIST.

    ``make_pipeline(Deskew(), SoftmaxClassifier(C=0.2))`` is ``train --solver newton
    --transform deskew --lam 1e-4`` (95.8% on MNIST).

    Parameters
    ----------
    image_shape : (rows, columns) or None, default=None
        None: square images, side the square root of n_features.
    """

    _parameter_constraints: dict = {"image_shape": [tuple, list, None]}

    def __init__(self, image_shape=None):
        self.image_shape = image_shape

    def fit(self, X, y=None):
        super().fit(X, y)
        _image_size(self.n_features_in_, self.image_shape)
        return self

    def _expected_failures(self) -> dict:
        """The checks whose data is not images: Deskew transforms square images only."""
        why = ("the check's X has a number of features that is not a square, and Deskew transforms images "
               "(784 = 28x28 features; Deskew(image_shape=(h, w)) for others)")
        return dict.fromkeys(_NON_SQUARE_CHECKS, why)

    def _apply(self, x):
        from .transforms import deskew
        return deskew(x, _image_size(x.shape[1], self.image_shape)) if len(x) else x


class Cbrt(_ImageTransform):
    """The cube root of each feature, negatives clipped to 0 (:func:`mnist_logreg.transforms.cbrt`):
    the Fashion-MNIST transform, for pixels in [0, 1]."""

    def _apply(self, x):
        from .transforms import cbrt
        return cbrt(x)


def expected_failed_checks(estimator) -> dict:
    """scikit-learn's estimator checks that ``estimator`` is known to fail, with the reason
    (for ``parametrize_with_checks(..., expected_failed_checks=expected_failed_checks)``)."""
    return getattr(estimator, "_expected_failures", dict)()


#: the classes of this package that an honest .skops file of its estimators holds; nothing else
#: of the package is trusted (a file naming a function of it, as a "reduce" node would, is refused)
SKOPS_TRUSTED = ("mnist_logreg.sklearn.Cbrt", "mnist_logreg.sklearn.Deskew", "mnist_logreg.sklearn.SoftmaxClassifier")
MAX_SKOPS_BYTES = 256 * 2**20


def load(path):
    """Load an estimator (or a Pipeline of them) saved with ``skops.io.dump``, trusting exactly
    :data:`SKOPS_TRUSTED` beside skops' own defaults: a file that names any other type is
    refused with one line, before anything in it is built.

    >>> import skops.io, tempfile, os
    >>> clf = SoftmaxClassifier(C=1.0).fit(np.eye(4), [0, 1, 0, 1])
    >>> path = os.path.join(tempfile.mkdtemp(), "clf.skops"); skops.io.dump(clf, path)
    >>> load(path).predict(np.eye(4)).tolist()
    [0, 1, 0, 1]
    """
    from ._files import read_input
    from .errors import CheckpointError

    try:
        import skops.io as sio
    except ImportError:
        raise MnistLogregError("loading .skops files needs skops: pip install 'mnist-logreg[sklearn]'") from None
    data = read_input(path, MAX_SKOPS_BYTES, CheckpointError)
    try:
        named = sio.get_untrusted_types(data=data)
    except Exception as e:  # not a zip, no schema, a schema of another shape
        raise CheckpointError(f"{path}: not a readable .skops file ({type(e).__name__}: {str(e)[:100]})") from None
    foreign = sorted(set(named) - set(SKOPS_TRUSTED))
    if foreign:
        raise CheckpointError(f"{path}: refused: it names {', '.join(foreign[:3])}"
                              f"{' and more' if len(foreign) > 3 else ''}, which no estimator of this package holds "
                              f"(load it with skops.io.load only if you trust who wrote it)")
    try:
        return sio.loads(data, trusted=list(named))
    except Exception as e:
        raise CheckpointError(f"{path}: cannot load ({type(e).__name__}: {str(e)[:100]})") from None
